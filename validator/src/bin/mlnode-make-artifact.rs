//! `mlnode-make-artifact`: bake a golden reference. Exit 0 on success, 1 on any error.

use clap::Parser;
use mlnode_validator::console::Console;
use mlnode_validator::make_artifact::{self, MakeArtifactArgs};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = MakeArtifactArgs::parse();
    match make_artifact::run(&args, &Console::Stdout).await {
        Ok(_) => std::process::exit(0),
        Err(e) => {
            eprintln!("ERROR: {e}");
            std::process::exit(1);
        }
    }
}
