//! OIDC token handling: fetch the job's token (GitHub's request URL, GitLab's `id_tokens`
//! variable), fetch the issuer's JWKS from the URL pinned in the tier model, and verify.
//!
//! Verification is deliberately narrow. Only RS256 and ES256 are accepted; `alg: none` and every
//! HMAC algorithm are refused before any key is looked at, which also defeats the classic attack
//! of an HS256 token "signed" with the issuer's public key as the HMAC secret. The header must
//! name a `kid` present in the JWKS, the key's type must fit the algorithm, and keys embedded in
//! the header (`jwk`, `jku`, `x5u`, `x5c`) are never used. Signature checking is delegated to
//! `jsonwebtoken` (RustCrypto backend); the claim checks (`iss` exact, `aud` contains, `exp`,
//! `nbf`, `iat` with leeway) are done here against an injected clock so each has its own error.
//!
//! The token's origin is an environment variable (spoofable), so a verified token proves only
//! what its claims say: that is why the repository/project id and every tier-relevant claim are
//! checked against the tier model afterwards (module `guard`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::env::{ACTIONS_ID_TOKEN_REQUEST_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL, Environment};
use crate::error::OidcError;
use crate::http::Http;
use crate::secret::Secret;

/// One key of a JWKS, as much of it as verification needs.
#[derive(Debug, Clone, Deserialize)]
struct JwkKey {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// A JSON Web Key Set. Keys of types this verifier cannot use are kept (so a token naming them
/// gets a precise error) but never match.
#[derive(Debug, Clone)]
pub struct Jwks {
    keys: Vec<JwkKey>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`); `source` names it in errors.
    pub fn from_json(json: &str, source: &str) -> Result<Self, OidcError> {
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<Value>,
        }
        let doc: Doc = serde_json::from_str(json).map_err(|e| OidcError::Jwks {
            url: source.to_owned(),
            reason: e.to_string(),
        })?;
        // A key this verifier cannot parse must not make the whole set unusable.
        let keys = doc
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<JwkKey>(k).ok())
            .collect::<Vec<_>>();
        Ok(Self { keys })
    }

    /// Fetches the JWKS from `url`, which must come from the tier model.
    pub fn fetch(url: &str, http: &Http) -> Result<Self, OidcError> {
        let fetch_err = |reason: String| OidcError::Fetch {
            what: "the issuer's JWKS",
            url: url.to_owned(),
            reason,
        };
        let response = http
            .get(url, &[("Accept", "application/json")], &[])
            .map_err(fetch_err)?;
        if response.status != 200 {
            return Err(fetch_err(format!(
                "HTTP {} (redirects are not followed: pin the final URL in the tier model)",
                response.status
            )));
        }
        Self::from_json(&response.body, url)
    }

    /// Number of keys read.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verified claims of a token. Serialized as the plain claims object (claims are not secret;
/// the token is).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// Claims from a JSON object (for tests and for callers holding decoded claims).
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// A claim as a string; numbers are rendered in decimal (GitLab sends some ids as numbers).
    pub fn string(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A boolean claim; GitHub and GitLab send `"true"`/`"false"` strings.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        match self.0.get(name)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => None,
        }
    }

    /// The raw claims.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// Pinned issuer: `iss` must equal it exactly.
    pub issuer: &'a str,
    /// Pinned audience: `aud` must be it or contain it.
    pub audience: &'a str,
    /// Clock leeway for `exp`, `nbf`, `iat`, seconds.
    pub leeway_seconds: u64,
    /// Current time, seconds since the Unix epoch.
    pub now: u64,
}

#[derive(Debug, Deserialize)]
struct RawHeader {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Verifies `token` against `jwks` and `expect`; returns its claims.
pub fn verify(token: &Secret, jwks: &Jwks, expect: &Expectation<'_>) -> Result<Claims, OidcError> {
    let token = token.expose();
    let mut parts = token.split('.');
    let (Some(header_b64), Some(_payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64.trim_end_matches('='))
        .map_err(|e| OidcError::Header(e.to_string()))?;
    let header: RawHeader =
        serde_json::from_slice(&header_bytes).map_err(|e| OidcError::Header(e.to_string()))?;

    let alg_name = header.alg.unwrap_or_default();
    let alg = match alg_name.as_str() {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        a if a.eq_ignore_ascii_case("none") || a.is_empty() => return Err(OidcError::AlgNone),
        a if a.to_ascii_uppercase().starts_with("HS") => return Err(OidcError::Hmac(a.into())),
        a => return Err(OidcError::UnsupportedAlg(a.into())),
    };
    if header.crit.is_some() {
        return Err(OidcError::Critical);
    }
    let kid = header.kid.ok_or(OidcError::MissingKid)?;
    let candidates: Vec<&JwkKey> = jwks
        .keys
        .iter()
        .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
        .collect();
    if candidates.is_empty() {
        return Err(OidcError::UnknownKid { kid });
    }
    // Several keys may share a kid (rare, but legal): try each that fits the algorithm.
    let mut last_err = None;
    let mut verified = None;
    for jwk in candidates {
        let key = match decoding_key(jwk, &kid, &alg_name) {
            Ok(key) => key,
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        let mut validation = Validation::new(alg);
        // Claims are checked below against the injected clock, each with its own error.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => {
                verified = Some(data.claims);
                break;
            }
            Err(e) => {
                last_err = Some(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::Json(_)
                    | jsonwebtoken::errors::ErrorKind::Utf8(_) => OidcError::Claims(e.to_string()),
                    _ => OidcError::BadSignature { kid: kid.clone() },
                });
            }
        }
    }
    let claims = match verified {
        Some(c) => Claims(c),
        None => return Err(last_err.unwrap_or(OidcError::BadSignature { kid })),
    };
    check_claims(&claims, expect)?;
    Ok(claims)
}

fn decoding_key(jwk: &JwkKey, kid: &str, alg: &str) -> Result<DecodingKey, OidcError> {
    let mismatch = |reason: String| OidcError::KeyMismatch {
        kid: kid.to_owned(),
        alg: alg.to_owned(),
        reason,
    };
    if let Some(key_alg) = &jwk.alg
        && key_alg != alg
    {
        return Err(mismatch(format!("the key is for {key_alg}")));
    }
    if let Some(use_) = &jwk.use_
        && use_ != "sig"
    {
        return Err(mismatch(format!("the key's use is `{use_}`, not `sig`")));
    }
    match (alg, jwk.kty.as_str()) {
        ("RS256", "RSA") => {
            let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
                return Err(mismatch("the RSA key lacks `n` or `e`".into()));
            };
            DecodingKey::from_rsa_components(n, e).map_err(|e| mismatch(e.to_string()))
        }
        ("ES256", "EC") => {
            if jwk.crv.as_deref() != Some("P-256") {
                return Err(mismatch("the EC key is not on curve P-256".into()));
            }
            let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
                return Err(mismatch("the EC key lacks `x` or `y`".into()));
            };
            DecodingKey::from_ec_components(x, y).map_err(|e| mismatch(e.to_string()))
        }
        (_, kty) => Err(mismatch(format!("the key type is `{kty}`"))),
    }
}

fn check_claims(claims: &Claims, expect: &Expectation<'_>) -> Result<(), OidcError> {
    let iss = claims.0.get("iss").and_then(Value::as_str);
    if iss != Some(expect.issuer) {
        return Err(OidcError::Issuer {
            expected: expect.issuer.to_owned(),
            found: iss.map(str::to_owned),
        });
    }
    let aud_ok = match claims.0.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(OidcError::Audience {
            expected: expect.audience.to_owned(),
            found: claims
                .0
                .get("aud")
                .map_or_else(|| "missing".to_owned(), Value::to_string),
        });
    }
    let (now, leeway) = (expect.now, expect.leeway_seconds);
    let exp = claims
        .0
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(OidcError::MissingExp)?;
    if now > exp.saturating_add(leeway) {
        return Err(OidcError::Expired { exp, now, leeway });
    }
    if let Some(nbf) = claims.0.get("nbf").and_then(Value::as_u64)
        && now.saturating_add(leeway) < nbf
    {
        return Err(OidcError::NotYetValid { nbf, now, leeway });
    }
    if let Some(iat) = claims.0.get("iat").and_then(Value::as_u64)
        && now.saturating_add(leeway) < iat
    {
        return Err(OidcError::IssuedInFuture { iat, now, leeway });
    }
    Ok(())
}

/// Requests the job's OIDC token from GitHub for `audience` (the pinned one).
///
/// The request URL and bearer token come from `ACTIONS_ID_TOKEN_REQUEST_URL` and
/// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; whatever answers, the token is only trusted after [`verify`]
/// against the pinned JWKS and issuer.
pub fn fetch_github_token(
    env: &Environment,
    audience: &str,
    http: &Http,
) -> Result<Secret, OidcError> {
    let url = env
        .get(ACTIONS_ID_TOKEN_REQUEST_URL)
        .ok_or(OidcError::GitHubRequestMissing(
            ACTIONS_ID_TOKEN_REQUEST_URL,
        ))?;
    let bearer =
        env.secret(ACTIONS_ID_TOKEN_REQUEST_TOKEN)
            .ok_or(OidcError::GitHubRequestMissing(
                ACTIONS_ID_TOKEN_REQUEST_TOKEN,
            ))?;
    let authorization = format!("Bearer {}", bearer.expose());
    let fetch_err = |reason: String| OidcError::Fetch {
        what: "the job's OIDC token",
        url: url.to_owned(),
        reason,
    };
    let response = http
        .get(
            url,
            &[
                ("Authorization", authorization.as_str()),
                ("Accept", "application/json"),
            ],
            &[("audience", audience)],
        )
        .map_err(fetch_err)?;
    if response.status != 200 {
        return Err(fetch_err(format!("HTTP {}", response.status)));
    }
    #[derive(Deserialize)]
    struct TokenResponse {
        value: String,
    }
    // The body holds the token: on a parse error report the shape, never the body.
    let parsed: TokenResponse =
        serde_json::from_str(&response.body).map_err(|_| OidcError::TokenResponse)?;
    if parsed.value.is_empty() {
        return Err(OidcError::TokenResponse);
    }
    Ok(Secret::new(parsed.value))
}

/// Reads the job's OIDC token from the GitLab CI variable named in the tier model.
pub fn gitlab_token(env: &Environment, variable: &str) -> Result<Secret, OidcError> {
    env.secret(variable)
        .ok_or_else(|| OidcError::GitLabVariableMissing(variable.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with_header(header: &str) -> Secret {
        let h = URL_SAFE_NO_PAD.encode(header);
        let p = URL_SAFE_NO_PAD.encode(r#"{"iss":"x"}"#);
        Secret::new(format!("{h}.{p}.c2ln"))
    }

    fn expect() -> Expectation<'static> {
        Expectation {
            issuer: "x",
            audience: "a",
            leeway_seconds: 60,
            now: 0,
        }
    }

    fn empty() -> Jwks {
        Jwks::from_json(r#"{"keys":[]}"#, "test").unwrap()
    }

    #[test]
    fn algorithms_are_refused_before_keys_are_consulted() {
        let check =
            |header: &str| verify(&token_with_header(header), &empty(), &expect()).unwrap_err();
        assert!(matches!(check(r#"{"alg":"none"}"#), OidcError::AlgNone));
        assert!(matches!(check(r#"{"alg":"None"}"#), OidcError::AlgNone));
        assert!(matches!(check(r#"{"typ":"JWT"}"#), OidcError::AlgNone));
        assert!(matches!(
            check(r#"{"alg":"HS256","kid":"k"}"#),
            OidcError::Hmac(_)
        ));
        assert!(matches!(
            check(r#"{"alg":"hs512","kid":"k"}"#),
            OidcError::Hmac(_)
        ));
        assert!(matches!(
            check(r#"{"alg":"PS256","kid":"k"}"#),
            OidcError::UnsupportedAlg(_)
        ));
        assert!(matches!(check(r#"{"alg":"RS256"}"#), OidcError::MissingKid));
        assert!(matches!(
            check(r#"{"alg":"RS256","kid":"k","crit":["b64"]}"#),
            OidcError::Critical
        ));
        assert!(matches!(
            check(r#"{"alg":"RS256","kid":"k"}"#),
            OidcError::UnknownKid { .. }
        ));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for t in ["", "a.b", "a.b.c.d.e", "!!.b.c"] {
            assert!(verify(&Secret::new(t), &empty(), &expect()).is_err(), "{t}");
        }
    }

    #[test]
    fn claims_accept_string_booleans_and_numeric_ids() {
        let c = Claims(
            serde_json::from_str(r#"{"ref_protected":"true","p":false,"runner_id":7}"#).unwrap(),
        );
        assert_eq!(c.boolean("ref_protected"), Some(true));
        assert_eq!(c.boolean("p"), Some(false));
        assert_eq!(c.string("runner_id").as_deref(), Some("7"));
        assert_eq!(c.boolean("missing"), None);
    }

    #[test]
    fn unparseable_jwks_keys_are_skipped_not_fatal() {
        let jwks = Jwks::from_json(
            r#"{"keys":[{"kid":"no-kty"},{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}]}"#,
            "t",
        )
        .unwrap();
        assert_eq!(jwks.len(), 1);
        assert!(Jwks::from_json("[]", "t").is_err());
    }
}
