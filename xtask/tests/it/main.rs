//! CI-template tests: the GitHub Actions under `act`, the GitLab components and parent
//! pipeline under `gitlab-ci-local`, and the static checks (`check-jsonschema`,
//! `zizmor --offline`, rendered `templates/` in sync). Every tool comes from
//! `cargo xtask test` through a variable (see `support::tool`); fixtures are the
//! shared ones in `../shared/fixtures` and `xtask/data`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod act;
mod consumer;
mod demo;
mod deps;
mod gitlab;
mod guard;
mod policy_injection;
// `cargo xtask release` is built with xtask's `release` feature (`cargo xtask test` turns
// it on for the suite; a plain `cargo test -p xtask` leaves these tests out)
#[cfg(feature = "release")]
mod release;
mod static_checks;
mod support;
