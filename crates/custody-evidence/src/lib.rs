//! The evidence model of Custody: in-toto Statement v1, DSSE envelopes, ECDSA P-256
//! signing and verification, SHA-256 digests, HIPAA control citations and the record
//! extension every Custody statement carries.
//!
//! This crate does no I/O of its own: callers hand it bytes or a reader. That keeps
//! everything here testable without files or processes, and it keeps the trust
//! decisions (what verified, against which key) in one place.

pub mod digest;
pub mod dsse;
pub mod error;
pub mod hipaa;
pub mod keyless;
pub mod keys;
pub mod record;
pub mod sigstore;
pub mod statement;
pub mod subject;
pub mod timestamp;

pub use digest::{Digest, sha256_reader};
pub use dsse::{
    Envelope, EnvelopeSignature, IN_TOTO_PAYLOAD_TYPE, SignatureExtension, Verified, pae,
    sign_payload, sign_statement, verify_envelope,
};
pub use error::{EvidenceError, KeyError, ServiceNameError, SignError, VerifyError};
pub use hipaa::Control;
pub use keys::{KeyIdScheme, PublicKey, Signer, SigningKey, TrustedKeys, Validity};
pub use record::{
    ChainLink, MAX_SERVICE_LEN, Material, PipelineContext, Platform, RECORD_EXTENSION, RecordInfo,
    check_service_name,
};
pub use statement::{ResourceDescriptor, STATEMENT_V1, Statement};
pub use subject::SubjectSpec;
