//! # mlnode-support — the small pieces both sides need
//!
//! The simulator and the validator share a few things that are not wire facts (those live
//! in `mlnode-protocol`) and do touch the outside world: a clock that runs faster than
//! wall time, one logging set-up, and where the golden references are found. They live
//! here so that `mlnode-validate` builds without the simulator.
//!
//! | module | what it holds |
//! |---|---|
//! | [`cli`] | the long `--version` (commit, build date) and `--generate` (completions, man page) of every binary |
//! | [`clock`] | [`SimClock`]: simulated seconds at a time scale, scaled sleeps and timeouts |
//! | [`logging`] | one `tracing` subscriber for every binary, colour on a terminal only |
//! | [`paths`] | the artifacts directory and where it came from (flag, `MLNODE_ARTIFACTS_DIR`, `./artifacts`, the checkout's, else the six real references compiled in) |

pub mod cli;
pub mod clock;
pub mod logging;
pub mod paths;

pub use clock::SimClock;
pub use logging::{init_logging, ColorChoice};
