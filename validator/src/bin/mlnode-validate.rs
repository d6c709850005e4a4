//! `mlnode-validate`: a thin shell over `mlnode_validator::run`.
//! Exit codes: 0 pass (or validation skipped), 2 fraud detected, 1 error, 128+signal.

use clap::CommandFactory;
use mlnode_validator::console::{Console, ProgressMode};
use mlnode_validator::ValidateArgs;

#[tokio::main]
async fn main() {
    mlnode_support::cli::generate_and_exit_if_asked(ValidateArgs::command);
    // Installed first: a signal from now on is handled, never fatal.
    let cancel = mlnode_validator::signals();
    let args = mlnode_support::cli::parse_or_exit::<ValidateArgs>();
    mlnode_support::init_logging("warn", args.color.into());
    if args.list_scenarios {
        list_scenarios();
        return;
    }
    let json = args.json;
    let console = if json {
        Console::stderr()
    } else {
        Console::stdout()
    }
    .quiet(args.quiet)
    .with_progress(ProgressMode::from(args.progress).enabled());
    if !args.inventory.is_empty() {
        let out = mlnode_validator::fleet::run(args, console, cancel).await;
        if json {
            match out.report.as_ref().map(serde_json::to_string_pretty) {
                Some(Ok(s)) => println!("{s}"),
                Some(Err(e)) => eprintln!("ERROR: cannot encode the fleet report: {e}"),
                None => println!(
                    "{}",
                    serde_json::json!({"exit_code": out.exit_code, "error": out.error})
                ),
            }
        }
        std::process::exit(out.exit_code);
    }
    for (flag, v) in [("--mlnode-url", &args.mlnode_url), ("--model", &args.model)] {
        if v.is_empty() {
            mlnode_support::cli::exit_with(ValidateArgs::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("the following required argument was not provided: {flag}"),
            ));
        }
    }
    let outcome = mlnode_validator::run(args, console, cancel).await;
    if json {
        match serde_json::to_string_pretty(&outcome.summary()) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("ERROR: cannot encode the JSON summary: {e}");
                std::process::exit(1);
            }
        }
    }
    std::process::exit(outcome.exit_code);
}

#[cfg(feature = "embedded-sim")]
fn list_scenarios() {
    match mlnode_sim::fixtures::all_scenarios() {
        Ok(all) => {
            for s in all {
                let expect = s
                    .expect
                    .map(|e| format!("{} (exit {})", e.verdict, e.exit_code))
                    .unwrap_or_default();
                println!("sim:{:<28} {}  -> {expect}", s.name, s.description);
            }
        }
        Err(e) => {
            eprintln!("ERROR: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(not(feature = "embedded-sim"))]
fn list_scenarios() {
    eprintln!("ERROR: built without the embedded simulator (feature `embedded-sim`)");
    std::process::exit(1);
}
