# Optional (var.domain): one HTTPS origin for everything, with Cloud CDN.
#   /            -> the website bucket (the page)
#   /media/...   -> the images bucket, with "/media" stripped from the path
#   /api/..., /images -> list-images through a serverless network endpoint group
# The page's security headers are added here, because a bucket alone cannot send them.

resource "google_compute_global_address" "gallery" {
  count = local.cdn_enabled ? 1 : 0

  name       = "catdog-gallery"
  depends_on = [google_project_service.enabled]
}

resource "google_compute_managed_ssl_certificate" "gallery" {
  count = local.cdn_enabled ? 1 : 0

  name = "catdog-gallery"
  managed {
    domains = [var.domain]
  }
  depends_on = [google_project_service.enabled]
}

resource "google_compute_backend_bucket" "website" {
  count = local.cdn_enabled ? 1 : 0

  name        = "catdog-website"
  bucket_name = google_storage_bucket.website.name
  enable_cdn  = true

  # Honour the Cache-Control that Cloud Build sets per object: hashed assets for a
  # year, index.html and config.json never without revalidation.
  cdn_policy {
    cache_mode = "USE_ORIGIN_HEADERS"
  }

  custom_response_headers = local.security_headers
}

resource "google_compute_backend_bucket" "media" {
  count = local.cdn_enabled ? 1 : 0

  name        = "catdog-media"
  bucket_name = google_storage_bucket.images.name
  enable_cdn  = true

  # Pictures never change under a name, so the CDN may keep them a long time.
  cdn_policy {
    cache_mode  = "CACHE_ALL_STATIC"
    default_ttl = 86400
    max_ttl     = 31536000
  }

  custom_response_headers = ["X-Content-Type-Options: nosniff"]
}

resource "google_compute_region_network_endpoint_group" "list_images" {
  count = local.cdn_enabled ? 1 : 0

  name                  = "catdog-list-images"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = google_cloud_run_v2_service.list_images.name
  }
}

resource "google_compute_backend_service" "api" {
  count = local.cdn_enabled ? 1 : 0

  name                  = "catdog-api"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"

  backend {
    group = google_compute_region_network_endpoint_group.list_images[0].id
  }

  log_config {
    enable = true
  }

  custom_response_headers = ["X-Content-Type-Options: nosniff", "Referrer-Policy: strict-origin-when-cross-origin"]
}

resource "google_compute_url_map" "gallery" {
  count = local.cdn_enabled ? 1 : 0

  name            = "catdog-gallery"
  default_service = google_compute_backend_bucket.website[0].id

  host_rule {
    hosts        = [var.domain]
    path_matcher = "gallery"
  }

  path_matcher {
    name            = "gallery"
    default_service = google_compute_backend_bucket.website[0].id

    route_rules {
      priority = 1
      match_rules {
        prefix_match = "/media/"
      }
      service = google_compute_backend_bucket.media[0].id
      route_action {
        url_rewrite {
          path_prefix_rewrite = "/"
        }
      }
    }

    route_rules {
      priority = 2
      match_rules {
        prefix_match = "/api/"
      }
      service = google_compute_backend_service.api[0].id
    }

    route_rules {
      priority = 3
      match_rules {
        full_path_match = "/images"
      }
      service = google_compute_backend_service.api[0].id
    }
  }
}

resource "google_compute_target_https_proxy" "gallery" {
  count = local.cdn_enabled ? 1 : 0

  name             = "catdog-gallery"
  url_map          = google_compute_url_map.gallery[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.gallery[0].id]
}

resource "google_compute_global_forwarding_rule" "https" {
  count = local.cdn_enabled ? 1 : 0

  name                  = "catdog-gallery-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.gallery[0].address
  port_range            = "443"
  target                = google_compute_target_https_proxy.gallery[0].id
}

# Plain HTTP only redirects to HTTPS.
resource "google_compute_url_map" "https_redirect" {
  count = local.cdn_enabled ? 1 : 0

  name = "catdog-gallery-redirect"
  default_url_redirect {
    https_redirect         = true
    strip_query            = false
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_compute_target_http_proxy" "https_redirect" {
  count = local.cdn_enabled ? 1 : 0

  name    = "catdog-gallery-redirect"
  url_map = google_compute_url_map.https_redirect[0].id
}

resource "google_compute_global_forwarding_rule" "http" {
  count = local.cdn_enabled ? 1 : 0

  name                  = "catdog-gallery-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.gallery[0].address
  port_range            = "80"
  target                = google_compute_target_http_proxy.https_redirect[0].id
}
