# The five services, one Cloud Run service each, from one image per service. None runs while
# nothing is due (min 0 instances, CPU only during requests). Each is ready within 12 ms of
# starting and idles under 14 MB resident (tests/bench/services.sh): 1 vCPU and 256 MiB
# leave room for 80 concurrent requests; the importer, whose copies hold memory and a core,
# takes four at a time in 512 MiB.
#
# Every service verifies every caller's token itself, so Cloud Run's own invoker check is off
# for all five: when Cloud Run checks a token itself it removes the token's signature before
# the container sees it, and the services would refuse every call. The tick, planner,
# executor and importer take Google-signed OIDC tokens of their one caller (Cloud Scheduler,
# Pub/Sub push) and their ingress is internal: only Google's own callers in the project reach
# them. The API is reachable from anywhere and lets in people who sign in with Google (ID
# tokens for one of var.oauth_client_ids, from var.allowed_domains) and Baton's API tokens,
# each call checked against the caller's role.

locals {
  # What every service reads.
  common_env = {
    BATON_PROJECT            = var.project
    BATON_FIRESTORE_DATABASE = google_firestore_database.baton.name
    BATON_BIGQUERY_PROJECT   = local.bigquery_project
    BATON_BIGQUERY_LOCATION  = var.bigquery_location
    BATON_TOPIC_PLANNER      = google_pubsub_topic.planner.name
    BATON_TOPIC_EXECUTOR     = google_pubsub_topic.executor.name
    BATON_TOPIC_IMPORTER     = google_pubsub_topic.importer.name
  }

  push_callers = {
    BATON_AUTH_CALLERS = google_service_account.push.email
  }

  services = {
    tick = {
      timeout     = "60s"
      memory      = "256Mi"
      concurrency = 80
      env = merge(local.common_env, {
        BATON_AUTH_AUDIENCE       = local.url["tick"]
        BATON_AUTH_CALLERS        = google_service_account.scheduler.email
        BATON_DEFAULT_CONCURRENCY = tostring(var.default_concurrency)
      })
      secret_env = {}
    }
    planner = {
      timeout     = "60s"
      memory      = "256Mi"
      concurrency = 80
      env = merge(local.common_env, local.push_callers, {
        BATON_AUTH_AUDIENCE       = local.url["planner"]
        BATON_DEFAULT_CONCURRENCY = tostring(var.default_concurrency)
      })
      secret_env = { BATON_ENCRYPTION_KEY = google_secret_manager_secret.encryption_key.secret_id }
    }
    executor = {
      # Within one delivery the executor waits for a BigQuery job up to 540 s, below the
      # subscription's 600 s ack deadline; a longer job is picked up by the next delivery.
      timeout     = "600s"
      memory      = "256Mi"
      concurrency = 80
      env = merge(local.common_env, local.push_callers, {
        BATON_AUTH_AUDIENCE         = local.url["executor"]
        BATON_EXECUTOR_WAIT_SECONDS = "540"
        BATON_EXTRACT_BUCKET        = google_storage_bucket.extracts.name
        BATON_PRICE_PER_TIB         = tostring(var.price_per_tib)
      })
      secret_env = { BATON_ENCRYPTION_KEY = google_secret_manager_secret.encryption_key.secret_id }
    }
    importer = {
      # Like the executor, a delivery waits for its load up to 540 s. A copy keeps about 30 MB
      # (a chunk compressing, one uploading) and a core busy while it reads: four at a time per
      # instance, more instances for more (Pub/Sub's pushes make Cloud Run add them).
      timeout     = "600s"
      memory      = "512Mi"
      concurrency = 4
      env = merge(local.common_env, local.push_callers, {
        BATON_AUTH_AUDIENCE         = local.url["importer"]
        BATON_IMPORTER_WAIT_SECONDS = "540"
        BATON_STAGING_BUCKET        = google_storage_bucket.staging.name
        BATON_LANDING_BUCKET        = google_storage_bucket.landing.name
      })
      secret_env = { BATON_ENCRYPTION_KEY = google_secret_manager_secret.encryption_key.secret_id }
    }
    api = {
      timeout     = "300s"
      memory      = "256Mi"
      concurrency = 80
      env = merge(local.common_env, {
        BATON_DEFAULT_CONCURRENCY = tostring(var.default_concurrency)
        BATON_PRICE_PER_TIB       = tostring(var.price_per_tib)
        BATON_OAUTH_CLIENT_ID     = join(",", var.oauth_client_ids)
        BATON_ALLOWED_DOMAINS     = join(",", var.allowed_domains)
        BATON_LANDING_BUCKET      = google_storage_bucket.landing.name
      })
      secret_env = { BATON_ENCRYPTION_KEY = google_secret_manager_secret.encryption_key.secret_id }
    }
  }
}

resource "google_cloud_run_v2_service" "service" {
  for_each = local.services

  project             = var.project
  location            = var.region
  name                = "${var.prefix}-${each.key}"
  description         = "Baton's ${each.key}."
  deletion_protection = var.deletion_protection

  ingress              = each.key == "api" ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = true

  template {
    service_account                  = google_service_account.service[each.key].email
    timeout                          = each.value.timeout
    max_instance_request_concurrency = each.value.concurrency

    # The importer reaches databases on a private network through Direct VPC egress, when
    # var.importer_network names one; public addresses go out as before.
    dynamic "vpc_access" {
      for_each = each.key == "importer" && var.importer_network != null ? [var.importer_network] : []
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = vpc_access.value.network
          subnetwork = vpc_access.value.subnetwork
        }
      }
    }

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    containers {
      image = "${var.image_repository}/baton-${each.key}:${var.image_tag}"

      resources {
        limits = {
          cpu    = "1"
          memory = each.value.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = each.value.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = each.value.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 1
        failure_threshold     = 10
        timeout_seconds       = 1

        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_version.encryption_key,
    google_secret_manager_secret_iam_member.encryption_key,
  ]
}
