//! `mlnode-conformance`: contract checks for any MLNode, simulated or real.
//! Exit 0 all pass, 1 any check failed or a usage error, 2 the node cannot be checked.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use mlnode_conformance::{checks, outcome, Target};
use mlnode_validator::endpoint::{self, Deploy};

/// Check that an MLNode honours the PoC v2 contract — including that it catches fraud.
#[derive(Debug, Parser)]
#[command(name = "mlnode-conformance", version = mlnode_support::cli::LONG_VERSION,
    after_help = "Exit codes: 0 every check passed; 1 a check failed (or skipped, with --strict), or a usage error; 2 the node cannot be checked (unreachable, not an MLNode, a bad reference).")]
struct Cli {
    /// Node base URL, or `sim:<scenario>` (embedded simulator with the model deployed).
    #[arg(long)]
    mlnode_url: String,
    /// Model the node serves (default: /api/v1/state loaded_model).
    #[arg(long)]
    model: Option<String>,
    /// Golden reference (default: <artifacts dir>/<safe id>.json when present).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Directory of golden references [default: ./artifacts or the repo's].
    #[arg(long)]
    artifacts_dir: Option<PathBuf>,
    /// Also run checks that start and stop mining (init/generate, stop).
    #[arg(long)]
    allow_disruptive: bool,
    /// Print one JSON summary on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Write a JUnit XML file with one test case per check.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Simulated seconds per wall second for timeouts (default 1; 1000 for `sim:`;
    /// learnt from an mlnode-sim node).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Skipped checks fail the run (exit 1): a CI gate that wants every check to run.
    #[arg(long)]
    strict: bool,
    /// Bearer token, CA bundle and client certificate: check a node the way the network
    /// node reaches it (behind a gateway, over TLS/mTLS). A version segment goes in the
    /// URL: `--mlnode-url http://host:8080/v3.0.8`.
    #[command(flatten)]
    access: mlnode_validator::access::Access,
}

#[tokio::main]
async fn main() {
    mlnode_support::cli::generate_and_exit_if_asked(Cli::command);
    let cli = mlnode_support::cli::parse_or_exit::<Cli>();
    mlnode_support::init_logging("warn", mlnode_support::ColorChoice::Auto);
    std::process::exit(run(cli).await);
}

async fn run(cli: Cli) -> i32 {
    let artifacts_dir = cli
        .artifacts_dir
        .clone()
        .unwrap_or_else(mlnode_support::paths::default_artifacts_dir);
    let deploy = cli
        .model
        .as_deref()
        .map_or(Deploy::ExpectedModel, Deploy::Model);
    // The client keeps an embedded node alive for the run.
    let client = match endpoint::connect(
        &cli.mlnode_url,
        cli.time_scale,
        &artifacts_dir,
        deploy,
        &cli.access,
    )
    .await
    {
        Ok(c) => c.client,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return 2;
        }
    };
    let target = match Target::resolve(
        client,
        cli.model.clone(),
        cli.reference.as_deref(),
        &artifacts_dir,
        cli.allow_disruptive,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return 2;
        }
    };
    let results = checks::run_all(&target).await;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome::summary(&cli.mlnode_url, &results))
                .unwrap_or_default()
        );
    } else {
        println!(
            "mlnode-conformance: {} (model: {})",
            cli.mlnode_url,
            target.model.as_deref().unwrap_or("none")
        );
        print!("{}", outcome::table(&results));
    }
    if let Some(path) = &cli.junit {
        if let Err(e) = outcome::write_junit(path, &results) {
            eprintln!("ERROR: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    let code = outcome::exit_code(&results);
    let skipped = results
        .iter()
        .filter(|r| r.status == outcome::Status::Skip)
        .count();
    if cli.strict && code == 0 && skipped > 0 {
        eprintln!("ERROR: --strict: {skipped} check(s) skipped");
        return 1;
    }
    code
}
