//! Signers whose private key never leaves its holder, named by URI wherever Custody
//! takes a key (`--key`, `CUSTODY_SIGNING_KEY`):
//!
//! | key reference | signer |
//! |---|---|
//! | a path | a PEM private key in a file (custody-platform reads it) |
//! | `awskms:///KEY` or `awskms://HOST[:PORT]/KEY` | [`awskms::AwsKmsSigner`]: AWS KMS, `ECC_NIST_P256` / `ECDSA_SHA_256` |
//! | `pkcs11:token=…;object=…?module-path=…` | [`pkcs11`]: a P-256 key on an HSM or token (RFC 7512), on dynamically linked builds |
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
pub mod pkcs11;
pub mod tsa;

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
    /// A key on a PKCS#11 token (RFC 7512).
    Pkcs11(pkcs11::Pkcs11KeyRef),
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
            return pkcs11::Pkcs11KeyRef::parse(value).map(Self::Pkcs11);
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
            Self::Pkcs11(k) => k.fmt(f),
        }
    }
}

/// What the environment tells the remote signers.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    pub kms: awskms::KmsOptions,
    pub pkcs11: pkcs11::Pkcs11Options,
}

/// Opens the signer a KMS or PKCS#11 reference names. A file is read by the caller
/// (custody-platform's key files, with their messages), so it is refused here.
pub fn open_remote(
    key: KeyRef,
    opts: &RemoteOptions,
) -> Result<std::sync::Arc<dyn custody_evidence::Signer>, SignerError> {
    match key {
        KeyRef::AwsKms(k) => awskms::AwsKmsSigner::open(k, &opts.kms)
            .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn custody_evidence::Signer>),
        KeyRef::Pkcs11(k) => open_pkcs11(&k, &opts.pkcs11),
        KeyRef::File(path) => Err(SignerError::Unsupported {
            key: path,
            reason: "a key file is not a remote key".into(),
        }),
    }
}

/// Opens the PKCS#11 signer `key` names. The static musl builds (the release binaries)
/// cannot load a module, and say so.
pub fn open_pkcs11(
    key: &pkcs11::Pkcs11KeyRef,
    opts: &pkcs11::Pkcs11Options,
) -> Result<std::sync::Arc<dyn custody_evidence::Signer>, SignerError> {
    #[cfg(not(target_env = "musl"))]
    {
        pkcs11::Pkcs11Signer::open(key, opts)
            .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn custody_evidence::Signer>)
    }
    #[cfg(target_env = "musl")]
    {
        let _ = opts;
        Err(SignerError::Unsupported {
            key: key.to_string(),
            reason: "this is a static (musl) build, which cannot load a PKCS#11 module: use a dynamically linked build (`cargo install --locked --path crates/evidence-upload`, …) for HSM keys".into(),
        })
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
