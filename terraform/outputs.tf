output "region" {
  description = "The region everything runs in."
  value       = var.region
}

output "gallery_url" {
  description = "Where the gallery page is served."
  value       = local.gallery_url
}

output "api_url" {
  description = "Base URL of the public read API (list-images)."
  value       = local.cdn_enabled ? "https://${var.domain}" : local.run_url["list-images"]
}

output "images_bucket" {
  description = "Bucket holding the pictures and their thumbnails."
  value       = google_storage_bucket.images.name
}

output "website_bucket" {
  description = "Bucket holding the built page."
  value       = google_storage_bucket.website.name
}

output "build_bucket" {
  description = "Bucket where `gcloud builds submit` stages the uploaded source."
  value       = google_storage_bucket.build.name
}

output "load_balancer_ip" {
  description = "Point the custom domain's A record here (only with var.domain)."
  value       = local.cdn_enabled ? google_compute_global_address.gallery[0].address : null
}

output "image_repository" {
  description = "Artifact Registry path the images are pushed to: <repository>/<function>:<commit>."
  value       = local.registry
}

output "deployer_service_account" {
  description = "The identity Cloud Build runs as."
  value       = google_service_account.deployer.id
}

output "cloud_build_substitutions" {
  description = "The --substitutions value for `gcloud builds submit` (add _COMMIT)."
  value = join(",", [
    "_REGION=${var.region}",
    "_REPOSITORY=${google_artifact_registry_repository.images.repository_id}",
    "_WEBSITE_BUCKET=${google_storage_bucket.website.name}",
    "_API_BASE_URL=${local.api_base_url}",
    "_MEDIA_BASE_URL=${local.media_base_url}",
    "_BASE_PATH=${local.page_base_path}",
  ])
}
