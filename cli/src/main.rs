//! `catdog`: run the whole gallery locally, and operator tasks.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "catdog",
    version,
    about = "CatDog Gallery: local mode and operator tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole gallery in one process: API, ingestion, classification and the page.
    Serve(commands::serve::Args),
    /// Apply database migrations to DATABASE_URL and exit.
    Migrate,
    /// Print the OpenAPI document of the read API.
    Openapi,
    /// Print the table of every setting (environment variable).
    Settings,
    /// Classify pictures: one JSON line per file (MODEL_DIR, see MODEL.md).
    Classify(commands::classify::Args),
    /// Measure the classifier on DIR/{cat,dog,other}: confusion matrix and a JSON summary.
    Eval(commands::eval::Args),
    /// Import a folder of pictures at once: store, classify, then print a summary.
    Import(commands::import::Args),
    /// List the messages local mode's queue gave up on, and why.
    DeadLetters(commands::dead_letters::Args),
    /// Correct a picture's category (DATABASE_URL): recorded with who and when.
    Relabel(commands::relabel::Args),
    /// List the pictures classification gave up on, with why (DATABASE_URL).
    Failed(commands::failed::ListArgs),
    /// Give failed pictures another round now: the next ingestion run publishes them.
    Retry(commands::failed::RetryArgs),
    /// Delete every stored object that no image row refers to (DATABASE_URL, STORAGE_URL).
    SweepOrphans(commands::sweep_orphans::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("catdog: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Migrate => commands::migrate::run().await,
            Command::Openapi => {
                println!("{}", catdog::api::openapi_json());
                Ok(ExitCode::SUCCESS)
            }
            Command::Settings => {
                print!("{}", commands::settings::markdown());
                Ok(ExitCode::SUCCESS)
            }
            // CPU-bound and sequential: run on this thread, nothing else is waiting.
            Command::Classify(args) => commands::classify::run(args),
            Command::Eval(args) => commands::eval::run(args),
            Command::Import(args) => commands::import::run(args).await,
            Command::DeadLetters(args) => commands::dead_letters::run(args).await,
            Command::Relabel(args) => commands::relabel::run(args).await,
            Command::Failed(args) => commands::failed::list(args).await,
            Command::Retry(args) => commands::failed::retry(args).await,
            Command::SweepOrphans(args) => commands::sweep_orphans::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("catdog: {e:#}");
            ExitCode::FAILURE
        }
    }
}
