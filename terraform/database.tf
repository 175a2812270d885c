# Cloud SQL for PostgreSQL, reachable only through Cloud SQL connectors
# (connector_enforcement): the IAM-checked, encrypted Cloud SQL Auth Proxy.
#
# Who logs in as whom (the database roles themselves are made by the migration
# shared/src/store/migrations/postgres/0003_workload_roles.sql):
#   - the migration job logs in as `catdog`, a password user (Cloud Run's
#     built-in connector cannot log in with IAM); it owns the schema. Its
#     DATABASE_URL is in Secret Manager and only the job may read it.
#   - each service logs in as its own service account with IAM database
#     authentication, through a Cloud SQL Auth Proxy sidecar started with
#     --auto-iam-authn: no password exists, so none is in a secret or in
#     Terraform's state. The migration makes list-images' user a member of
#     catdog_reader (SELECT only) and ingest-trigger's and classify-image's
#     users members of catdog_writer (SELECT, INSERT, UPDATE; no DDL, no DELETE).
#
# Connection budget: see local.database_connections in run.tf.

resource "random_id" "database_suffix" {
  # A deleted instance's name stays reserved for a week; a suffix lets a torn-down
  # gallery be created again at once.
  byte_length = 3
}

resource "google_sql_database_instance" "main" {
  # checkov:skip=CKV_GCP_110:pgAudit would record every statement of a catalogue of public pictures; connections, errors, DDL and lock waits are logged, which is what an incident here needs, at a fraction of the Cloud Logging cost.
  # checkov:skip=CKV2_GCP_13:log_duration logs a line for every query the public API makes; Query Insights (enabled below) keeps per-query latency without that log volume.
  name                = "catdog-${random_id.database_suffix.hex}"
  database_version    = "POSTGRES_18"
  region              = var.region
  deletion_protection = var.deletion_protection

  settings {
    edition                     = "ENTERPRISE"
    tier                        = var.database_tier
    availability_type           = "ZONAL"
    disk_type                   = "PD_SSD"
    disk_size                   = 10
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "03:00"
      transaction_log_retention_days = 7
      backup_retention_settings {
        retained_backups = 7
      }
    }

    # Only Cloud SQL connectors (the Auth Proxy, the language connectors, and
    # Cloud Run's built-in connection, which is the Auth Proxy) may connect.
    connector_enforcement = "REQUIRED"

    ip_configuration {
      # checkov:skip=CKV_GCP_60:The instance has a public address only because the Cloud Run connector needs one without a VPC; no authorized network is listed, so nothing reaches it except through the IAM-checked, encrypted connector. A private IP would add a VPC, peering and a connector that cost money at rest.
      ipv4_enabled = true
      # The Cloud Run connector presents a client certificate, so nothing else is accepted.
      ssl_mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    # IAM database authentication for the services' users.
    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }

    insights_config {
      query_insights_enabled = true
    }
  }

  lifecycle {
    precondition {
      condition     = local.database_connections.peak <= local.database_connections.available
      error_message = "The connection budget (local.database_connections in run.tf) plans more connections at peak than ${var.database_tier} accepts: lower the max instances or pool sizes, or raise database_max_connections with a larger tier."
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_sql_database" "catdog" {
  name     = "catdog"
  instance = google_sql_database_instance.main.name
}

resource "random_password" "database" {
  length = 32
  # Letters and digits only: the password goes into DATABASE_URL unescaped.
  special = false
}

# The schema's owner: only the migration job logs in as it.
resource "google_sql_user" "catdog" {
  name     = "catdog"
  instance = google_sql_database_instance.main.name
  password = random_password.database.result
}

# One IAM database user per service, named as Cloud SQL names them: the
# service account's e-mail without ".gserviceaccount.com". They have no
# privileges until the migration grants them a group role.
resource "google_sql_user" "workload" {
  for_each = local.database_iam_users

  name     = each.value
  instance = google_sql_database_instance.main.name
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

# The migration job reads DATABASE_URL whole, so the secret holds the URL with
# the password in it; the password never appears in its plain environment.
# An empty host and `?host=/cloudsql/...` is libpq's form for a Unix socket.
resource "google_secret_manager_secret" "database_url" {
  secret_id = "catdog-database-url"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "database_url" {
  secret      = google_secret_manager_secret.database_url.id
  secret_data = "postgres://${google_sql_user.catdog.name}:${random_password.database.result}@/${google_sql_database.catdog.name}?host=/cloudsql/${google_sql_database_instance.main.connection_name}"
}

resource "google_secret_manager_secret" "thecatapi_key" {
  count = var.thecatapi_key != "" ? 1 : 0

  secret_id = "catdog-thecatapi-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "thecatapi_key" {
  count = var.thecatapi_key != "" ? 1 : 0

  secret      = google_secret_manager_secret.thecatapi_key[0].id
  secret_data = var.thecatapi_key
}
