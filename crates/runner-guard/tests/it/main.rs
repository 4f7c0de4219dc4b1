//! runner-guard through the real binary (`CARGO_BIN_EXE_runner-guard`): a fake root for the
//! local facts, and token, JWKS and platform API servers these tests start on 127.0.0.1. The
//! binary runs with a cleared environment, so nothing of the machine's own CI or cloud setup
//! leaks in; the metadata probe is pointed at a loopback port. No test sends traffic beyond
//! loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cli;
mod evidence;
mod support;
