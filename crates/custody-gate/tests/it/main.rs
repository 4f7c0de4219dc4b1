//! custody-gate against a GitHub stand-in (custody-test-support's `github_app`, shaped
//! like GitHub's documented webhook payloads and REST endpoints) and a loopback GitLab:
//! real octocrab calls with App JWT auth from a test key, a real local store written by
//! evidence-upload's library.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../custody-policy/tests/it/support.rs"]
#[allow(dead_code)]
mod support;

mod cli;
mod dockerfile;
mod github;
mod gitlab;
