//! A redacting wrapper for secrets: OIDC and job tokens, API tokens, registry passwords.
//!
//! The value is reachable only through [`Secret::expose`], so it cannot end up in a log
//! line, an error message or a record by accident: `Debug` and `Display` print
//! `[redacted]`, and the type implements neither `Serialize` nor `PartialEq` (which
//! would invite timing comparisons).

use std::fmt;

/// A secret string. See the module docs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call this only where the value is sent to the party it belongs to.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string (an unset CI variable often is).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of the secret (trimmed, 4 characters or more)
    /// replaced by `****`: for text from elsewhere (a server's error message) that is
    /// about to reach a person.
    pub fn redact(&self, text: &str) -> String {
        let secret = self.0.trim();
        if secret.len() >= 4 {
            text.replace(secret, "****")
        } else {
            text.to_owned()
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert!(!format!("{secret:?} {secret}").contains("eyJ"));
        assert_eq!(secret.expose(), "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln");
    }

    #[test]
    fn redact_removes_the_value_from_text() {
        let secret = Secret::new(" glpat-abcdef ");
        assert_eq!(
            secret.redact("token glpat-abcdef was refused"),
            "token **** was refused"
        );
        assert_eq!(
            Secret::new("ab").redact("ab ab"),
            "ab ab",
            "too short to tell"
        );
    }
}
