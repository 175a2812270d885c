# ingest-trigger publishes one message per stored picture; Pub/Sub pushes it to
# classify-image. A message that fails five times goes to the dead-letter topic,
# where a pull subscription keeps it for a week for a person to look at.

resource "google_pubsub_topic" "images" {
  # checkov:skip=CKV_GCP_83:Messages carry only an image id and a hash of a public picture; Google-managed encryption suffices, and a KMS key would cost money at rest.
  name = "catdog-images"

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "images_dead_letter" {
  # checkov:skip=CKV_GCP_83:Messages carry only an image id and a hash of a public picture; Google-managed encryption suffices, and a KMS key would cost money at rest.
  name = "catdog-images-dead-letter"

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_subscription" "classify_image_push" {
  name  = "classify-image-push"
  topic = google_pubsub_topic.images.id

  # classify-image answers within its 60 s request timeout.
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${local.run_url["classify-image"]}/pubsub/push"
    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = local.run_url["classify-image"]
    }
  }

  # A 503 (database away) comes back after 10 s, then later and later.
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.images_dead_letter.id
    max_delivery_attempts = 5
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_cloud_run_v2_service_iam_member.classify_image_pubsub,
  ]
}

resource "google_pubsub_subscription" "images_dead_letter" {
  name  = "catdog-images-dead-letter"
  topic = google_pubsub_topic.images_dead_letter.id

  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it must publish to the
# dead-letter topic and acknowledge on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.images_dead_letter.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${local.pubsub_service_agent}"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_source_subscriber" {
  subscription = google_pubsub_subscription.classify_image_push.id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${local.pubsub_service_agent}"
}

# The service agent signs the push requests' OIDC tokens as the push identity.
resource "google_service_account_iam_member" "pubsub_push_token_creator" {
  service_account_id = google_service_account.pubsub_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.pubsub_service_agent}"
}
