//! `catdog dead-letters`: the messages local mode's queue gave up on, with
//! why, so an operator can fix the cause (and re-run ingestion, whose sweep
//! publishes pictures still pending).

use std::path::PathBuf;
use std::process::ExitCode;

use catdog::queue::DeadLetters;

#[derive(clap::Args)]
pub struct Args {
    /// The data folder `catdog serve` and `catdog import` used.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// One JSON document per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dead_letters = DeadLetters::in_dir(&args.data_dir);
    let letters = dead_letters.list().await?;
    if args.json {
        for letter in &letters {
            println!("{}", serde_json::to_string(letter)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if letters.is_empty() {
        println!("No dead letters in {}.", dead_letters.path().display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} dead letters in {}:",
        letters.len(),
        dead_letters.path().display()
    );
    for letter in &letters {
        let status = letter
            .last_status
            .map_or("no answer".to_owned(), |s| s.to_string());
        println!(
            "{}  image {}  message {}  {} attempts, last {}: {}",
            letter.dead_lettered_at.format("%Y-%m-%d %H:%M:%SZ"),
            letter.message.image_id,
            letter.message_id,
            letter.attempts,
            status,
            problem_detail(&letter.last_error),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The `detail` of a problem+json answer, or the answer as it was.
fn problem_detail(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned())
}
