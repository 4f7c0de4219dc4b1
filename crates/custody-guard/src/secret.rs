//! The redacting wrapper for secrets the guard handles (OIDC tokens, the job token and
//! the bearer tokens used to fetch them): Custody's one `Secret`, from `custody-http`.
//! `Debug` and `Display` print `[redacted]`; the value is reachable only through
//! `Secret::expose`.

pub use custody_http::Secret;
