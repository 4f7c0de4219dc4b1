//! Signers whose private key never leaves its holder, named by URI wherever Custody
//! takes a key (`--key`, `CUSTODY_SIGNING_KEY`):
//!
//! | key reference | signer |
//! |---|---|
//! | a path | a PEM private key in a file (custody-platform reads it) |
//! | `awskms:///KEY` or `awskms://HOST[:PORT]/KEY` | [`awskms::AwsKmsSigner`]: AWS KMS, `ECC_NIST_P256` / `ECDSA_SHA_256` |
//!
//! `KEY` is a key id, an alias (`alias/name`) or an ARN, as cosign and witness name
//! them. Every signer implements [`custody_evidence::Signer`]: the same DER signatures
//! in the same DSSE envelopes, verified with the public key the signer fetched (print
//! it with `custody public-key --key URI` for the trusted-keys set).
//!
//! Remote signers are synchronous to their callers. Each owns a small runtime of its
//! own and runs its requests on it from a scoped thread, so a step's runtime (single
//! threaded) never waits on a connection it would have to drive itself. A step signs a
//! handful of records; a round trip per signature is what it costs.

pub mod awskms;

/// The network policy a remote signer is reached under (custody-http's).
pub use custody_http::net::Net;

use std::fmt;

/// A key named by URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A PEM file.
    File(String),
    /// An AWS KMS key.
    AwsKms(awskms::KmsKeyRef),
}

impl KeyRef {
    /// Parses a key reference: `awskms://…`, else a path. A `scheme://` this build does
    /// not know is refused, never taken for a path.
    pub fn parse(value: &str) -> Result<Self, SignerError> {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("awskms://") {
            return awskms::KmsKeyRef::parse(rest).map(Self::AwsKms);
        }
        if value.starts_with("pkcs11:") {
            return Err(SignerError::Unsupported {
                key: "pkcs11:…".into(),
                reason: "PKCS#11 keys are not supported by this build".into(),
            });
        }
        if let Some((scheme, _)) = value.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(SignerError::Unsupported {
                key: format!("{scheme}://…"),
                reason: "unknown key scheme: use a PEM file or awskms://".into(),
            });
        }
        Ok(Self::File(value.to_owned()))
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => f.write_str(p),
            Self::AwsKms(k) => k.fmt(f),
        }
    }
}

/// Why a signer could not be opened. Messages name the key by its URI and never carry a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// Not a key reference this build can use.
    #[error("{key}: {reason}")]
    Unsupported { key: String, reason: String },
    /// A malformed key URI.
    #[error("{key}: not a key reference: {reason}")]
    Malformed { key: String, reason: String },
    /// The key's holder refused or could not be reached: a missing, disabled or denied
    /// key, a key of the wrong type, no credentials, the network.
    #[error(transparent)]
    Key(#[from] custody_evidence::SignError),
}
