//! custody-policy end to end: the built-in Rego tests, schemas, user policies; the
//! decision table on real records written by evidence-upload; GitHub and GitLab lookups
//! against loopback servers answering documented JSON; cosign signatures in a real
//! registry (docker-registry, started by `cargo xtask test`); the regopy cross-check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cosign;
mod cross;
mod evidence;
mod log;
mod platforms;
mod rego;
mod support;
