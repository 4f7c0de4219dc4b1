//! What runner-guard needs in a test job: a tier model whose trust anchors point at a
//! loopback server (JWKS, the GitHub jobs API, GitLab's `GET /api/v4/job`, GitHub's
//! token request URL), and id tokens minted with custody-guard's test issuer key
//! (`crates/custody-guard/tests/data/rsa-issuer.*`) standing in for the platforms' OIDC
//! tokens, which neither act nor gitlab-ci-local mints. The API answers are the
//! documented shapes custody-guard's own tests use (`github-job.json`, `gitlab-job.json`).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support;

pub const AUDIENCE: &str = "custody-runner-guard";
pub const REPOSITORY: &str = "acme/app";
pub const REPOSITORY_ID: &str = "712345678";
pub const GITLAB_ISSUER: &str = "https://gitlab.example.com";
pub const PROJECT_ID: &str = "4242";
const GITHUB_JOB_ID: &str = "399444496";

fn guard_data(name: &str) -> String {
    std::fs::read_to_string(
        support::root()
            .join("crates/custody-guard/tests/data")
            .join(name),
    )
    .unwrap()
}

/// Whether the template tests that run `step` can run: false when no step binaries were
/// given (`CUSTODY_STEP_BINARIES` unset; `cargo xtask test` sets it). A binary missing
/// from the directory that was given, or one that does not answer `--help`, fails the
/// test instead of skipping it.
pub fn is_built(step: &str) -> bool {
    let Some(bins) = support::binaries() else {
        return false;
    };
    let out = Command::new(bins.join(step)).arg("--help").output();
    assert!(
        out.as_ref().is_ok_and(|o| o.status.success()),
        "{step} in CUSTODY_STEP_BINARIES does not run `--help`: {out:?}"
    );
    true
}

/// A loopback HTTP server answering fixed JSON routes (path without query).
pub struct Api {
    pub base: String,
    routes: Arc<Mutex<BTreeMap<String, String>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Api {
    pub fn start(routes: BTreeMap<String, String>) -> Api {
        let routes = Arc::new(Mutex::new(routes));
        let table = routes.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let path = target.split('?').next().unwrap_or("/").to_string();
                seen.lock().unwrap().push(path.clone());
                let route = table.lock().unwrap().get(&path).cloned();
                let (status, body) = match route {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", r#"{"message":"Not Found"}"#.to_string()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Api {
            base,
            routes,
            requests,
        }
    }

    pub fn set(&self, path: &str, body: String) {
        self.routes.lock().unwrap().insert(path.to_string(), body);
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// The loopback trust anchors; tokens are minted once the job's commit is known.
pub struct Trust {
    pub api: Api,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs claims with the test issuer's RSA key (`attacker`: with another key).
pub fn sign(claims: &Value, attacker: bool) -> String {
    let pem = guard_data(if attacker {
        "rsa-attacker.key.pem"
    } else {
        "rsa-issuer.key.pem"
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub fn github_claims(commit: &str) -> Value {
    let now = now();
    json!({
        "sub": format!("repo:{REPOSITORY}:ref:refs/heads/main"),
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "ref_protected": "true",
        "sha": commit,
        "repository": REPOSITORY,
        "repository_id": REPOSITORY_ID,
        "repository_owner": "acme",
        "run_id": "29679449",
        "check_run_id": GITHUB_JOB_ID,
        "runner_environment": "github-hosted",
        "job_workflow_ref": format!("{REPOSITORY}/.github/workflows/custody.yml@refs/heads/main"),
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 600,
    })
}

pub fn gitlab_claims(commit: &str) -> Value {
    let now = now();
    json!({
        "sub": "project_path:acme/app:ref_type:branch:ref:main",
        "aud": AUDIENCE,
        "namespace_path": "acme",
        "project_id": PROJECT_ID,
        "project_path": "acme/app",
        "pipeline_source": "push",
        "ref": "main",
        "ref_type": "branch",
        "ref_protected": "true",
        "sha": commit,
        "runner_id": 3001,
        "runner_environment": "gitlab-hosted",
        "iss": GITLAB_ISSUER,
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 600,
    })
}

impl Trust {
    pub fn start() -> Trust {
        let rsa: Value = serde_json::from_str(&guard_data("rsa-issuer.jwk.json")).unwrap();
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": rsa["n"], "e": rsa["e"]}]});
        let mut routes = BTreeMap::new();
        routes.insert("/.well-known/jwks".to_string(), jwks.to_string());
        routes.insert(
            format!("/repos/{REPOSITORY}/actions/jobs/{GITHUB_JOB_ID}"),
            guard_data("github-job.json"),
        );
        routes.insert("/api/v4/job".to_string(), guard_data("gitlab-job.json"));
        Trust {
            api: Api::start(routes),
        }
    }

    /// GitHub's token request URL (answering `{"value": token}`) with a token for `commit`.
    pub fn github_token_url(&self, commit: &str, attacker: bool) -> String {
        let token = sign(&github_claims(commit), attacker);
        self.api
            .set("/idtoken", json!({ "value": token }).to_string());
        format!("{}/idtoken", self.api.base)
    }

    /// A GitLab id_token for `commit`.
    pub fn gitlab_token(&self, commit: &str) -> String {
        sign(&gitlab_claims(commit), false)
    }

    /// Like `github_token_url`, for a job deploying to `environment` (the claim GitHub
    /// adds for a job with `environment:`).
    pub fn github_token_url_for(&self, commit: &str, environment: &str) -> String {
        let mut claims = github_claims(commit);
        claims["environment"] = json!(environment);
        let token = sign(&claims, false);
        self.api
            .set("/idtoken", json!({ "value": token }).to_string());
        format!("{}/idtoken", self.api.base)
    }

    /// A GitLab id_token for a job of a protected `environment` (production tier).
    pub fn gitlab_token_for(&self, commit: &str, environment: &str) -> String {
        let mut claims = gitlab_claims(commit);
        claims["environment"] = json!(environment);
        claims["environment_protected"] = json!("true");
        claims["deployment_tier"] = json!("production");
        sign(&claims, false)
    }

    /// A tier model (schema: crates/custody-guard/TIER-MODEL.md) whose anchors are this
    /// server; every environment and job is in a `development` tier of hosted runners,
    /// and the metadata probe goes to a closed loopback port.
    pub fn tier_model(&self) -> String {
        self.tier_model_with(
            "environments:\n  production: development\ndefault_tier: development\ntiers:\n  development:\n    runner_environment: hosted\n",
        )
    }

    /// The tier model with these trust anchors and local settings, and `tiers` (the
    /// `environments`, `default_tier` and `tiers` sections) as given.
    pub fn tier_model_with(&self, tiers: &str) -> String {
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        format!(
            r#"version: 1
trust:
  github:
    jwks_url: {base}/.well-known/jwks
    api_url: {base}
    audience: {AUDIENCE}
    repository: {REPOSITORY}
    repository_id: {REPOSITORY_ID}
  gitlab:
    issuer: {GITLAB_ISSUER}
    jwks_url: {base}/.well-known/jwks
    api_url: {base}
    audience: {AUDIENCE}
    project_id: {PROJECT_ID}
    token_variable: CUSTODY_ID_TOKEN
local:
  metadata_endpoint: {closed}
  probe_timeout_ms: 200
{tiers}"#,
            base = self.api.base
        )
    }

    /// Writes the tier model to `dir/.custody/tiers.yaml`.
    pub fn write_tier_model(&self, dir: &Path) -> PathBuf {
        let path = dir.join(".custody/tiers.yaml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, self.tier_model()).unwrap();
        path
    }
}
