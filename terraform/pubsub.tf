# One topic per receiving service, each with a push subscription to the service's /pubsub
# that carries an OIDC token of the push identity with the service's URL as audience. A
# message refused 20 times moves to the dead-letter topic, whose subscription pushes it to the
# planner's /dead-letters: kept in Firestore until someone replays or drops it.

locals {
  # The ack deadline of each receiving service's subscription matches its request timeout:
  # the executor waits for a BigQuery job up to BATON_EXECUTOR_WAIT_SECONDS (540 s) within
  # one delivery.
  receivers = {
    planner  = { ack_deadline_seconds = 60 }
    executor = { ack_deadline_seconds = 600 }
    importer = { ack_deadline_seconds = 600 }
  }
  max_delivery_attempts = 20
}

resource "google_pubsub_topic" "planner" {
  project                    = var.project
  name                       = "${var.prefix}-planner"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "executor" {
  project                    = var.project
  name                       = "${var.prefix}-executor"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "importer" {
  project                    = var.project
  name                       = "${var.prefix}-importer"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project
  name    = "${var.prefix}-dead-letter"

  depends_on = [google_project_service.apis]
}

locals {
  receiver_topics = {
    planner  = google_pubsub_topic.planner.id
    executor = google_pubsub_topic.executor.id
    importer = google_pubsub_topic.importer.id
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.receivers

  project                    = var.project
  name                       = "${var.prefix}-${each.key}-push"
  topic                      = local.receiver_topics[each.key]
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${local.url[each.key]}/pubsub"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.url[each.key]
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = local.max_delivery_attempts
  }

  # Never expire for want of activity: a quiet week is normal.
  expiration_policy {
    ttl = ""
  }

  depends_on = [google_service_account_iam_member.pubsub_mints_push_tokens]
}

# Cloud Storage's notifications of the landing bucket, pushed to the importer's /storage.
resource "google_pubsub_topic" "landing" {
  project                    = var.project
  name                       = "${var.prefix}-landing"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "landing" {
  project                    = var.project
  name                       = "${var.prefix}-landing-push"
  topic                      = google_pubsub_topic.landing.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${local.url["importer"]}/storage"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.url["importer"]
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = local.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_service_account_iam_member.pubsub_mints_push_tokens]
}

# Dead letters are pushed to the planner, which keeps each in Firestore (`dead_letters`) until
# someone replays or drops it (`baton dead-letters`). While the planner cannot take them they
# wait here, 7 days.
resource "google_pubsub_subscription" "dead_letters" {
  project                    = var.project
  name                       = "${var.prefix}-dead-letters"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${local.url["planner"]}/dead-letters"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.url["planner"]
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_service_account_iam_member.pubsub_mints_push_tokens]
}
