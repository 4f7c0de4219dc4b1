//! The one error type of this crate. Every variant names the file, because the
//! message ends up in a CI log next to many other files, and says what was expected
//! so the person reading it knows which step produced the wrong output.

use std::fmt;

use thiserror::Error;

use crate::format::{Format, Kind};

/// What every detector accepts, for messages about files that match none.
pub(crate) const EXPECTED_ANY: &str = "a CycloneDX (JSON or XML) or SPDX 2.2/2.3 JSON SBOM, a JUnit XML test report, \
     a Cobertura XML or lcov coverage report, or a Trivy JSON, Grype JSON or SARIF 2.1.0 scan";

/// The surface syntax a file was read as, for syntax-level errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Json,
    Xml,
    Lcov,
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Syntax::Json => "JSON",
            Syntax::Xml => "XML",
            Syntax::Lcov => "lcov tracefile",
        })
    }
}

/// Why an evidence file could not be recognized or summarized.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum FormatError {
    /// Zero bytes, or only whitespace (and perhaps a byte-order mark).
    #[error(
        "{file}: the file is empty; the step that should have written it probably failed, check its log"
    )]
    Empty { file: String },

    /// The document stops before it is complete: an upload or write was cut short.
    #[error(
        "{file}: the {syntax} ends before the document is complete ({detail}); the file was cut short, re-run the step that wrote it"
    )]
    Truncated {
        file: String,
        syntax: Syntax,
        detail: String,
    },

    /// The document is complete but not well-formed.
    #[error("{file}: not well-formed {syntax}: {detail}")]
    Malformed {
        file: String,
        syntax: Syntax,
        detail: String,
    },

    /// Neither JSON, XML nor an lcov tracefile (random text, binary data).
    #[error(
        "{file}: not a recognized evidence file (neither JSON, XML nor lcov); expected {EXPECTED_ANY}"
    )]
    Unknown { file: String },

    /// Well-formed JSON that is none of the supported formats.
    #[error(
        "{file}: a JSON document of no supported format (top-level keys: {keys}){hint}; expected {EXPECTED_ANY}"
    )]
    UnknownJson {
        file: String,
        keys: String,
        hint: String,
    },

    /// Well-formed XML whose root element is none of the supported formats.
    #[error(
        "{file}: the XML root element <{root}> is not a supported format{hint}; expected <bom> (CycloneDX), <testsuites> or <testsuite> (JUnit) or <coverage> (Cobertura)"
    )]
    UnknownXml {
        file: String,
        root: String,
        hint: String,
    },

    /// A known format in a version this crate does not read.
    #[error("{file}: version `{version}` of {format} is not supported; supported: {}", format.supported_versions())]
    Unsupported {
        file: String,
        format: Format,
        version: String,
    },

    /// A known format, but evidence for another pipeline stage than the caller wanted.
    #[error(
        "{file}: this is a {format} file ({} evidence), but {stage} evidence was expected: {}; check which file the step was given",
        format.kind(),
        stage.expected()
    )]
    WrongStage {
        file: String,
        format: Format,
        stage: Kind,
    },

    /// Recognized, syntactically valid, but the content does not follow the format.
    #[error("{file}: looks like {format} but does not follow it: {detail}")]
    Invalid {
        file: String,
        format: Format,
        detail: String,
    },
}
