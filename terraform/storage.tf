# Three buckets: the pictures (public, written by the functions), the page
# (public, written by Cloud Build) and the source uploads of Cloud Build (private).

resource "google_storage_bucket" "images" {
  # checkov:skip=CKV_GCP_114:The gallery publishes every picture it shows; public read of objects is the point of this bucket. Writes stay limited to two service accounts.
  # checkov:skip=CKV_GCP_62:Access logs of public, anonymous image reads would cost more than the gallery and tell nothing the CDN/Cloud Run logs do not.
  # checkov:skip=CKV_GCP_78:Objects are written once under names derived from their id and never overwritten, so versions would only keep deleted orphans.
  name                        = "${local.prefix}-catdog-images"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "inherited"
  # The same switch as the database: once deletion_protection is off, destroy may empty the bucket.
  force_destroy = !var.deletion_protection

  cors {
    origin          = local.cdn_enabled ? ["https://${var.domain}"] : ["https://storage.googleapis.com"]
    method          = ["GET", "HEAD"]
    response_header = ["Content-Type", "Cache-Control"]
    max_age_seconds = 3600
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_iam_member" "images_public" {
  # checkov:skip=CKV_GCP_28:The gallery shows these pictures to anyone; public read of an object by name is the purpose; listing the bucket is not granted.
  bucket = google_storage_bucket.images.name
  # Reading an object by its name, not listing the bucket.
  role   = "roles/storage.legacyObjectReader"
  member = "allUsers"
}

resource "google_storage_bucket" "website" {
  # checkov:skip=CKV_GCP_114:It serves a public web page.
  # checkov:skip=CKV_GCP_62:Access logs of a public static page are not worth their storage here.
  # checkov:skip=CKV_GCP_78:Every deployment re-uploads the whole page from git; the repository is the version history.
  name                        = "${local.prefix}-catdog-web"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "inherited"
  # The page is rebuilt from the repository on each deployment; nothing here is irreplaceable.
  force_destroy = true

  # Used when the load balancer serves the bucket (custom domain). The gallery
  # is one page whose state lives in the query string, so any other path is
  # a real 404: the page's own 404.html (plain HTML), as local mode answers.
  website {
    main_page_suffix = "index.html"
    not_found_page   = "404.html"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_iam_member" "website_public" {
  # checkov:skip=CKV_GCP_28:This bucket is the public web page.
  bucket = google_storage_bucket.website.name
  # Reading an object by its name, not listing the bucket.
  role   = "roles/storage.legacyObjectReader"
  member = "allUsers"
}

resource "google_storage_bucket" "build" {
  # checkov:skip=CKV_GCP_62:Holds only Cloud Build's source uploads, deleted after a week.
  # checkov:skip=CKV_GCP_78:Each upload is a new object; nothing is overwritten.
  name                        = "${local.prefix}-catdog-build"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}
