variable "project" {
  description = "The Google Cloud project Baton is deployed into."
  type        = string
}

variable "region" {
  description = "The region of the Cloud Run services, the Scheduler job and the buckets."
  type        = string
  default     = "us-central1"
}

variable "image_repository" {
  description = "Where functions/image.sh pushed the services' images (e.g. us-central1-docker.pkg.dev/PROJECT/baton): each service runs REPOSITORY/baton-SERVICE:image_tag."
  type        = string
}

variable "image_tag" {
  description = "The tag of the images to run."
  type        = string
}

variable "prefix" {
  description = "The start of every resource name, so that two deployments can share a project."
  type        = string
  default     = "baton"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.prefix))
    error_message = "prefix must be 2 to 15 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "firestore_database" {
  description = "The Firestore database Baton creates and uses. \"(default)\" unless the project's default database already serves something else."
  type        = string
  default     = "(default)"
}

variable "firestore_location" {
  description = "Where the Firestore database lives: a region (us-central1) or a multi-region (nam5, eur3)."
  type        = string
  default     = "nam5"
}

variable "bigquery_project" {
  description = "The project of Baton's BigQuery tables and jobs; the deployment's project when null."
  type        = string
  default     = null
}

variable "bigquery_location" {
  description = "Where Baton creates datasets and runs jobs."
  type        = string
  default     = "US"
}

variable "encryption_key" {
  description = "The key connections' secrets are sealed with: 32 random bytes in base64 (head -c 32 /dev/urandom | base64). Needed on the first apply, and when encryption_key_version changes; never stored in the state."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "encryption_key_version" {
  description = "Raise it, with a new encryption_key, to write a new version of the key (stored connections must then be set again)."
  type        = number
  default     = 1
}

variable "oauth_client_ids" {
  description = "The OAuth client ids people's Google ID tokens are issued for (the client the CLI signs in with): the API accepts no other audience."
  type        = list(string)

  validation {
    condition     = length(var.oauth_client_ids) > 0 && alltrue([for id in var.oauth_client_ids : endswith(id, ".apps.googleusercontent.com")])
    error_message = "Give at least one OAuth client id, ending in .apps.googleusercontent.com."
  }
}

variable "allowed_domains" {
  description = "The Google Workspace domains whose people may sign in (the ID token's hd claim). Empty: any verified Google account may sign up; it stays disabled until an admin enables it, but the first to sign in becomes the admin."
  type        = list(string)
  default     = []
}

variable "default_concurrency" {
  description = "A run's cap on jobs at once when its frequency sets none."
  type        = number
  default     = 10
}

variable "price_per_tib" {
  description = "The on-demand price of a TiB billed, for each job's cost."
  type        = number
  default     = 6.25
}

variable "extract_retention_days" {
  description = "Days an extract's files are kept in the extracts bucket (signed URLs work at most 7 days)."
  type        = number
  default     = 30
}

variable "landing_retention_days" {
  description = "Days the files of load tables are kept in the landing bucket after they land."
  type        = number
  default     = 30
}

variable "staging_retention_days" {
  description = "Days staged import chunks and loads' rejected rows are kept in the staging bucket."
  type        = number
  default     = 7
}

variable "importer_network" {
  description = "The VPC network and subnetwork the importer reaches private databases through (Direct VPC egress); null when the databases have public addresses."
  type = object({
    network    = string
    subnetwork = string
  })
  default = null
}

variable "max_instances" {
  description = "The most instances of each service at once."
  type        = number
  default     = 10
}

variable "deletion_protection" {
  description = "Whether terraform destroy may delete the services and the Firestore database."
  type        = bool
  default     = true
}
