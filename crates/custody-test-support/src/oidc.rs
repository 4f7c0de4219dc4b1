//! A test OIDC issuer standing in for GitHub's and GitLab's: its signing keys (a fixed
//! RSA key `rsa-1`, a P-256 key `ec-1` made per [`Keys`], and an attacker's RSA key),
//! their JWKS documents, GitHub-shaped claims and tokens signed with any of the keys.
//!
//! The RSA keys are custody-guard's test data (`crates/custody-guard/tests/data/rsa-*`,
//! described in its README): fixed keys keep the suites fast, as RSA key generation in a
//! debug build is slow.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The issuer of GitHub Actions' OIDC tokens.
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The audience runner-guard asks for.
pub const AUDIENCE: &str = "custody-runner-guard";
/// The commit of the deploy [`github_claims`] describes.
pub const SHA: &str = "f83a356604ae3c5d03e1b46ef4d1ca77d64a90b0";

const ISSUER_KEY_PEM: &str = include_str!("../../custody-guard/tests/data/rsa-issuer.key.pem");
const ISSUER_JWK: &str = include_str!("../../custody-guard/tests/data/rsa-issuer.jwk.json");
const ATTACKER_KEY_PEM: &str = include_str!("../../custody-guard/tests/data/rsa-attacker.key.pem");
const ATTACKER_JWK: &str = include_str!("../../custody-guard/tests/data/rsa-attacker.jwk.json");

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Signing keys of the test issuer (RSA and P-256) and of an attacker.
pub struct Keys {
    /// The issuer's RSA key, `rsa-1` in its JWKS.
    pub rsa: EncodingKey,
    /// The attacker's RSA key; its JWKS names it `rsa-1` too.
    pub attacker_rsa: EncodingKey,
    /// The issuer's P-256 key, `ec-1` in its JWKS; a new one per `Keys`.
    pub ec: EncodingKey,
    pub ec_x: String,
    pub ec_y: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("ec_x", &self.ec_x)
            .field("ec_y", &self.ec_y)
            .finish_non_exhaustive()
    }
}

impl Default for Keys {
    fn default() -> Self {
        Self::new()
    }
}

impl Keys {
    /// The fixed RSA keys and a new P-256 key.
    pub fn new() -> Keys {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use p256::pkcs8::EncodePrivateKey as _;
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret
            .to_pkcs8_pem(Default::default())
            .expect("PKCS#8 PEM of a P-256 key");
        let point = secret.public_key().to_encoded_point(false);
        Keys {
            rsa: issuer_rsa(),
            attacker_rsa: attacker_rsa(),
            ec: EncodingKey::from_ec_pem(pem.as_bytes()).expect("a P-256 signing key"),
            ec_x: URL_SAFE_NO_PAD.encode(point.x().expect("an uncompressed point")),
            ec_y: URL_SAFE_NO_PAD.encode(point.y().expect("an uncompressed point")),
        }
    }

    /// The issuer's JWKS: RSA key `rsa-1`, EC key `ec-1`.
    pub fn jwks(&self) -> String {
        json!({"keys": [
            rsa_jwk(ISSUER_JWK),
            {"kty": "EC", "kid": "ec-1", "alg": "ES256", "use": "sig", "crv": "P-256", "x": self.ec_x, "y": self.ec_y},
        ]})
        .to_string()
    }

    /// The issuer's JWKS with its RSA key `rsa-1` only.
    pub fn rsa_jwks() -> String {
        json!({"keys": [rsa_jwk(ISSUER_JWK)]}).to_string()
    }

    /// The attacker's JWKS, using the issuer's kid.
    pub fn attacker_jwks() -> String {
        json!({"keys": [rsa_jwk(ATTACKER_JWK)]}).to_string()
    }
}

/// The issuer's RSA signing key (`rsa-1`).
pub fn issuer_rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(ISSUER_KEY_PEM.as_bytes()).expect("the issuer's RSA key")
}

/// A GitHub App's private key for tests (PEM): the issuer's RSA key.
pub fn app_key_pem() -> &'static str {
    ISSUER_KEY_PEM
}

/// The public half of [`app_key_pem`], to check App JWTs with.
pub fn app_decoding_key() -> jsonwebtoken::DecodingKey {
    let rsa: Value = serde_json::from_str(ISSUER_JWK).expect("a JWK in the test data");
    jsonwebtoken::DecodingKey::from_rsa_components(
        rsa.get("n").and_then(Value::as_str).expect("n"),
        rsa.get("e").and_then(Value::as_str).expect("e"),
    )
    .expect("the issuer's RSA public key")
}

/// The attacker's RSA signing key.
pub fn attacker_rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(ATTACKER_KEY_PEM.as_bytes()).expect("the attacker's RSA key")
}

/// A JWKS entry `rsa-1` (RS256) for the key whose `n` and `e` are in `jwk`.
fn rsa_jwk(jwk: &str) -> Value {
    let rsa: Value = serde_json::from_str(jwk).expect("a JWK in the test data");
    json!({"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": rsa.get("n"), "e": rsa.get("e")})
}

/// GitHub-shaped claims for a production deploy of [`SHA`], issued by `issuer` for
/// [`AUDIENCE`], valid for five minutes (see GitHub's "About security hardening with
/// OpenID Connect" example token).
pub fn github_claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "jti": "example-id",
        "sub": "repo:acme-health/claims-service:environment:production",
        "environment": "production",
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "ref_protected": "true",
        "sha": SHA,
        "repository": "acme-health/claims-service",
        "repository_id": "712345678",
        "repository_owner": "acme-health",
        "run_id": "29679449",
        "check_run_id": "399444496",
        "runner_environment": "self-hosted",
        "job_workflow_ref": "acme-health/claims-service/.github/workflows/deploy.yml@refs/heads/main",
        "iss": issuer,
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 300,
    })
}

/// A token of `claims` signed with `key` by `alg`, its header naming `kid`.
pub fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("a signed token")
}

/// `claims` signed by RS256 with the issuer's RSA key (or the attacker's, for forgeries),
/// kid `rsa-1` either way.
pub fn sign_rs256(claims: &Value, attacker: bool) -> String {
    let key = if attacker {
        attacker_rsa()
    } else {
        issuer_rsa()
    };
    sign(&key, Algorithm::RS256, "rsa-1", claims)
}

/// A token with a hand-made header and no signature check possible (`alg: none` and friends).
pub fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
