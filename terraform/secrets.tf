# The key connections' secrets are sealed with. Its value is written once, from the ephemeral
# variable encryption_key, and never stored in Terraform's state.
resource "google_secret_manager_secret" "encryption_key" {
  project   = var.project
  secret_id = "${var.prefix}-encryption-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "encryption_key" {
  secret                 = google_secret_manager_secret.encryption_key.id
  secret_data_wo         = var.encryption_key
  secret_data_wo_version = var.encryption_key_version
}
