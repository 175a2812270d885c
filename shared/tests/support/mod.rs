pub mod fake_gcs;
