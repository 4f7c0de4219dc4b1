//! Typed errors of the guard. Messages are lowercase, name the offending file, field, claim or
//! URL, and say what to do next where the user can act. No message ever contains a token.

use thiserror::Error;

/// The tier model could not be loaded. Always a configuration error (exit code 2).
#[derive(Debug, Error)]
pub enum TierModelError {
    #[error("could not read the tier model {file}: {source}; check the path given to runner-guard")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}{}: not a valid tier model: {message}", at_line(*.line))]
    Parse {
        file: String,
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        message: String,
    },
    #[error("{file}{}: `{field}`: {problem}", at_line(*.line))]
    Invalid {
        file: String,
        /// 1-based line of the offending field, when it can be found in the text.
        line: Option<usize>,
        field: String,
        problem: String,
    },
}

/// `:LINE` for messages in the `file:line: problem` form editors and CI logs link to.
fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// Why an OIDC token was not obtained or not accepted.
#[derive(Debug, Error)]
pub enum OidcError {
    // Obtaining signals: these mean "no trusted signal", not "forged".
    #[error(
        "{0} is not set: grant the job `permissions: id-token: write` so GitHub can mint an OIDC token"
    )]
    GitHubRequestMissing(&'static str),
    #[error(
        "CI variable `{0}` holding the OIDC token is not set: declare it under `id_tokens:` in .gitlab-ci.yml with the audience pinned in the tier model"
    )]
    GitLabVariableMissing(String),
    #[error("could not fetch {what} from {url}: {reason}")]
    Fetch {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("the JWKS at {url} is not valid JSON Web Key Set: {reason}")]
    Jwks { url: String, reason: String },
    #[error("the OIDC token response is not JSON of the form {{\"value\": \"<jwt>\"}}")]
    TokenResponse,

    // Rejections: the token is malformed or forged.
    #[error(
        "the token is not a JWS compact serialization (three base64url parts separated by dots)"
    )]
    Malformed,
    #[error("the token header is not valid base64url JSON: {0}")]
    Header(String),
    #[error("the token uses `alg: none` (unsigned): refused")]
    AlgNone,
    #[error(
        "the token uses HMAC algorithm `{0}`: refused, OIDC tokens are signed with the issuer's private key (RS256 or ES256)"
    )]
    Hmac(String),
    #[error("the token uses algorithm `{0}`: only RS256 and ES256 are accepted")]
    UnsupportedAlg(String),
    #[error(
        "the token header carries `crit` extensions this verifier does not understand: refused"
    )]
    Critical,
    #[error("the token header has no `kid`: refusing to guess the signing key")]
    MissingKid,
    #[error(
        "no key with kid `{kid}` in the issuer's JWKS: the token was not signed by the pinned issuer (or its keys rotated; retry)"
    )]
    UnknownKid { kid: String },
    #[error("the JWKS key `{kid}` cannot verify {alg}: {reason}")]
    KeyMismatch {
        kid: String,
        alg: String,
        reason: String,
    },
    #[error("the token signature does not verify against JWKS key `{kid}`: forged or altered")]
    BadSignature { kid: String },
    #[error("the token claims are not a JSON object: {0}")]
    Claims(String),
    #[error("claim `iss` is {}, expected the pinned issuer `{expected}`", shown(found.as_deref()))]
    Issuer {
        expected: String,
        found: Option<String>,
    },
    #[error("claim `aud` is {found}, expected it to contain the pinned audience `{expected}`")]
    Audience { expected: String, found: String },
    #[error("the token has no numeric `exp` claim: refused")]
    MissingExp,
    #[error("the token expired at {exp} (now {now}, leeway {leeway}s): fetch a fresh token")]
    Expired { exp: u64, now: u64, leeway: u64 },
    #[error(
        "the token is not valid before {nbf} (now {now}, leeway {leeway}s): check the runner's clock"
    )]
    NotYetValid { nbf: u64, now: u64, leeway: u64 },
    #[error(
        "the token was issued in the future at {iat} (now {now}, leeway {leeway}s): check the runner's clock"
    )]
    IssuedInFuture { iat: u64, now: u64, leeway: u64 },
}

impl OidcError {
    /// True when the error means the guard could not obtain a trusted signal (exit code 3),
    /// false when a token was obtained and refused (a failed check, exit code 1).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::GitHubRequestMissing(_)
                | Self::GitLabVariableMissing(_)
                | Self::Fetch { .. }
                | Self::Jwks { .. }
                | Self::TokenResponse
        )
    }
}

/// A platform API call failed.
#[derive(Debug, Error)]
pub enum PlatformError {
    #[error("{0} is not set: the guard needs it to ask the platform API about this job's runner")]
    MissingToken(&'static str),
    #[error("the verified token has no `{0}` claim, which the platform API lookup needs")]
    MissingClaim(&'static str),
    #[error("could not call {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} answered HTTP {status}: {hint}")]
    Status {
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("{url} answered JSON of an unexpected shape: {reason}")]
    Shape { url: String, reason: String },
}

/// A claim's value for a message: quoted as the token has it, or `missing`.
fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "missing".to_owned(), |v| format!("`{v}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15, item 16: the issuer mismatch printed Rust's debug text
    /// (`Some("https://…")`).
    #[test]
    fn an_issuer_mismatch_reads_as_words() {
        let e = OidcError::Issuer {
            expected: "https://token.actions.githubusercontent.com".into(),
            found: Some("https://evil.example".into()),
        };
        assert_eq!(
            e.to_string(),
            "claim `iss` is `https://evil.example`, expected the pinned issuer `https://token.actions.githubusercontent.com`"
        );
        let e = OidcError::Issuer {
            expected: "https://gitlab.com".into(),
            found: None,
        };
        assert!(e.to_string().starts_with("claim `iss` is missing,"), "{e}");
    }
}
