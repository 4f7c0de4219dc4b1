//! Documented exit codes of `custody` (README, "Exit codes").

use std::process::ExitCode;

use custody_evidence::VerifyError;
use custody_platform::keyfiles::KeyFileError;
use custody_store::StoreError;

/// Exit statuses. Kept stable: scripts and CI templates depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Verification failed: tampered, untrusted, replayed or broken evidence; or
    /// `runners audit` found a runner that fails the tier model.
    Verify = 1,
    /// Bad input or usage: a malformed argument, file or key (clap also exits 2).
    Usage = 2,
    /// The store could not be read or written.
    Store = 3,
    /// A query found nothing.
    NotFound = 4,
    /// A platform API (GitHub, GitLab) could not be reached or refused the request.
    Platform = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Maps an error to its exit status by the typed error at its root.
pub fn classify(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if cause.downcast_ref::<VerifyError>().is_some() {
            return Exit::Verify;
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return match s {
                StoreError::Corrupt { .. }
                | StoreError::ChainBroken { .. }
                | StoreError::ChainConflict { .. }
                | StoreError::LogInconsistent(_) => Exit::Verify,
                StoreError::NotFound { .. } => Exit::NotFound,
                StoreError::Invalid(_)
                | StoreError::MissingMaterial { .. }
                | StoreError::UnsupportedUrl { .. } => Exit::Usage,
                _ => Exit::Store,
            };
        }
        if cause.downcast_ref::<KeyFileError>().is_some() {
            return Exit::Usage;
        }
        if let Some(k) = cause.downcast_ref::<custody_evidence::keyless::KeylessError>() {
            use custody_evidence::keyless::KeylessError as K;
            return match k {
                K::Malformed(_) | K::Root(_) => Exit::Usage,
                _ => Exit::Verify,
            };
        }
        if let Some(e) = cause.downcast_ref::<Failure>() {
            return e.exit;
        }
    }
    Exit::Usage
}

/// An error that carries its own exit status.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        exit,
        message: message.into(),
    })
}
