//! Typed errors of the evidence crate. Messages are lowercase and say what to do next
//! where the user can act.

use thiserror::Error;

/// Errors loading, parsing or encoding keys.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("not a P-256 private key in PKCS#8 or SEC1 PEM form: {0}")]
    PrivateKey(String),
    #[error("not a P-256 public key in PKIX PEM form (`BEGIN PUBLIC KEY`): {0}")]
    PublicKey(String),
    #[error("unknown keyid scheme `{0}`: use one of empty, sslib, witness, ssh, hint")]
    UnknownScheme(String),
    #[error("could not encode the key: {0}")]
    Encode(String),
}

/// Why an envelope did not verify. Each variant names the offending part.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("envelope is not valid DSSE JSON: {0}")]
    Malformed(String),
    #[error("payloadType is `{found}`, expected `{expected}`")]
    PayloadType { found: String, expected: String },
    #[error("payload is not valid base64 (standard or URL-safe): {0}")]
    PayloadBase64(String),
    #[error("signature {index} is not valid base64 (standard or URL-safe): {reason}")]
    SignatureBase64 { index: usize, reason: String },
    #[error("envelope carries {found} signatures, more than the {max} Custody verifies")]
    TooManySignatures { found: usize, max: usize },
    #[error("this is a Sigstore bundle ({media_type}) Custody does not verify: {reason}")]
    SigstoreBundle { media_type: String, reason: String },
    #[error("envelope carries no signatures")]
    NoSignatures,
    #[error(
        "no trusted key verifies any signature of the envelope (tried {keys} key(s) against {signatures} signature(s)): it was altered or signed by an untrusted key"
    )]
    NoTrustedSignature { keys: usize, signatures: usize },
    #[error(
        "the envelope is signed by the trusted key {key}, but that key does not count for it: {reason}"
    )]
    KeyNotValid { key: String, reason: String },
    #[error("signature {index}'s RFC 3161 timestamp does not verify: {source}")]
    Timestamp {
        index: usize,
        source: crate::timestamp::TimestampError,
    },
    #[error("the key set is empty: pass a public key or a directory of PEM public keys")]
    NoKeys,
    #[error("payload is not an in-toto statement: {0}")]
    Statement(String),
    #[error("statement `_type` is `{0}`, expected https://in-toto.io/Statement/v1 (or v0.1)")]
    StatementType(String),
    #[error(
        "envelope is signed for subject(s) {found}, not {expected}: an envelope replayed for another subject is refused"
    )]
    SubjectMismatch { expected: String, found: String },
}

/// Why a signer did not sign. `key` names the key (a file, a key URI without
/// credentials); `reason` says what the key's holder answered. Neither carries key
/// material or a credential.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("signing with {key} failed: {reason}")]
pub struct SignError {
    pub key: String,
    pub reason: String,
}

/// Errors building evidence.
#[derive(Debug, Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("could not serialize the statement: {0}")]
    Serialize(String),
    #[error("invalid digest `{value}`: {reason}")]
    Digest { value: String, reason: String },
    #[error("reading input failed: {0}")]
    Read(#[from] std::io::Error),
    #[error("unknown HIPAA control `{0}`: use one of {1}")]
    UnknownControl(String, String),
}

/// Why a service name is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServiceNameError {
    #[error("the service name is empty: name the service the evidence belongs to, e.g. `api`")]
    Empty,
    #[error("the service name contains a control character")]
    Control,
    #[error("the service name is {len} characters long; at most {max} are accepted")]
    TooLong { len: usize, max: usize },
}
