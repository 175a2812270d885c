terraform {
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "= 6.49.3"
    }
    random = {
      source  = "hashicorp/random"
      version = "= 3.7.2"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Every resource carries these, so the bill and the console show what belongs to the gallery.
  default_labels = {
    app = "catdog-gallery"
  }
}

data "google_project" "this" {
  project_id = var.project_id
}
