# Fires one ingestion run per minute: POST /ingest on ingest-trigger, with an
# OIDC token for the Scheduler's own identity.
resource "google_cloud_scheduler_job" "ingest" {
  name             = "catdog-ingest"
  region           = var.region
  description      = "Fetch new cat and dog pictures"
  schedule         = var.ingest_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"

  # The next scheduled run is the retry.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${local.run_url["ingest-trigger"]}/ingest"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.run_url["ingest-trigger"]
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_cloud_run_v2_service_iam_member.ingest_trigger_scheduler,
  ]
}
