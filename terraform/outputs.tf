output "urls" {
  description = "Each service's URL; the API's is the CLI's BATON_API_URL."
  value       = { for name, service in google_cloud_run_v2_service.service : name => service.uri }
}

output "service_accounts" {
  description = "Each identity's email: the services', Pub/Sub's push identity and Cloud Scheduler's."
  value = merge(
    { for name, account in google_service_account.service : name => account.email },
    {
      push      = google_service_account.push.email
      scheduler = google_service_account.scheduler.email
    },
  )
}

output "buckets" {
  description = "The extracts, staging and landing buckets."
  value = {
    extracts = google_storage_bucket.extracts.name
    staging  = google_storage_bucket.staging.name
    landing  = google_storage_bucket.landing.name
  }
}

output "dead_letter_subscription" {
  description = "Where messages that failed too often are kept."
  value       = google_pubsub_subscription.dead_letters.name
}
