# Baton's whole footprint in one project: five Cloud Run services that coordinate through
# Firestore and Pub/Sub, the Scheduler job that ticks, the buckets, the encryption key's
# secret, and the identities that tie them together with the least privilege each needs.

data "google_project" "this" {
  project_id = var.project
}

locals {
  bigquery_project = coalesce(var.bigquery_project, var.project)

  # Cloud Run's deterministic URLs: a service's audience and its push endpoint are known before
  # it exists, so that its own environment can name them.
  service_names = ["tick", "planner", "executor", "importer", "api"]
  url           = { for name in local.service_names : name => "https://${var.prefix}-${name}-${data.google_project.this.number}.${var.region}.run.app" }

  apis = [
    "bigquery.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}
