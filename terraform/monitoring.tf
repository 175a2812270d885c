# Two alerts: a message gave up (dead-letter subscription not empty), and
# classify-image answers more than 5 % of its requests with a server error.

resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email != "" ? 1 : 0

  display_name = "CatDog gallery alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.enabled]
}

locals {
  alert_channels = google_monitoring_notification_channel.email[*].id
}

resource "google_monitoring_alert_policy" "dead_letter_not_empty" {
  display_name          = "CatDog: pictures could not be classified (dead letters)"
  combiner              = "OR"
  notification_channels = local.alert_channels

  conditions {
    display_name = "dead-letter subscription holds messages"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.images_dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    content   = "Messages in ${google_pubsub_subscription.images_dead_letter.name} failed classification five times. Pull them with `gcloud pubsub subscriptions pull ${google_pubsub_subscription.images_dead_letter.name} --limit=10` and read classify-image's logs for their image ids."
    mime_type = "text/markdown"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "classify_error_rate" {
  display_name          = "CatDog: classify-image error rate above 5 %"
  combiner              = "OR"
  notification_channels = local.alert_channels

  conditions {
    display_name = "5xx share of classify-image requests over 5 minutes"
    condition_prometheus_query_language {
      query               = "sum(rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",service_name=\"${google_cloud_run_v2_service.classify_image.name}\",response_code_class=\"5xx\"}[5m])) / sum(rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",service_name=\"${google_cloud_run_v2_service.classify_image.name}\"}[5m])) > 0.05"
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    content   = "classify-image answers more than 5 % of pushes with a 5xx; Pub/Sub retries them, and after five failures they go to the dead-letter topic. Check the database (503) and classify-image's logs."
    mime_type = "text/markdown"
  }

  depends_on = [google_project_service.enabled]
}
