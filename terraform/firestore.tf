# Firestore holds all of Baton's configuration, state and history (native mode). The composite
# indexes are those the services' queries need (shared/google/src/store/indexes.rs names them; the
# emulator needs none, tests/e2e/terraform.rs checks that each is declared here).

resource "google_firestore_database" "baton" {
  project                 = var.project
  name                    = var.firestore_database
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.deletion_protection ? "ABANDON" : "DELETE"

  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"

  depends_on = [google_project_service.apis]
}

# The planner's next jobs to dispatch: queued, not dispatched, most important first.
resource "google_firestore_index" "waiting_jobs" {
  project     = var.project
  database    = google_firestore_database.baton.name
  collection  = "jobs"
  query_scope = "COLLECTION"

  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "dispatched"
    order      = "ASCENDING"
  }
  fields {
    field_path = "priority"
    order      = "DESCENDING"
  }
  fields {
    field_path = "table"
    order      = "ASCENDING"
  }
}

# The jobs one planner event dispatched, to send again after a lost publish.
resource "google_firestore_index" "jobs_by_dispatch_cause" {
  project     = var.project
  database    = google_firestore_database.baton.name
  collection  = "jobs"
  query_scope = "COLLECTION"

  fields {
    field_path = "dispatch_cause"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
}

# A dimension's costs over a range of days.
resource "google_firestore_index" "cost_rollups" {
  project     = var.project
  database    = google_firestore_database.baton.name
  collection  = "cost_rollups"
  query_scope = "COLLECTION"

  fields {
    field_path = "dimension"
    order      = "ASCENDING"
  }
  fields {
    field_path = "day"
    order      = "ASCENDING"
  }
}

# Alerts' claims only need to outlive their messages' redeliveries (7 days at most): Firestore
# deletes each at its expire_at (30 days after the claim). Runs, jobs and cost roll-ups are
# the history people read, and are kept.
resource "google_firestore_field" "alerts_ttl" {
  project    = var.project
  database   = google_firestore_database.baton.name
  collection = "alerts"
  field      = "expire_at"

  ttl_config {}

  # A TTL field needs no index of its own.
  index_config {}
}

# A load table's files in one state, the longest waiting first (batching, the tick's sweep).
resource "google_firestore_index" "files_by_state" {
  project     = var.project
  database    = google_firestore_database.baton.name
  collection  = "files"
  query_scope = "COLLECTION"

  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "arrived"
    order      = "ASCENDING"
  }
}

# The tick's sweep: jobs of every run whose watch has passed, the longest overdue first.
resource "google_firestore_index" "overdue_jobs" {
  project     = var.project
  database    = google_firestore_database.baton.name
  collection  = "jobs"
  query_scope = "COLLECTION_GROUP"

  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "watch_at"
    order      = "ASCENDING"
  }
}

# The operator's page: a table's jobs in every run, the latest first.
resource "google_firestore_index" "table_jobs" {
  project     = var.project
  database    = google_firestore_database.baton.name
  collection  = "jobs"
  query_scope = "COLLECTION_GROUP"

  fields {
    field_path = "table"
    order      = "ASCENDING"
  }
  fields {
    field_path = "run_time"
    order      = "DESCENDING"
  }
}

# The page's one-time links (minutes) and sign-ins (hours) are deleted by TTL once expired.
resource "google_firestore_field" "page_links_ttl" {
  project    = var.project
  database   = google_firestore_database.baton.name
  collection = "page_links"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}

resource "google_firestore_field" "page_sessions_ttl" {
  project    = var.project
  database   = google_firestore_database.baton.name
  collection = "page_sessions"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}

# A refused push's reason is kept a week (Pub/Sub's retention), for the dead letter it may
# become; TTL deletes the rest.
resource "google_firestore_field" "push_failures_ttl" {
  project    = var.project
  database   = google_firestore_database.baton.name
  collection = "push_failures"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}
