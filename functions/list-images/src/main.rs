//! list-images: the public, read-only gallery API (Cloud Run service).

fn main() -> std::process::ExitCode {
    list_images::run()
}
