//! `mlnode-validate`: a thin shell over `mlnode_validator::run`.
//! Exit codes: 0 pass (or validation skipped), 2 fraud detected, 1 error, 130 Ctrl-C.

use clap::Parser;
use mlnode_validator::console::Console;
use mlnode_validator::ValidateArgs;

#[tokio::main]
async fn main() {
    mlnode_sim::init_logging("warn");
    let args = ValidateArgs::parse();
    let json = args.json;
    let console = if json {
        Console::Stderr
    } else {
        Console::Stdout
    };
    let cancel = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let outcome = mlnode_validator::run(args, console, cancel).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome.summary()).unwrap_or_default()
        );
    }
    std::process::exit(outcome.exit_code);
}
