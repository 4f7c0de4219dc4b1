//! The logic behind the `runner-guard` step: decide whether this job may run on this runner for
//! the tier it touches, from signals the job cannot forge, and say why.
//!
//! - [`tier`]: the tier model (YAML in the user's repository; schema in `TIER-MODEL.md`), which
//!   also pins the OIDC issuer, audience, JWKS URL and platform API host.
//! - [`oidc`]: fetching the job's OIDC token and verifying it (RS256/ES256 only, pinned issuer).
//! - [`platform`]: the runner's name, group and labels from the GitHub/GitLab API.
//! - [`local`]: the kernel's view of the guard's own process (capabilities, uid, sockets,
//!   ambient credentials, metadata endpoint), read below a configurable root.
//! - [`guard`]: collecting all signals ([`collect`]) and judging them ([`evaluate`]).
//! - [`report`]: the verdict, its JSON wire form, markdown summary and exit codes.
//! - [`audit`]: `custody runners audit`, every runner as the platform sees it, held against
//!   the tier model (fetching needs feature `audit`: octocrab and the `gitlab` crate).
//!
//! In-job checks catch misconfiguration and leave evidence; a malicious job can skip them.
//! Binding enforcement belongs to platform settings (runner groups restricted to repositories
//! and workflows, protected environments) and to cloud trust policies conditioned on OIDC claims.

pub mod audit;
pub mod env;
pub mod error;
pub mod guard;
mod http;
pub mod local;
pub mod oidc;
pub mod platform;
pub mod report;
pub mod secret;
pub mod tier;

pub use env::Environment;
pub use error::{OidcError, PlatformError, TierModelError};
pub use guard::{
    ApiSignal, GuardOptions, Platform, Request, Signals, TokenSignal, Variables, collect, evaluate,
    run,
};
pub use http::Http;
pub use local::{LocalFacts, LocalProbe, MetadataProbe};
pub use oidc::{Claims, Expectation, Jwks};
pub use platform::{EnvironmentProtection, RunnerInfo};
pub use report::{
    Check, EXIT_CHECK_FAILED, EXIT_CONFIG_ERROR, EXIT_PASS, EXIT_UNTRUSTED, Outcome, Report,
    Source, Status,
};
pub use secret::Secret;
pub use tier::{Tier, TierModel};
