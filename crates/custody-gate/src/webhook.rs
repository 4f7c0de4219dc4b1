//! Webhook authentication and the payloads the gate reads.
//!
//! - GitHub signs each delivery with the App's webhook secret: `X-Hub-Signature-256:
//!   sha256=<hex HMAC-SHA256 of the body>`. It is checked over the raw body, in
//!   constant time, before the body is parsed.
//! - GitLab sends the webhook's secret token as is (`X-Gitlab-Token`); it is compared
//!   in constant time.
//!
//! Payload types hold only the fields the gate uses, so fields the platforms add never
//! break it.

use custody_http::Secret;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
/// Malformed headers are simply not valid; the comparison is constant-time.
pub fn github_signature_valid(secret: &Secret, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(given) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The `X-Hub-Signature-256` value for `body` (for tests and the demo's deliveries).
pub fn github_signature(secret: &Secret, body: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether GitLab's `X-Gitlab-Token` is the configured token (constant-time).
pub fn gitlab_token_valid(secret: &Secret, header: Option<&str>) -> bool {
    let Some(given) = header else { return false };
    let want = secret.expose().as_bytes();
    // ct_eq on slices of different lengths is false without looking at the bytes
    bool::from(want.ct_eq(given.as_bytes()))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// A `deployment_protection_rule` event (GitHub's webhook payload; only what the gate
/// reads).
#[derive(Debug, Clone, Deserialize)]
pub struct ProtectionRuleEvent {
    /// `requested` is the only action GitHub sends today.
    pub action: String,
    pub environment: String,
    /// `https://api.github.com/repos/OWNER/REPO/actions/runs/RUN_ID/deployment_protection_rule`.
    pub deployment_callback_url: String,
    pub deployment: Option<DeploymentRef>,
    pub repository: Option<Repository>,
    pub installation: Option<Installation>,
    /// The commit (also in `deployment.sha`).
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default, rename = "ref")]
    pub ref_: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentRef {
    pub id: Option<u64>,
    pub sha: Option<String>,
    #[serde(default, rename = "ref")]
    pub ref_: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: u64,
}

impl ProtectionRuleEvent {
    /// The commit being deployed.
    pub fn commit(&self) -> Option<&str> {
        self.deployment
            .as_ref()
            .and_then(|d| d.sha.as_deref())
            .or(self.sha.as_deref())
    }

    /// The repository (`owner/repo`) and run id, read from the callback URL, which must
    /// be `…/repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule` on
    /// the API origin `api_url`: the App's token is never sent elsewhere.
    pub fn callback(&self, api_url: &str) -> Result<(String, u64), String> {
        let url = url::Url::parse(&self.deployment_callback_url)
            .map_err(|e| format!("deployment_callback_url is not a URL: {e}"))?;
        let api = url::Url::parse(api_url).map_err(|e| format!("{api_url}: {e}"))?;
        if url.origin() != api.origin() {
            return Err(format!(
                "deployment_callback_url is on {}, not on the configured API {}",
                url.origin().ascii_serialization(),
                api.origin().ascii_serialization()
            ));
        }
        let path = url.path();
        let rest = path
            .strip_prefix(api.path().trim_end_matches('/'))
            .unwrap_or(path);
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            [
                "repos",
                owner,
                repo,
                "actions",
                "runs",
                run,
                "deployment_protection_rule",
            ] if valid_name(owner) && valid_name(repo) => {
                let run = run.parse::<u64>().map_err(|_| {
                    format!("deployment_callback_url: run id {run} is not a number")
                })?;
                Ok((format!("{owner}/{repo}"), run))
            }
            _ => Err(format!(
                "deployment_callback_url {path} is not a workflow run's deployment_protection_rule endpoint"
            )),
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A GitLab job event (`object_kind: build`): the deployment job whose deployment may
/// wait for approval.
#[derive(Debug, Clone, Deserialize)]
pub struct GitLabJobEvent {
    pub object_kind: String,
    pub build_id: u64,
    #[serde(default)]
    pub build_status: Option<String>,
    pub project_id: u64,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub environment: Option<GitLabEnvironment>,
    #[serde(default)]
    pub repository: Option<GitLabRepository>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitLabRepository {
    /// `https://gitlab.example.com/group/project`.
    #[serde(default)]
    pub homepage: Option<String>,
}

impl GitLabJobEvent {
    /// The project's path (`group/project`, as the pipeline's records name it), from
    /// the repository's home page; its id when the event does not say.
    pub fn project(&self) -> String {
        self.repository
            .as_ref()
            .and_then(|r| r.homepage.as_deref())
            .and_then(|h| url::Url::parse(h).ok())
            .map(|u| u.path().trim_matches('/').to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| self.project_id.to_string())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitLabEnvironment {
    pub name: String,
    #[serde(default)]
    pub action: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signature_round_trip_and_rejections() {
        let secret = Secret::new("It's a Secret to Everybody".to_owned());
        // GitHub's documented example: "Hello, World!" under that secret
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(github_signature_valid(
            &secret,
            b"Hello, World!",
            Some(header)
        ));
        assert_eq!(github_signature(&secret, b"Hello, World!"), header);
        assert!(!github_signature_valid(
            &secret,
            b"Hello, World?",
            Some(header)
        ));
        assert!(!github_signature_valid(&secret, b"Hello, World!", None));
        assert!(!github_signature_valid(
            &secret,
            b"Hello, World!",
            Some(&header.replace("sha256=", "sha1="))
        ));
        assert!(!github_signature_valid(
            &secret,
            b"Hello, World!",
            Some(&header[..header.len() - 2])
        ));
        assert!(!github_signature_valid(
            &secret,
            b"Hello, World!",
            Some("sha256=zz")
        ));
        let other = Secret::new("another".to_owned());
        assert!(!github_signature_valid(
            &other,
            b"Hello, World!",
            Some(header)
        ));
    }

    #[test]
    fn gitlab_token_compares_whole_values() {
        let secret = Secret::new("tok-123".to_owned());
        assert!(gitlab_token_valid(&secret, Some("tok-123")));
        assert!(!gitlab_token_valid(&secret, Some("tok-12")));
        assert!(!gitlab_token_valid(&secret, Some("tok-1234")));
        assert!(!gitlab_token_valid(&secret, Some("")));
        assert!(!gitlab_token_valid(&secret, None));
    }

    fn event(callback: &str) -> ProtectionRuleEvent {
        serde_json::from_value(serde_json::json!({
            "action": "requested",
            "environment": "production",
            "deployment_callback_url": callback,
        }))
        .unwrap()
    }

    #[test]
    fn callback_url_must_be_a_run_on_the_configured_api() {
        let e = event(
            "https://api.github.com/repos/acme/app/actions/runs/42/deployment_protection_rule",
        );
        assert_eq!(
            e.callback("https://api.github.com").unwrap(),
            ("acme/app".to_owned(), 42)
        );
        let ghes = event(
            "https://ghe.example/api/v3/repos/acme/app/actions/runs/7/deployment_protection_rule",
        );
        assert_eq!(
            ghes.callback("https://ghe.example/api/v3").unwrap(),
            ("acme/app".to_owned(), 7)
        );
        for (url, why) in [
            (
                "https://evil.example/repos/acme/app/actions/runs/42/deployment_protection_rule",
                "not on the configured API",
            ),
            (
                "http://api.github.com/repos/acme/app/actions/runs/42/deployment_protection_rule",
                "not on the configured API",
            ),
            (
                "https://api.github.com/repos/acme/app/actions/runs/x/deployment_protection_rule",
                "not a number",
            ),
            (
                "https://api.github.com/repos/acme/../actions/runs/42/deployment_protection_rule",
                "not a workflow run",
            ),
            ("https://api.github.com/user", "not a workflow run"),
            ("not a url", "not a URL"),
        ] {
            let err = event(url).callback("https://api.github.com").unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
