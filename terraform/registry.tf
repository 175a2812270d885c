resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84:The images hold open-source code and no secret; Google-managed encryption suffices, and a KMS key would cost money at rest.
  location      = var.region
  repository_id = "catdog"
  description   = "Container images of the CatDog gallery, tagged with the commit they were built from."
  format        = "DOCKER"

  # Old builds pile up one per deployment; keep the ten newest of each image.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.enabled]
}
