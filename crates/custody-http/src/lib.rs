//! The one place Custody talks HTTP from.
//!
//! - [`Secret`]: the one redacting secret type: tokens, passwords and keys that must
//!   never reach a log line, an error message or a record.
//! - [`net::Net`] (feature `client`): the network policy, one for every client: trusted
//!   roots (built-in Mozilla set, system store or `SSL_CERT_FILE`/`SSL_CERT_DIR`,
//!   `--ca-file`) and the proxy (`HTTPS_PROXY`, `NO_PROXY`, ...).
//! - [`client::Client`] (feature `client`): hyper over rustls with the ring provider; one
//!   redirect rule, one retry rule, timeouts, body limits, credentials pinned to their
//!   origin, error text without secrets. The GitLab client, the cosign registry client
//!   and octocrab (through [`client::Client::hyper`]) run on it; the AWS SDK gets the
//!   same roots and proxy ([`net::Net::roots_pem`], [`net::Net::proxy`]).
//! - [`gitlab::Client`] (feature `gitlab`): the single `gitlab::api::AsyncClient`.
//! - [`oci::Registry`] (feature `oci`): OCI distribution reads and pushes with the
//!   registry token flow.
//! - [`aws::http_client`] (feature `aws`): the AWS SDK's HTTP client with the same
//!   roots and proxy, for the S3 store and the AWS KMS signer's credential chain.

mod secret;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "gitlab")]
pub mod gitlab;
#[cfg(feature = "client")]
pub mod net;
#[cfg(feature = "oci")]
pub mod oci;

pub use secret::Secret;
