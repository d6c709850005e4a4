//! `mlnode-make-artifact`: bake a golden reference. Exit 0 on success, 1 on any error.

use clap::CommandFactory;
use mlnode_validator::console::Console;
use mlnode_validator::make_artifact::{self, MakeArtifactArgs};

#[tokio::main]
async fn main() {
    mlnode_support::cli::generate_and_exit_if_asked(MakeArtifactArgs::command);
    let args = mlnode_support::cli::parse_or_exit::<MakeArtifactArgs>();
    mlnode_support::init_logging("warn", mlnode_support::ColorChoice::Auto);
    match make_artifact::run(&args, &Console::stdout()).await {
        Ok(_) => std::process::exit(0),
        Err(e) => {
            eprintln!("ERROR: {e}");
            std::process::exit(1);
        }
    }
}
