# The three functions and the migration job on Cloud Run. Sizes follow the
# work: listing is I/O-bound and shares one instance among many requests;
# classification decodes and runs a neural network, so it gets two CPUs and few
# requests at a time. All scale to zero.
#
# Each service reaches Cloud SQL through a Cloud SQL Auth Proxy sidecar, which
# logs it in as its own service account (IAM database authentication, no
# password; see database.tf). The app container is always containers[0]: Cloud
# Build deploys it by name (`--container=app`) and Terraform ignores its image.

locals {
  # The Cloud SQL Auth Proxy, pinned like the images in cloudbuild.yaml (update
  # command in README.md, "Pinned images").
  cloud_sql_proxy_image = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1"

  # Connection budget. PostgreSQL accepts var.database_max_connections (25 on
  # db-f1-micro), of which Cloud SQL keeps 3 for its own maintenance and
  # superuser: 22 are ours. What may be open at once:
  #   steady:  every service at max instances, each instance's pool full,
  #            plus list-images' one LISTEN connection per instance outside
  #            its pool (the listings' change feed):
  #            list-images 2 x (2 + 1), ingest-trigger 1 x 2, classify-image 2 x 1 = 10;
  #   rollout: `gcloud run deploy` starts the new revision while the old one's
  #            instances still hold their pools: twice steady (20);
  #   migrate: the migration job (2) runs while the old revisions serve, before
  #            the rollout, so it adds to steady, not to the rollout (12);
  #   operator: one psql session for a person (1).
  # peak = max(rollout, steady + migrate) + operator = 21 <= 22. A precondition
  # on the instance (database.tf) refuses a plan that exceeds it; pool sizes
  # below are DATABASE_POOL_SIZE, and each proxy's --max-connections is the
  # instance's connections (pool plus listener), or the proxy would refuse
  # the pool's last connection. classify-image holds a connection only for
  # each short query, never across an inference, so one serves its two
  # concurrent requests.
  database_pool_size = {
    list-images    = 2
    ingest-trigger = 2
    classify-image = 1
    migrate        = 2
  }
  database_listeners = {
    list-images    = 1
    ingest-trigger = 0
    classify-image = 0
  }
  database_connections_per_instance = {
    for name, listeners in local.database_listeners : name => local.database_pool_size[name] + listeners
  }
  database_max_instances = {
    list-images    = var.list_max_instances
    ingest-trigger = 1
    classify-image = var.classify_max_instances
  }
  database_connections_steady = sum([for name, instances in local.database_max_instances : instances * local.database_connections_per_instance[name]])
  database_connections = {
    available = var.database_max_connections - 3
    steady    = local.database_connections_steady
    peak      = max(2 * local.database_connections_steady, local.database_connections_steady + local.database_pool_size["migrate"]) + 1
  }

  # Cloud SQL names a service account's IAM database user after its e-mail without ".gserviceaccount.com".
  database_iam_users = {
    list-images    = trimsuffix(google_service_account.list_images.email, ".gserviceaccount.com")
    ingest-trigger = trimsuffix(google_service_account.ingest_trigger.email, ".gserviceaccount.com")
    classify-image = trimsuffix(google_service_account.classify_image.email, ".gserviceaccount.com")
  }
  # No password: the proxy logs in with the service account's token. The user
  # name holds an "@", percent-encoded in the URL.
  database_url = {
    for name, user in local.database_iam_users :
    name => "postgres://${urlencode(user)}@/${google_sql_database.catdog.name}?host=/cloudsql/${google_sql_database_instance.main.connection_name}"
  }
}

resource "google_cloud_run_v2_service" "list_images" {
  name     = "list-images"
  location = var.region
  # Behind the load balancer only the load balancer may reach it; otherwise the page calls it directly.
  ingress = local.cdn_enabled ? "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" : "INGRESS_TRAFFIC_ALL"
  # Stateless: deleting it loses nothing that the next apply does not restore.
  deletion_protection = false

  template {
    service_account                  = google_service_account.list_images.email
    max_instance_request_concurrency = 80
    timeout                          = "10s"

    scaling {
      min_instance_count = 0
      max_instance_count = local.database_max_instances["list-images"]
    }

    # The proxy's Unix socket, shared with the app.
    volumes {
      name = "cloudsql"
      empty_dir {
        medium     = "MEMORY"
        size_limit = "1Mi"
      }
    }

    containers {
      name = "app"
      # Starts once the proxy's socket is ready.
      depends_on = ["cloud-sql-proxy"]
      image      = local.bootstrap_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      env {
        name  = "DATABASE_URL"
        value = local.database_url["list-images"]
      }
      env {
        name  = "STORAGE_URL"
        value = "gs://${google_storage_bucket.images.name}"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project_id
      }
      env {
        name  = "PUBLIC_STORAGE_BASE_URL"
        value = local.media_base_url
      }
      env {
        name  = "IMAGES_LIMIT"
        value = "10"
      }
      env {
        # Pages are kept until PostgreSQL notifies a change; this bounds their
        # age only while the notification connection is down (the default).
        name  = "LISTING_CACHE_MS"
        value = "1000"
      }
      env {
        name  = "INGEST_INTERVAL_SECS"
        value = tostring(var.ingest_interval_secs)
      }
      env {
        name  = "MIGRATE_ON_START"
        value = "false"
      }
      env {
        name  = "DATABASE_POOL_SIZE"
        value = tostring(local.database_pool_size["list-images"])
      }
      env {
        name  = "DATABASE_TIMEOUT_MS"
        value = "2000"
      }
      env {
        name  = "LOG_FORMAT"
        value = "json"
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 1
        timeout_seconds       = 1
        failure_threshold     = 30
        http_get {
          path = "/healthz"
        }
      }
      liveness_probe {
        period_seconds    = 30
        timeout_seconds   = 2
        failure_threshold = 3
        http_get {
          path = "/healthz"
        }
      }
    }

    containers {
      name  = "cloud-sql-proxy"
      image = local.cloud_sql_proxy_image
      args = [
        "--auto-iam-authn",
        "--unix-socket=/cloudsql",
        "--max-connections=${local.database_connections_per_instance["list-images"]}",
        "--health-check",
        "--http-address=0.0.0.0",
        "--http-port=9801",
        "--structured-logs",
        "--exit-zero-on-sigterm",
        google_sql_database_instance.main.connection_name,
      ]

      # Half a CPU beside the app's, as in Google's own sidecar sample: it only
      # relays bytes and refreshes a certificate and a token now and then.
      resources {
        limits = {
          cpu    = "0.5"
          memory = "256Mi"
        }
        cpu_idle = true
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      startup_probe {
        period_seconds    = 1
        timeout_seconds   = 1
        failure_threshold = 30
        http_get {
          path = "/startup"
          port = 9801
        }
      }
    }
  }

  lifecycle {
    # Cloud Build deploys each commit's image; Terraform must not roll it back.
    # `gcloud run deploy` also names the revision it creates and records the
    # image it was given in a client.knative.dev/user-image annotation (and
    # its own name and version in client, client_version); Terraform would
    # otherwise clear them and roll a new revision on every apply
    # (hashicorp/terraform-provider-google#13410). Terraform sets no annotations.
    ignore_changes = [
      template[0].containers[0].image,
      template[0].revision,
      template[0].annotations,
      annotations,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.enabled,
    google_project_iam_member.cloudsql_instance_user,
    google_sql_user.workload,
  ]
}

resource "google_cloud_run_v2_service" "ingest_trigger" {
  name     = "ingest-trigger"
  location = var.region
  # Cloud Scheduler in this project counts as internal traffic; nobody else needs to reach it.
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = false

  template {
    service_account = google_service_account.ingest_trigger.email
    # One ingestion run at a time; the next scheduled run picks up whatever this one missed.
    max_instance_request_concurrency = 1
    timeout                          = "120s"

    scaling {
      min_instance_count = 0
      max_instance_count = local.database_max_instances["ingest-trigger"]
    }

    # The proxy's Unix socket, shared with the app.
    volumes {
      name = "cloudsql"
      empty_dir {
        medium     = "MEMORY"
        size_limit = "1Mi"
      }
    }

    containers {
      name = "app"
      # Starts once the proxy's socket is ready.
      depends_on = ["cloud-sql-proxy"]
      image      = local.bootstrap_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      env {
        name  = "DATABASE_URL"
        value = local.database_url["ingest-trigger"]
      }
      env {
        name  = "STORAGE_URL"
        value = "gs://${google_storage_bucket.images.name}"
      }
      env {
        name  = "PUBSUB_TOPIC"
        value = google_pubsub_topic.images.name
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project_id
      }
      env {
        name  = "INGEST_SOURCES"
        value = var.ingest_sources
      }
      env {
        name  = "INGEST_BATCH_SIZE"
        value = tostring(var.ingest_batch_size)
      }
      env {
        name  = "MAX_IMAGE_BYTES"
        value = "20971520"
      }
      dynamic "env" {
        for_each = var.thecatapi_key != "" ? [google_secret_manager_secret.thecatapi_key[0].secret_id] : []
        content {
          name = "THECATAPI_KEY"
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }
      env {
        name  = "REQUIRE_OIDC"
        value = "true"
      }
      env {
        name  = "OIDC_AUDIENCE"
        value = local.run_url["ingest-trigger"]
      }
      env {
        name  = "OIDC_ALLOWED_EMAILS"
        value = google_service_account.scheduler.email
      }
      env {
        name  = "MIGRATE_ON_START"
        value = "false"
      }
      env {
        name  = "DATABASE_POOL_SIZE"
        value = tostring(local.database_pool_size["ingest-trigger"])
      }
      env {
        name  = "DATABASE_TIMEOUT_MS"
        value = "2000"
      }
      env {
        name  = "LOG_FORMAT"
        value = "json"
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 1
        timeout_seconds       = 1
        failure_threshold     = 30
        http_get {
          path = "/healthz"
        }
      }
    }

    containers {
      name  = "cloud-sql-proxy"
      image = local.cloud_sql_proxy_image
      args = [
        "--auto-iam-authn",
        "--unix-socket=/cloudsql",
        "--max-connections=${local.database_connections_per_instance["ingest-trigger"]}",
        "--health-check",
        "--http-address=0.0.0.0",
        "--http-port=9801",
        "--structured-logs",
        "--exit-zero-on-sigterm",
        google_sql_database_instance.main.connection_name,
      ]

      # Half a CPU beside the app's, as in Google's own sidecar sample: it only
      # relays bytes and refreshes a certificate and a token now and then.
      resources {
        limits = {
          cpu    = "0.5"
          memory = "256Mi"
        }
        cpu_idle = true
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      startup_probe {
        period_seconds    = 1
        timeout_seconds   = 1
        failure_threshold = 30
        http_get {
          path = "/startup"
          port = 9801
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      template[0].revision,
      template[0].annotations,
      annotations,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.enabled,
    google_project_iam_member.cloudsql_instance_user,
    google_sql_user.workload,
    google_secret_manager_secret_iam_member.thecatapi_key_reader,
    google_secret_manager_secret_version.thecatapi_key,
  ]
}

resource "google_cloud_run_v2_service" "classify_image" {
  name     = "classify-image"
  location = var.region
  # Pub/Sub push in this project counts as internal traffic.
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = false

  template {
    service_account = google_service_account.classify_image.email
    # CPU-bound: one classification per CPU, so a message never waits behind another for long.
    max_instance_request_concurrency = 2
    # Matches the push subscription's acknowledgement deadline.
    timeout = "60s"

    scaling {
      min_instance_count = 0
      max_instance_count = local.database_max_instances["classify-image"]
    }

    # The proxy's Unix socket, shared with the app.
    volumes {
      name = "cloudsql"
      empty_dir {
        medium     = "MEMORY"
        size_limit = "1Mi"
      }
    }

    containers {
      name = "app"
      # Starts once the proxy's socket is ready.
      depends_on = ["cloud-sql-proxy"]
      # The image sets MODEL_DIR to the model baked into it.
      image = local.bootstrap_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "2"
          memory = "2Gi"
        }
        cpu_idle = true
        # Loading the model is the slow part of a cold start.
        startup_cpu_boost = true
      }

      env {
        name  = "DATABASE_URL"
        value = local.database_url["classify-image"]
      }
      env {
        name  = "STORAGE_URL"
        value = "gs://${google_storage_bucket.images.name}"
      }
      env {
        name  = "MAX_IMAGE_BYTES"
        value = "20971520"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project_id
      }
      env {
        name  = "MAX_IMAGE_PIXELS"
        value = "40000000"
      }
      env {
        name  = "REQUIRE_OIDC"
        value = "true"
      }
      env {
        name  = "OIDC_AUDIENCE"
        value = local.run_url["classify-image"]
      }
      env {
        name = "OIDC_ALLOWED_EMAILS"
        # Pub/Sub's push identity delivers messages; the deployer may also
        # correct verdicts (PUT /images/{id}/category), by impersonation:
        # gcloud auth print-identity-token --impersonate-service-account=DEPLOYER --audiences=URL
        value = "${google_service_account.pubsub_push.email},${google_service_account.deployer.email}"
      }
      env {
        name  = "MIGRATE_ON_START"
        value = "false"
      }
      env {
        name  = "DATABASE_POOL_SIZE"
        value = tostring(local.database_pool_size["classify-image"])
      }
      env {
        name  = "DATABASE_TIMEOUT_MS"
        value = "2000"
      }
      env {
        name  = "LOG_FORMAT"
        value = "json"
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 1
        timeout_seconds       = 1
        failure_threshold     = 60
        http_get {
          path = "/healthz"
        }
      }
    }

    containers {
      name  = "cloud-sql-proxy"
      image = local.cloud_sql_proxy_image
      args = [
        "--auto-iam-authn",
        "--unix-socket=/cloudsql",
        "--max-connections=${local.database_connections_per_instance["classify-image"]}",
        "--health-check",
        "--http-address=0.0.0.0",
        "--http-port=9801",
        "--structured-logs",
        "--exit-zero-on-sigterm",
        google_sql_database_instance.main.connection_name,
      ]

      # Half a CPU beside the app's, as in Google's own sidecar sample: it only
      # relays bytes and refreshes a certificate and a token now and then.
      resources {
        limits = {
          cpu    = "0.5"
          memory = "256Mi"
        }
        cpu_idle = true
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      startup_probe {
        period_seconds    = 1
        timeout_seconds   = 1
        failure_threshold = 30
        http_get {
          path = "/startup"
          port = 9801
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      template[0].revision,
      template[0].annotations,
      annotations,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.enabled,
    google_project_iam_member.cloudsql_instance_user,
    google_sql_user.workload,
  ]
}

# Applies the database migrations; Cloud Build runs it before new code takes traffic.
resource "google_cloud_run_v2_job" "migrate" {
  name                = "catdog-migrate"
  location            = var.region
  deletion_protection = false

  template {
    task_count = 1

    template {
      service_account = google_service_account.migrate.email
      max_retries     = 1
      timeout         = "300s"

      volumes {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [google_sql_database_instance.main.connection_name]
        }
      }

      containers {
        # The image's entry point is `catdog migrate`.
        image = local.bootstrap_image

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }

        env {
          name = "DATABASE_URL"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.database_url.secret_id
              version = "latest"
            }
          }
        }
        env {
          # `catdog migrate` opens the object store too (no request is made);
          # its default, a folder under /, is not writable in the image.
          name  = "STORAGE_URL"
          value = "gs://${google_storage_bucket.images.name}"
        }
        env {
          name  = "DATABASE_POOL_SIZE"
          value = tostring(local.database_pool_size["migrate"])
        }
        env {
          name  = "LOG_FORMAT"
          value = "json"
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }
      }
    }
  }

  lifecycle {
    # `gcloud run jobs update --image` (Cloud Build) changes these; see the services.
    ignore_changes = [
      template[0].template[0].containers[0].image,
      template[0].annotations,
      annotations,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.enabled,
    google_secret_manager_secret_iam_member.database_url_reader,
    google_secret_manager_secret_version.database_url,
  ]
}

# Who may call what: anyone reads the gallery; only the Scheduler's identity
# starts an ingestion and only the Pub/Sub push identity delivers messages.
resource "google_cloud_run_v2_service_iam_member" "list_images_public" {
  location = var.region
  name     = google_cloud_run_v2_service.list_images.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "ingest_trigger_scheduler" {
  location = var.region
  name     = google_cloud_run_v2_service.ingest_trigger.name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

resource "google_cloud_run_v2_service_iam_member" "classify_image_pubsub" {
  location = var.region
  name     = google_cloud_run_v2_service.classify_image.name
  role     = "roles/run.invoker"
  member   = google_service_account.pubsub_push.member
}

# Operators correct verdicts through classify-image as the deployer (README,
# "Correcting a verdict"); the service's own check allows its e-mail too.
resource "google_cloud_run_v2_service_iam_member" "classify_image_deployer" {
  location = var.region
  name     = google_cloud_run_v2_service.classify_image.name
  role     = "roles/run.invoker"
  member   = google_service_account.deployer.member
}
