//! OIDC verification against keys made for the test and a JWKS served on loopback. Every
//! forged-token test has a twin showing the same path accepts a genuine token.

use custody_guard::oidc::{self, Expectation, Jwks};
use custody_guard::{Environment, Http, OidcError, Secret, TierModel};
use custody_test_support::Server;
use custody_test_support::oidc::{AUDIENCE, ISSUER, Keys, github_claims, now, sign, unsigned};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde_json::json;

use crate::support;

fn http() -> Http {
    Http::new(std::time::Duration::from_secs(5), None, None).unwrap()
}

fn expect() -> Expectation<'static> {
    Expectation {
        issuer: ISSUER,
        audience: AUDIENCE,
        leeway_seconds: 60,
        now: now(),
    }
}

/// Serves the issuer's JWKS on loopback and fetches it the way the guard does.
fn served_jwks(keys: &Keys) -> (Server, Jwks) {
    let server = Server::start(&[("/.well-known/jwks", 200, keys.jwks())]);
    let jwks = Jwks::fetch(&server.url("/.well-known/jwks"), &http()).unwrap();
    assert_eq!(jwks.len(), 2);
    (server, jwks)
}

fn verify(token: &str, jwks: &Jwks) -> Result<custody_guard::Claims, OidcError> {
    oidc::verify(&Secret::new(token), jwks, &expect())
}

#[test]
fn genuine_rs256_and_es256_tokens_verify() {
    let keys = Keys::new();
    let (server, jwks) = served_jwks(&keys);
    let claims = github_claims(ISSUER);
    let rs = verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).unwrap();
    assert_eq!(rs.string("repository_id").as_deref(), Some("712345678"));
    assert_eq!(rs.boolean("ref_protected"), Some(true));
    let es = verify(&sign(&keys.ec, Algorithm::ES256, "ec-1", &claims), &jwks).unwrap();
    assert_eq!(es.string("environment").as_deref(), Some("production"));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].method, "GET");
}

#[test]
fn token_signed_by_another_key_is_refused() {
    let keys = Keys::new();
    let (_server, jwks) = served_jwks(&keys);
    let forged = sign(
        &keys.attacker_rsa,
        Algorithm::RS256,
        "rsa-1",
        &github_claims(ISSUER),
    );
    let err = verify(&forged, &jwks).unwrap_err();
    assert!(matches!(err, OidcError::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains("forged or altered"));
    // Twin: an ES256 token whose signature is swapped in from another token is refused too.
    let genuine = sign(&keys.ec, Algorithm::ES256, "ec-1", &github_claims(ISSUER));
    let mut other = github_claims(ISSUER);
    other["environment"] = json!("development");
    let other = sign(&keys.ec, Algorithm::ES256, "ec-1", &other);
    let spliced = format!(
        "{}.{}",
        other.rsplit_once('.').unwrap().0,
        genuine.rsplit_once('.').unwrap().1
    );
    assert!(verify(&genuine, &jwks).is_ok());
    assert!(matches!(
        verify(&spliced, &jwks),
        Err(OidcError::BadSignature { .. })
    ));
}

#[test]
fn alg_none_is_refused() {
    let keys = Keys::new();
    let (_server, jwks) = served_jwks(&keys);
    for alg in ["none", "NONE", "nOnE"] {
        let token = unsigned(
            &json!({"alg": alg, "kid": "rsa-1", "typ": "JWT"}),
            &github_claims(ISSUER),
            "",
        );
        let err = verify(&token, &jwks).unwrap_err();
        assert!(matches!(err, OidcError::AlgNone), "{alg}: {err}");
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let keys = Keys::new();
    let (_server, jwks) = served_jwks(&keys);
    let public_pem = support::read_data("rsa-issuer.pub.pem");
    let claims = github_claims(ISSUER);
    let forged = sign(
        &EncodingKey::from_secret(public_pem.as_bytes()),
        Algorithm::HS256,
        "rsa-1",
        &claims,
    );
    // The attack is real: a verifier that lets the token pick HMAC and feeds it the public key
    // as the secret accepts this token.
    let naive = jsonwebtoken::decode::<serde_json::Value>(
        &forged,
        &DecodingKey::from_secret(public_pem.as_bytes()),
        &{
            let mut v = Validation::new(Algorithm::HS256);
            v.set_audience(&[AUDIENCE]);
            v
        },
    );
    assert!(
        naive.is_ok(),
        "the forged token should fool a naive verifier"
    );
    let err = verify(&forged, &jwks).unwrap_err();
    assert!(
        matches!(err, OidcError::Hmac(ref a) if a == "HS256"),
        "{err}"
    );
    assert!(err.to_string().contains("refused"));
}

#[test]
fn wrong_issuer_is_refused() {
    let keys = Keys::new();
    let (_server, jwks) = served_jwks(&keys);
    let token = sign(
        &keys.rsa,
        Algorithm::RS256,
        "rsa-1",
        &github_claims("https://evil.example"),
    );
    let err = verify(&token, &jwks).unwrap_err();
    assert!(matches!(err, OidcError::Issuer { .. }), "{err}");
    assert!(err.to_string().contains("https://evil.example"));
}

#[test]
fn wrong_audience_is_refused_and_a_list_containing_it_is_accepted() {
    let keys = Keys::new();
    let (_server, jwks) = served_jwks(&keys);
    let mut claims = github_claims(ISSUER);
    claims["aud"] = json!("https://github.com/acme-health");
    let err = verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).unwrap_err();
    assert!(matches!(err, OidcError::Audience { .. }), "{err}");
    claims["aud"] = json!(["sts.amazonaws.com", AUDIENCE]);
    assert!(verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).is_ok());
    claims.as_object_mut().unwrap().remove("aud");
    let err = verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).unwrap_err();
    assert!(matches!(err, OidcError::Audience { .. }), "{err}");
}

#[test]
fn expired_token_is_refused_within_leeway_accepted() {
    let keys = Keys::new();
    let (_server, jwks) = served_jwks(&keys);
    let now = now();
    let mut claims = github_claims(ISSUER);
    claims["iat"] = json!(now - 1000);
    claims["nbf"] = json!(now - 1000);
    claims["exp"] = json!(now - 61);
    let err = verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).unwrap_err();
    assert!(matches!(err, OidcError::Expired { .. }), "{err}");
    claims["exp"] = json!(now - 30);
    assert!(verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).is_ok());
    claims.as_object_mut().unwrap().remove("exp");
    let err = verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).unwrap_err();
    assert!(matches!(err, OidcError::MissingExp), "{err}");
}

#[test]
fn not_yet_valid_token_is_refused_within_leeway_accepted() {
    let keys = Keys::new();
    let (_server, jwks) = served_jwks(&keys);
    let now = now();
    let mut claims = github_claims(ISSUER);
    claims["nbf"] = json!(now + 120);
    claims["iat"] = json!(now);
    let err = verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).unwrap_err();
    assert!(matches!(err, OidcError::NotYetValid { .. }), "{err}");
    claims["nbf"] = json!(now + 30);
    assert!(verify(&sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims), &jwks).is_ok());
    // Leeway is configurable: with none, the same token is refused.
    let strict = Expectation {
        leeway_seconds: 0,
        ..expect()
    };
    let token = sign(&keys.rsa, Algorithm::RS256, "rsa-1", &claims);
    assert!(matches!(
        oidc::verify(&Secret::new(token), &jwks, &strict),
        Err(OidcError::NotYetValid { .. })
    ));
}

#[test]
fn unknown_kid_is_refused() {
    let keys = Keys::new();
    let (_server, jwks) = served_jwks(&keys);
    let token = sign(
        &keys.rsa,
        Algorithm::RS256,
        "rotated-away",
        &github_claims(ISSUER),
    );
    let err = verify(&token, &jwks).unwrap_err();
    assert!(
        matches!(err, OidcError::UnknownKid { ref kid } if kid == "rotated-away"),
        "{err}"
    );
    // An ES256 token naming the RSA key's kid does not get verified with the wrong key type.
    let token = sign(&keys.ec, Algorithm::ES256, "rsa-1", &github_claims(ISSUER));
    assert!(matches!(
        verify(&token, &jwks),
        Err(OidcError::KeyMismatch { .. })
    ));
}

fn model_with(jwks_url: &str) -> TierModel {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tiers.yaml"))
        .unwrap()
        .replace(
            "jwks_url: https://token.actions.githubusercontent.com/.well-known/jwks",
            &format!("jwks_url: {jwks_url}"),
        );
    let model = TierModel::from_yaml(&text, "tiers.yaml").unwrap();
    assert_eq!(model.trust.github.as_ref().unwrap().jwks_url, jwks_url);
    model
}

/// An earlier step points every plausible variable at an attacker's JWKS and token: the guard
/// still fetches the JWKS from the URL pinned in the tier model, so the attacker's token fails.
#[test]
fn jwks_url_redirected_by_environment_is_ignored() {
    let keys = Keys::new();
    let pinned = Server::start(&[("/.well-known/jwks", 200, keys.jwks())]);
    let attacker = Server::start(&[("/jwks", 200, Keys::attacker_jwks())]);
    let forged = sign(
        &keys.attacker_rsa,
        Algorithm::RS256,
        "rsa-1",
        &github_claims(ISSUER),
    );
    let genuine = sign(&keys.rsa, Algorithm::RS256, "rsa-1", &github_claims(ISSUER));
    let token_server =
        |token: &str| Server::start(&[("/idtoken", 200, json!({"value": token}).to_string())]);
    let model = model_with(&pinned.url("/.well-known/jwks"));
    let env_for = |tokens: &Server| {
        Environment::from_map([
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                tokens.url("/idtoken?api-version=2.0"),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                "request-bearer-secret".to_owned(),
            ),
            ("JWKS_URL", attacker.url("/jwks")),
            ("OIDC_JWKS_URL", attacker.url("/jwks")),
            ("CUSTODY_JWKS_URL", attacker.url("/jwks")),
            ("ACTIONS_ID_TOKEN_JWKS_URL", attacker.url("/jwks")),
            ("OIDC_ISSUER", "https://evil.example".to_owned()),
        ])
    };

    let forged_tokens = token_server(&forged);
    let result = custody_guard::guard::verified_token(
        &model,
        custody_guard::Platform::GitHub,
        &env_for(&forged_tokens),
        &http(),
        now(),
    )
    .unwrap();
    let err = result.unwrap_err();
    assert!(matches!(err, OidcError::BadSignature { .. }), "{err}");
    assert!(
        attacker.requests().is_empty(),
        "the attacker's JWKS was fetched"
    );
    assert_eq!(pinned.requests().len(), 1);

    // Twin: the same variables, a genuine token: verified with the pinned JWKS.
    let genuine_tokens = token_server(&genuine);
    let claims = custody_guard::guard::verified_token(
        &model,
        custody_guard::Platform::GitHub,
        &env_for(&genuine_tokens),
        &http(),
        now(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        claims.string("repository").as_deref(),
        Some("acme-health/claims-service")
    );
    assert!(attacker.requests().is_empty());
    assert_eq!(pinned.requests().len(), 2);

    // The token request carried the pinned audience and the request bearer token.
    let req = &genuine_tokens.requests()[0];
    assert!(
        req.target
            .starts_with("/idtoken?api-version=2.0&audience=custody-runner-guard"),
        "{}",
        req.target
    );
    assert_eq!(req.headers["authorization"], "Bearer request-bearer-secret");
}

#[test]
fn token_request_failures_are_unavailable_not_forged() {
    let model = model_with("http://127.0.0.1:9/jwks");
    let missing = custody_guard::guard::verified_token(
        &model,
        custody_guard::Platform::GitHub,
        &Environment::default(),
        &http(),
        now(),
    )
    .unwrap()
    .unwrap_err();
    assert!(missing.is_unavailable());
    assert!(missing.to_string().contains("id-token: write"), "{missing}");
    // A token server that answers something else than {"value": ...} never has its body echoed.
    let server = Server::start(&[("/idtoken", 200, r#"{"token":"eyJsecret"}"#.to_owned())]);
    let env = Environment::from_map([
        ("ACTIONS_ID_TOKEN_REQUEST_URL", server.url("/idtoken")),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t".to_owned()),
    ]);
    let err = oidc::fetch_github_token(&env, AUDIENCE, &http()).unwrap_err();
    assert!(err.is_unavailable());
    assert!(!err.to_string().contains("eyJsecret"));
}

/// Issue 18: the JWKS behind TLS inspection. The guard trusts a private CA only when
/// the tier model pins it (`trust.ca_certificates`); nothing else widens its roots.
#[test]
fn jwks_over_https_with_a_ca_pinned_in_the_tier_model() {
    use custody_test_support::{TestCa, TlsFront};
    let keys = Keys::new();
    let server = Server::start(&[("/.well-known/jwks", 200, keys.jwks())]);
    let ca = TestCa::new("Runner network CA");
    let front = TlsFront::start(&ca, server.addr);
    let url = format!("{}/.well-known/jwks", front.url());
    let pinned = Http::new(std::time::Duration::from_secs(5), None, Some(ca.ca_pem())).unwrap();
    let jwks = Jwks::fetch(&url, &pinned).unwrap();
    assert_eq!(jwks.len(), 2);
    let claims = github_claims(ISSUER);
    assert!(verify(&sign(&keys.ec, Algorithm::ES256, "ec-1", &claims), &jwks).is_ok());
    let err = Jwks::fetch(&url, &http()).unwrap_err().to_string();
    assert!(err.contains("not trusted"), "{err}");
    // another CA pinned does not help
    let other = TestCa::new("Attacker CA");
    let wrong = Http::new(
        std::time::Duration::from_secs(5),
        None,
        Some(other.ca_pem()),
    )
    .unwrap();
    assert!(Jwks::fetch(&url, &wrong).is_err());
    // PEM that holds no certificate is a configuration error naming the field
    let e = Http::new(
        std::time::Duration::from_secs(5),
        None,
        Some("not a certificate"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("trust.ca_certificates"), "{e}");
}
