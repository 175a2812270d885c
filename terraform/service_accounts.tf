# One identity per workload, each granted only what it needs, on the resource
# it needs it for. Project-wide grants are made only where Google offers no
# resource-level binding (Cloud SQL connections, writing build logs).

resource "google_service_account" "list_images" {
  account_id   = "list-images"
  display_name = "list-images (public read API)"

  # The IAM API is enabled by the same apply; without this the first apply races it.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "ingest_trigger" {
  account_id   = "ingest-trigger"
  display_name = "ingest-trigger (fetches pictures, publishes them)"

  # The IAM API is enabled by the same apply; without this the first apply races it.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "classify_image" {
  account_id   = "classify-image"
  display_name = "classify-image (Pub/Sub push endpoint)"

  # The IAM API is enabled by the same apply; without this the first apply races it.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "migrate" {
  account_id   = "catdog-migrate"
  display_name = "catdog migrate (Cloud Run job applying database migrations)"

  # The IAM API is enabled by the same apply; without this the first apply races it.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "scheduler" {
  account_id   = "catdog-scheduler"
  display_name = "Cloud Scheduler identity calling POST /ingest"

  # The IAM API is enabled by the same apply; without this the first apply races it.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "pubsub_push" {
  account_id   = "catdog-pubsub-push"
  display_name = "Pub/Sub push identity calling POST /pubsub/push"

  # The IAM API is enabled by the same apply; without this the first apply races it.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "deployer" {
  account_id   = "catdog-deployer"
  display_name = "Cloud Build: builds, pushes and deploys the gallery"

  # The IAM API is enabled by the same apply; without this the first apply races it.
  depends_on = [google_project_service.enabled]
}

locals {
  # Everything that opens a database connection (through a Cloud SQL connector).
  database_users = {
    list-images    = google_service_account.list_images.member
    ingest-trigger = google_service_account.ingest_trigger.member
    classify-image = google_service_account.classify_image.member
    migrate        = google_service_account.migrate.member
  }
}

# Cloud SQL has no instance-level IAM: the connector's permission exists only on the project.
resource "google_project_iam_member" "cloudsql_client" {
  for_each = local.database_users

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = each.value
}

# IAM database authentication: the services log in as themselves (database.tf).
# Like cloudsql.client, cloudsql.instanceUser exists only on the project.
resource "google_project_iam_member" "cloudsql_instance_user" {
  for_each = {
    list-images    = google_service_account.list_images.member
    ingest-trigger = google_service_account.ingest_trigger.member
    classify-image = google_service_account.classify_image.member
  }

  project = var.project_id
  role    = "roles/cloudsql.instanceUser"
  member  = each.value
}

# The schema owner's password: only the migration job reads it.
resource "google_secret_manager_secret_iam_member" "database_url_reader" {
  secret_id = google_secret_manager_secret.database_url.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.migrate.member
}

resource "google_secret_manager_secret_iam_member" "thecatapi_key_reader" {
  count = var.thecatapi_key != "" ? 1 : 0

  secret_id = google_secret_manager_secret.thecatapi_key[0].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.ingest_trigger.member
}

# Storage: ingest-trigger writes originals, classify-image reads them and writes
# thumbnails. list-images reads only the database (the page fetches pictures
# from the public bucket itself), so it has no role on the bucket.
resource "google_storage_bucket_iam_member" "images_writers" {
  for_each = {
    ingest-trigger = google_service_account.ingest_trigger.member
    classify-image = google_service_account.classify_image.member
  }

  bucket = google_storage_bucket.images.name
  role   = "roles/storage.objectUser"
  member = each.value
}

resource "google_pubsub_topic_iam_member" "ingest_publisher" {
  topic  = google_pubsub_topic.images.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.ingest_trigger.member
}

# The deployer (Cloud Build) pushes images, updates the services and the
# migration job, acts as their runtime identities, reads the uploaded source and
# writes the page.
resource "google_artifact_registry_repository_iam_member" "deployer_push" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.deployer.member
}

resource "google_cloud_run_v2_service_iam_member" "deployer_services" {
  for_each = {
    list-images    = google_cloud_run_v2_service.list_images.name
    ingest-trigger = google_cloud_run_v2_service.ingest_trigger.name
    classify-image = google_cloud_run_v2_service.classify_image.name
  }

  location = var.region
  name     = each.value
  role     = "roles/run.developer"
  member   = google_service_account.deployer.member
}

resource "google_cloud_run_v2_job_iam_member" "deployer_migrate" {
  location = var.region
  name     = google_cloud_run_v2_job.migrate.name
  role     = "roles/run.developer"
  member   = google_service_account.deployer.member
}

resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = {
    list-images    = google_service_account.list_images.name
    ingest-trigger = google_service_account.ingest_trigger.name
    classify-image = google_service_account.classify_image.name
    migrate        = google_service_account.migrate.name
  }

  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

# `gcloud storage rsync` reads the bucket's metadata (storage.buckets.get) and
# lists, reads, writes and deletes objects: objectAdmin has all but the first,
# legacyBucketReader adds it (deploy/tests/test_permissions.py holds every
# gcloud storage command in cloudbuild.yaml to what these roles grant).
resource "google_storage_bucket_iam_member" "deployer_website" {
  for_each = toset(["roles/storage.objectAdmin", "roles/storage.legacyBucketReader"])

  bucket = google_storage_bucket.website.name
  role   = each.value
  member = google_service_account.deployer.member
}

resource "google_storage_bucket_iam_member" "deployer_build_source" {
  bucket = google_storage_bucket.build.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.deployer.member
}

# A build that runs as a chosen service account must write its logs itself;
# log writing has no narrower scope than the project.
resource "google_project_iam_member" "deployer_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.deployer.member
}

# State addresses that changed, so an existing deployment keeps these bindings
# instead of removing and re-adding them.
moved {
  from = google_storage_bucket_iam_member.deployer_website
  to   = google_storage_bucket_iam_member.deployer_website["roles/storage.objectAdmin"]
}

moved {
  from = google_secret_manager_secret_iam_member.database_url_reader["migrate"]
  to   = google_secret_manager_secret_iam_member.database_url_reader
}
