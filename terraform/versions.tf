terraform {
  # 1.10 for ephemeral variables: the encryption key is written to Secret Manager without ever
  # being stored in Terraform's state.
  required_version = ">= 1.10"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}
