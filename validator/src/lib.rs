//! # mlnode-validator — `mlnode-validate` and `mlnode-make-artifact`
//!
//! A drop-in replacement for the Gonka repository's `validate.py` / `make_artifact.py`
//! (validator.md): same flags, same four phases, same three report files, same exit
//! codes 0/2/1 — plus an embedded simulated node (`--mlnode-url sim:<scenario>`),
//! progress display, `--json`, `--junit`, slow/stalled replica flags, reference sanity
//! checks before any network call, and `--cross-check`.
//!
//! | module | what it holds |
//! |---|---|
//! | [`args`] | every flag and its default; deploy-args composition |
//! | [`reference`](mod@reference) | finding and checking the golden reference; the missing-reference help |
//! | [`run`](mod@run) | one run end to end: preamble, phases, verdict, exit code, Ctrl-C |
//! | [`phases`] | `download`, `deploy`, `throughput`, `validate` (+ cross-check) |
//! | [`report`] | the three report files, atomic writes, the text report |
//! | [`junit`] | `--junit` output |
//! | [`client`] | JSON-over-HTTP with timeouts in simulated seconds |
//! | [`console`] | transcript sink and progress spinners |
//! | [`embedded`] | `sim:<scenario>`: the simulator in-process |
//! | [`make_artifact`] | baking a golden reference from a trusted node |

pub mod args;
pub mod client;
pub mod console;
pub mod embedded;
pub mod junit;
pub mod make_artifact;
pub mod phases;
pub mod reference;
pub mod report;
pub mod run;

pub use args::ValidateArgs;
pub use run::{run, Outcome};
