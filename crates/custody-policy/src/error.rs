//! Errors of the policy library. Each names the file, URL or rule and what to do.

use std::path::PathBuf;

use thiserror::Error;

/// Why policies could not be loaded or evaluated, or facts not gathered. These are
/// errors (exit 2), not denials: a denial is a [`crate::Decision`].
#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("policy {file}: {message}")]
    Policy { file: String, message: String },
    #[error("policy data: {0}")]
    Data(String),
    #[error("policy input: {0}")]
    Input(String),
    #[error("evaluating the policies: {0}")]
    Eval(String),
    #[error("evidence store: {0}")]
    Store(#[from] custody_store::StoreError),
    #[error("{0}")]
    Platform(String),
    #[error("{0}")]
    Usage(String),
}
