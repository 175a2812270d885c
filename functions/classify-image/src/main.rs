//! classify-image: the Pub/Sub push endpoint (`POST /pubsub/push`) that
//! classifies each stored picture (Cloud Run service).

fn main() -> std::process::ExitCode {
    classify_image::run()
}
