//! custody-guard's example tier model (`crates/custody-guard/examples/tiers.yaml`)
//! pointed at loopback stand-ins instead of GitHub and GitLab.

use std::path::Path;

/// The example tier model's text with the JWKS URLs of both platforms set to
/// `jwks_url` and their API URLs to `api_url`.
pub fn example(jwks_url: &str, api_url: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../custody-guard/examples/tiers.yaml");
    std::fs::read_to_string(path)
        .expect("custody-guard's examples/tiers.yaml")
        .replace(
            "jwks_url: https://token.actions.githubusercontent.com/.well-known/jwks",
            &format!("jwks_url: {jwks_url}"),
        )
        .replace(
            "api_url: https://api.github.com",
            &format!("api_url: {api_url}"),
        )
        .replace(
            "jwks_url: https://gitlab.com/oauth/discovery/keys",
            &format!("jwks_url: {jwks_url}"),
        )
        .replace(
            "api_url: https://gitlab.com",
            &format!("api_url: {api_url}"),
        )
}
