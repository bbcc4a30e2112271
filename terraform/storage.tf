# Three buckets: extracts (the files tables are extracted to, read through signed URLs),
# staging (import chunks, and the rows loads rejected) and landing (load tables' files, uploaded
# through signed URLs or written by other tools). All private, uniform access, and emptied of
# old objects by lifecycle rules.

resource "google_storage_bucket" "extracts" {
  project                     = var.project
  name                        = "${var.project}-${var.prefix}-extracts"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  lifecycle_rule {
    condition {
      age = var.extract_retention_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "staging" {
  project                     = var.project
  name                        = "${var.project}-${var.prefix}-staging"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  lifecycle_rule {
    condition {
      age = var.staging_retention_days
    }
    action {
      type = "Delete"
    }
  }

  # Uploads abandoned half-way.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "landing" {
  project                     = var.project
  name                        = "${var.project}-${var.prefix}-landing"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  # Loaded files are kept this long, for reloading (`baton load --force`) and audits.
  lifecycle_rule {
    condition {
      age = var.landing_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.apis]
}

# Every file that lands is announced to the importer, which claims it for the load table whose
# prefix it is under and ignores the rest.
resource "google_storage_notification" "landing" {
  bucket         = google_storage_bucket.landing.name
  payload_format = "JSON_API_V1"
  topic          = google_pubsub_topic.landing.id
  event_types    = ["OBJECT_FINALIZE"]

  depends_on = [google_pubsub_topic_iam_member.storage_publishes_landing]
}
