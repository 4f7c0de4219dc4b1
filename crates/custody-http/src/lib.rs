//! The one place Custody talks HTTP from (issue 18, in progress).
//!
//! - [`Secret`]: the one redacting secret type: tokens, passwords and keys that must
//!   never reach a log line, an error message or a record.
//! - [`gitlab::Client`] (feature `gitlab`): the single `gitlab::api::AsyncClient` that the
//!   GitLab store, policy-check's GitLab facts, `custody runners audit` and the release
//!   tooling use. One redirect rule (reads follow redirects, the token goes to the GitLab
//!   origin only, and never from https to http; writes never follow), one retry rule
//!   (idempotent requests retried on transient failures with bounded exponential
//!   backoff; POST never), timeouts, and error text that carries neither a token nor a
//!   URL's query.

mod secret;

#[cfg(feature = "gitlab")]
pub mod gitlab;

pub use secret::Secret;
