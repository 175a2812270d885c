# Cloud SQL for PostgreSQL. The services reach it through Cloud Run's built-in
# Cloud SQL connector (a Unix socket under /cloudsql), which authenticates with
# IAM and encrypts the connection; no network is authorised to reach the
# instance's address directly.

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

    ip_configuration {
      # checkov:skip=CKV_GCP_60:The instance has a public address only because the Cloud Run connector needs one without a VPC; no authorized network is listed, so nothing reaches it except through the IAM-checked, encrypted connector. A private IP would add a VPC, peering and a connector that cost money at rest.
      ipv4_enabled = true
      # The Cloud Run connector presents a client certificate, so nothing else is accepted.
      ssl_mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
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

resource "google_sql_user" "catdog" {
  name     = "catdog"
  instance = google_sql_database_instance.main.name
  password = random_password.database.result
}

# The services read DATABASE_URL whole, so the secret holds the URL with the
# password in it; the password never appears in a service's plain environment.
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
