//! Integration tests of custody-guard: one binary, one module per area. Every network
//! exchange goes to servers these tests start on 127.0.0.1.

// clippy.toml exempts `#[test]` functions; the helpers they share live outside them and fail
// loudly on purpose, so the same exemption is extended to this test binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod guard;
mod local;
mod oidc;
mod support;
mod tier;
