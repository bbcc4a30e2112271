# Every minute, Cloud Scheduler POSTs the tick with an OIDC token of its own identity. A tick
# that fails is not retried: the next minute's tick creates what this one did not.
resource "google_cloud_scheduler_job" "tick" {
  project          = var.project
  region           = var.region
  name             = "${var.prefix}-tick"
  description      = "Baton's tick: creates the runs that are due."
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  retry_config {
    retry_count = 0
  }

  http_target {
    uri         = "${local.url["tick"]}/tick"
    http_method = "POST"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.url["tick"]
    }
  }

  depends_on = [google_project_service.apis]
}
