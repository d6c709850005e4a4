//! # mlnode-validator — `mlnode-validate` and `mlnode-make-artifact`
//!
//! A drop-in replacement for the Gonka repository's `validate.py` / `make_artifact.py`
//! (validator.md): same flags, same four phases, same three report files with every key
//! path and type of validate.py's, same exit codes 0/2/1 — plus an embedded simulated
//! node (`--mlnode-url sim:<scenario>`, feature `embedded-sim`), live progress, `--json`,
//! `--junit`, `--strict`, replica flags, checks of every answer a node gives, reference
//! sanity checks before any network call, and `--cross-check`.
//!
//! | module | what it holds |
//! |---|---|
//! | [`access`] | `--auth-token`, `--ca-cert`, `--client-cert/--client-key`: the HTTP client for a node behind a gateway, TLS or mTLS |
//! | [`args`] | every flag, grouped as in `--help`, with its default; deploy-args composition |
//! | [`endpoint`] | `--mlnode-url` checked at parsing; `connect` → a ready [`client::Client`] (embedded `sim:` node, learnt time scale) |
//! | [`client`] | the MLNode API as typed calls: no redirects, size caps, named causes, retried polls |
//! | [`fleet`] | `--inventory`: every node × model of a node-config list, concurrently; `fleet_report.json` |
//! | [`reference`](mod@reference) | finding and checking the golden reference; the missing-reference help |
//! | [`phase`] | `enum Phase`: name, number, skip flag, header |
//! | [`phases`] | the one loop over the phases; one module per phase: `download`, `deploy`, `throughput`, `validate` (+ cross-check) |
//! | [`run`](mod@run) | one run end to end: inputs, connect, phases, signals, verdict |
//! | [`verdict`] | `enum Verdict`: the headline, validate.py's words, the exit code |
//! | [`report`] | the report files as types; `report::txt` (validate.py's lines), `report::py` (Python reprs), `report::files` (atomic writes) |
//! | [`outcome`] | the end of a run: print, write, `--json` summary |
//! | [`junit`] | `--junit` output |
//! | [`console`] | transcript sink and progress bars |
//! | [`make_artifact`] | baking a golden reference from a trusted node |

pub mod access;
pub mod args;
pub mod client;
pub mod console;
pub mod endpoint;
pub mod fleet;
pub mod junit;
pub mod make_artifact;
pub mod outcome;
pub mod phase;
pub mod phases;
pub mod reference;
pub mod report;
pub mod run;
pub mod verdict;

pub use args::ValidateArgs;
pub use outcome::Outcome;
pub use run::run;
pub use verdict::{Signal, Verdict};

/// Round to 3 decimals for reports.
pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The first of SIGINT, SIGTERM, SIGHUP. The handlers are installed when this is
/// *called* (not when it is first polled), so a signal during start-up is not lost and
/// does not kill the process before the partial report is written.
pub fn signals() -> impl std::future::Future<Output = Signal> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        let hup = signal(SignalKind::hangup()).ok();
        async move {
            let recv = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = recv(int) => Signal::Sigint,
                _ = recv(term) => Signal::Sigterm,
                _ = recv(hup) => Signal::Sighup,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Sigint
    }
}
