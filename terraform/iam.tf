# One identity per service, one for Pub/Sub's pushes and one for Cloud Scheduler's calls, each
# with only the roles its calls need. The README's "Identities and roles" table lists the same
# bindings with the calls behind them; tests/e2e/terraform.rs checks that the two agree.

resource "google_service_account" "service" {
  for_each = toset(local.service_names)

  project      = var.project
  account_id   = "${var.prefix}-${each.key}"
  display_name = "Baton ${each.key}"
  description  = "Runs Baton's ${each.key} service on Cloud Run."
}

resource "google_service_account" "push" {
  project      = var.project
  account_id   = "${var.prefix}-push"
  display_name = "Baton Pub/Sub push"
  description  = "The identity of Pub/Sub's pushes to Baton's services: their OIDC tokens name it."
}

resource "google_service_account" "scheduler" {
  project      = var.project
  account_id   = "${var.prefix}-scheduler"
  display_name = "Baton Cloud Scheduler"
  description  = "The identity of Cloud Scheduler's calls to Baton's tick: their OIDC tokens name it."
}

locals {
  # Pub/Sub's own service agent: it mints the push identity's tokens and moves dead letters.
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # Cloud Storage's own service agent: it publishes the landing bucket's notifications.
  storage_agent = "serviceAccount:service-${data.google_project.this.number}@gs-project-accounts.iam.gserviceaccount.com"

  # Project-wide roles, by service. BigQuery's are granted on the BigQuery project.
  firestore_roles = {
    tick     = ["roles/datastore.user"]
    planner  = ["roles/datastore.user"]
    executor = ["roles/datastore.user"]
    importer = ["roles/datastore.user"]
    api      = ["roles/datastore.user"]
  }
  bigquery_roles = {
    executor = ["roles/bigquery.jobUser", "roles/bigquery.dataEditor"]
    importer = ["roles/bigquery.jobUser", "roles/bigquery.dataEditor"]
    api      = ["roles/bigquery.jobUser", "roles/bigquery.dataViewer"]
  }
  firestore_grants = merge([for service, roles in local.firestore_roles : { for role in roles : "${service} ${role}" => { service = service, role = role } }]...)
  bigquery_grants  = merge([for service, roles in local.bigquery_roles : { for role in roles : "${service} ${role}" => { service = service, role = role } }]...)
}

resource "google_project_iam_member" "firestore" {
  for_each = local.firestore_grants

  project = var.project
  role    = each.value.role
  member  = google_service_account.service[each.value.service].member
}

resource "google_project_iam_member" "bigquery" {
  for_each = local.bigquery_grants

  project = local.bigquery_project
  role    = each.value.role
  member  = google_service_account.service[each.value.service].member
}

# Who publishes to which topic.
resource "google_pubsub_topic_iam_member" "planner_publishers" {
  for_each = toset(["tick", "planner", "executor", "importer", "api"])

  project = var.project
  topic   = google_pubsub_topic.planner.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.service[each.key].member
}

resource "google_pubsub_topic_iam_member" "executor_publishers" {
  for_each = toset(["tick", "planner", "executor", "api"])

  project = var.project
  topic   = google_pubsub_topic.executor.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.service[each.key].member
}

resource "google_pubsub_topic_iam_member" "importer_publishers" {
  for_each = toset(["tick", "planner", "importer", "api"])

  project = var.project
  topic   = google_pubsub_topic.importer.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.service[each.key].member
}

# The importer writes its chunks to the staging bucket; its load jobs read them as its identity.
resource "google_storage_bucket_iam_member" "staging" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.service["importer"].member
}

# The importer's load jobs read the landing bucket's files as its identity.
resource "google_storage_bucket_iam_member" "landing_reader" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.service["importer"].member
}

# An upload URL carries its signer's rights: the API may create objects in the landing bucket
# (not read, replace or delete them), and signs with its own identity through IAM signBlob.
resource "google_storage_bucket_iam_member" "landing_uploads" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectCreator"
  member = google_service_account.service["api"].member
}

resource "google_service_account_iam_member" "api_signs_urls" {
  service_account_id = google_service_account.service["api"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.service["api"].member
}

# Cloud Storage publishes the landing bucket's notifications.
resource "google_pubsub_topic_iam_member" "storage_publishes_landing" {
  project = var.project
  topic   = google_pubsub_topic.landing.name
  role    = "roles/pubsub.publisher"
  member  = local.storage_agent
}

# The executor writes extracts (BigQuery writes them as the job's identity), lists and signs them.
resource "google_storage_bucket_iam_member" "extracts" {
  bucket = google_storage_bucket.extracts.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.service["executor"].member
}

# Extracts' URLs are signed by the executor's own identity through IAM signBlob.
resource "google_service_account_iam_member" "executor_signs_urls" {
  service_account_id = google_service_account.service["executor"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.service["executor"].member
}

# The services that open or seal connections read the encryption key.
resource "google_secret_manager_secret_iam_member" "encryption_key" {
  for_each = toset(["planner", "executor", "importer", "api"])

  project   = var.project
  secret_id = google_secret_manager_secret.encryption_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.service[each.key].member
}

# Pub/Sub mints the push identity's OIDC tokens.
resource "google_service_account_iam_member" "pubsub_mints_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

# Pub/Sub moves a message that failed too often to the dead-letter topic: it must publish
# there and acknowledge on the subscription it came from.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = google_pubsub_subscription.push

  project      = var.project
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "landing_dead_letter_subscriber" {
  project      = var.project
  subscription = google_pubsub_subscription.landing.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The planner keeps a dead letter with the topic it came from, which it reads from the
# subscription that gave up on it; the API replays dead letters to those topics.
resource "google_pubsub_subscription_iam_member" "planner_reads_push_subscriptions" {
  for_each = google_pubsub_subscription.push

  project      = var.project
  subscription = each.value.name
  role         = "roles/pubsub.viewer"
  member       = google_service_account.service["planner"].member
}

resource "google_pubsub_subscription_iam_member" "planner_reads_landing_subscription" {
  project      = var.project
  subscription = google_pubsub_subscription.landing.name
  role         = "roles/pubsub.viewer"
  member       = google_service_account.service["planner"].member
}

resource "google_pubsub_topic_iam_member" "api_replays_landing" {
  project = var.project
  topic   = google_pubsub_topic.landing.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.service["api"].member
}
