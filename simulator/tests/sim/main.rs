//! Integration tests for `mlnode-sim`: a real server per test on 127.0.0.1:0 with an
//! accelerated clock, driven over HTTP like validate.py and DAPI drive a node. One test
//! binary, one module per concern; set-up lives in `util`.

mod admin;
mod api;
mod callbacks;
mod fleet;
mod hardening;
mod malformed;
mod network_node;
mod newest;
mod openapi;
mod scenarios;
mod testermint;
mod util;
