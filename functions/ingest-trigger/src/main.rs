//! ingest-trigger: `POST /ingest`, fired by Cloud Scheduler (Cloud Run
//! service).

fn main() -> std::process::ExitCode {
    ingest_trigger::run()
}
