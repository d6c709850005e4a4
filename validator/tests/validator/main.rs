//! Integration tests for `mlnode-validate` and `mlnode-make-artifact`: the binaries and
//! the library against simulated nodes (and hostile test servers) on 127.0.0.1:0 with an
//! accelerated clock. One test binary, one module per concern.

mod access;
mod hostile;
mod make_artifact;
mod operator;
mod output;
mod phases;
mod replay;
mod reports;
mod signals;
mod util;
