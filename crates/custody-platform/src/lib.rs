//! The CI platforms as Custody sees them: the pipeline context a record is made in,
//! read from GitHub Actions or GitLab CI variables, and every environment variable the
//! project reads, declared in one place ([`env_vars`]).
//!
//! Variables are set by the platform but can be changed by earlier steps of a job, so
//! a context read from them is marked `source: "environment"` (unverified). Verified
//! facts come from OIDC tokens and platform APIs (runner-guard, policy-check).

pub mod ci;
pub mod console;
pub mod context;
pub mod env_vars;
pub mod files;
pub mod keyfiles;
pub mod step;
pub mod stores;

pub use context::{Env, detect_context};
