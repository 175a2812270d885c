# Names and URLs that several files share. The URLs are Cloud Run's deterministic
# service URLs, so a service can be told its own address (OIDC_AUDIENCE) without
# referring to itself.
locals {
  prefix = var.name_prefix != "" ? var.name_prefix : var.project_id

  registry = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"

  # Terraform creates the services with Google's sample image, because ours do not
  # exist before the first Cloud Build run; from then on Cloud Build deploys
  # "${local.registry}/<name>:<commit>" and Terraform leaves the image alone.
  bootstrap_image = "us-docker.pkg.dev/cloudrun/container/hello"

  run_url = {
    for name in ["list-images", "ingest-trigger", "classify-image"] :
    name => "https://${name}-${data.google_project.this.number}.${var.region}.run.app"
  }

  cdn_enabled = var.domain != ""

  # What the page and the API hand out as the base of image URLs.
  media_base_url = local.cdn_enabled ? "https://${var.domain}/media" : "https://storage.googleapis.com/${google_storage_bucket.images.name}"
  # The page calls the API on its own origin behind the load balancer, otherwise on list-images' URL.
  api_base_url = local.cdn_enabled ? "" : local.run_url["list-images"]
  gallery_url  = local.cdn_enabled ? "https://${var.domain}/" : "https://storage.googleapis.com/${google_storage_bucket.website.name}/index.html"
  # The path the page lives under (SvelteKit's paths.base): the domain's root,
  # or the bucket's name on storage.googleapis.com.
  page_base_path = local.cdn_enabled ? "" : "/${google_storage_bucket.website.name}"

  pubsub_service_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # The page's Content-Security-Policy: no inline script, no framing, images only
  # from the page's origin and the media bucket, API calls only to the API.
  content_security_policy = join("; ", [
    "default-src 'self'",
    "script-src 'self'",
    # Svelte sets style attributes from script; styles cannot run code.
    "style-src 'self' 'unsafe-inline'",
    trimspace("img-src 'self' data: blob: ${local.cdn_enabled ? "" : "https://storage.googleapis.com"}"),
    trimspace("connect-src 'self' ${local.api_base_url}"),
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'none'",
    "object-src 'none'",
  ])

  security_headers = [
    "Content-Security-Policy: ${local.content_security_policy}",
    "Referrer-Policy: strict-origin-when-cross-origin",
    "X-Content-Type-Options: nosniff",
    "X-Frame-Options: DENY",
    "Strict-Transport-Security: max-age=31536000; includeSubDomains",
  ]
}
