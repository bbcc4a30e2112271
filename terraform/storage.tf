# Two buckets: extracts (the files tables are extracted to, read through signed URLs) and
# staging (import chunks and files waiting to be loaded). Both private, uniform access, and
# emptied of old objects by lifecycle rules.

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
