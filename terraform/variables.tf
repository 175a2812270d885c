variable "project_id" {
  description = "The Google Cloud project that holds the whole gallery."
  type        = string
}

variable "region" {
  description = "Region for Cloud Run, Cloud SQL, Artifact Registry, Cloud Scheduler and the buckets."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of the bucket names, which are global across all of Google Cloud. Defaults to the project id."
  type        = string
  default     = ""
}

variable "database_tier" {
  description = "Cloud SQL machine tier. The shared-core db-f1-micro is the cheapest that runs PostgreSQL."
  type        = string
  default     = "db-f1-micro"
}

variable "deletion_protection" {
  description = "Protects the Cloud SQL instance (and so every catalogued image) from `terraform destroy`. Set to false, apply, then destroy to tear down."
  type        = bool
  default     = true
}

variable "thecatapi_key" {
  description = "Optional API key for thecatapi.com. Stored in Secret Manager, never in the service's plain environment."
  type        = string
  default     = ""
  sensitive   = true
}

variable "ingest_sources" {
  description = "Value of INGEST_SOURCES for ingest-trigger."
  type        = string
  default     = "thecatapi,dogceo"
}

variable "ingest_batch_size" {
  description = "Images fetched per source on each run (INGEST_BATCH_SIZE)."
  type        = number
  default     = 2
}

variable "ingest_schedule" {
  description = "Cron schedule of the Cloud Scheduler job that calls POST /ingest. Keep it in step with ingest_interval_secs."
  type        = string
  default     = "* * * * *"
}

variable "ingest_interval_secs" {
  description = "Seconds between two scheduled ingestions, as list-images reports it (INGEST_INTERVAL_SECS)."
  type        = number
  default     = 60
}

variable "classify_max_instances" {
  description = "Upper bound on classify-image instances: each one is CPU-bound and costs while it works. Counts in the connection budget (local.database_connections in run.tf)."
  type        = number
  default     = 2
}

variable "list_max_instances" {
  description = "Upper bound on list-images instances; also bounds the database connections they open (local.database_connections in run.tf)."
  type        = number
  default     = 2
}

variable "database_max_connections" {
  description = "PostgreSQL's max_connections on database_tier: 25 on db-f1-micro, 50 on db-g1-small (Cloud SQL's defaults). The connection budget in run.tf must fit in it less the 3 Cloud SQL keeps."
  type        = number
  default     = 25
}

variable "domain" {
  description = "Optional custom domain. When set, an HTTPS load balancer with Cloud CDN and a Google-managed certificate serves the page, the API and the images under this one name."
  type        = string
  default     = ""
}

variable "alert_email" {
  description = "Optional e-mail address that receives the alerts. Without it the alert policies exist but notify nobody."
  type        = string
  default     = ""
}
