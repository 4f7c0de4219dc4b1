//! Test support: a loopback HTTP server answering fixed routes, test tokens signed with the
//! custody-guard test issuer's key (`../custody-guard/tests/data`), a fake root, the example
//! tier model pointed at the loopback servers, and a runner for the real binary.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const AUDIENCE: &str = "custody-runner-guard";
pub const JOB_PATH: &str = "/repos/acme-health/claims-service/actions/jobs/399444496";
pub const ENV_PATH: &str = "/repos/acme-health/claims-service/environments/production";
/// Secrets handed to the guard; none may appear in any output or record.
pub const API_TOKEN: &str = "ghs_api_token_secret_value_1234";
pub const REQUEST_TOKEN: &str = "request-bearer-secret-5678";
pub const SHA: &str = "f83a356604ae3c5d03e1b46ef4d1ca77d64a90b0";

pub fn guard_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../custody-guard/tests/data")
        .join(name)
}

pub fn read_guard_data(name: &str) -> String {
    std::fs::read_to_string(guard_data(name)).unwrap()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A loopback HTTP/1.1 server answering fixed routes (path without query -> status, body) and
/// recording request targets.
pub struct Server {
    pub addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(routes: &[(&str, u16, String)]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let routes: BTreeMap<String, (u16, String)> = routes
            .iter()
            .map(|(p, s, b)| ((*p).to_owned(), (*s, b.clone())))
            .collect();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&targets);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                }
                let path = target.split('?').next().unwrap_or_default().to_owned();
                seen.lock().unwrap().push(target);
                let (status, body) = routes
                    .get(&path)
                    .cloned()
                    .unwrap_or((404, r#"{"message":"Not Found"}"#.to_owned()));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Server { addr, targets }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// A loopback port with nothing listening.
/// A loopback address nothing listens on. On 127.0.0.3, where no test server binds: a
/// port freed on 127.0.0.1 could be taken by another test's listener before the probe
/// (a test once saw its "reachable" endpoint answer another test's "closed" probe).
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.3:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// The issuer's JWKS (RSA key `rsa-1` of custody-guard's test data).
pub fn jwks() -> String {
    let rsa: Value = serde_json::from_str(&read_guard_data("rsa-issuer.jwk.json")).unwrap();
    json!({"keys": [{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": rsa["n"], "e": rsa["e"]}]})
        .to_string()
}

/// GitHub-shaped claims of a production deploy.
pub fn github_claims() -> Value {
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
        "iss": ISSUER,
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 300,
    })
}

/// Signs `claims` with the issuer's RSA key (or the attacker's, for forgeries).
pub fn sign(claims: &Value, attacker: bool) -> String {
    let pem = read_guard_data(if attacker {
        "rsa-attacker.key.pem"
    } else {
        "rsa-issuer.key.pem"
    });
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub const CLEAN_STATUS: &str = "Name:\trunner-guard\nUid:\t1001\t1001\t1001\t1001\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";

/// A temporary directory holding the fake root (`root/`), the tier model and outputs.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let s = Sandbox {
            dir: tempfile::tempdir().unwrap(),
        };
        s.file("/proc/self/status", CLEAN_STATUS);
        s
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A file below the fake root.
    pub fn file(&self, absolute: &str, content: &str) {
        let path = self.root().join(absolute.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the example tier model with its URLs pointed at `jwks` and `api`.
    pub fn model(&self, jwks: &Server, api: &Server) -> PathBuf {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../custody-guard/examples/tiers.yaml"),
        )
        .unwrap()
        .replace(
            "jwks_url: https://token.actions.githubusercontent.com/.well-known/jwks",
            &format!("jwks_url: {}", jwks.url("/.well-known/jwks")),
        )
        .replace(
            "api_url: https://api.github.com",
            &format!("api_url: {}", api.url("")),
        )
        .replace(
            "jwks_url: https://gitlab.com/oauth/discovery/keys",
            &format!("jwks_url: {}", jwks.url("/.well-known/jwks")),
        )
        .replace(
            "api_url: https://gitlab.com",
            &format!("api_url: {}", api.url("")),
        );
        let path = self.path("tiers.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// What a run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The check with `id` in a `--format json` run.
    pub fn check(&self, id: &str) -> Value {
        self.json()["report"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check `{id}`:\n{}", self.stdout))
    }
}

/// Runs the binary with exactly `env` (the process environment is cleared) and `args`.
pub fn run(env: &[(&str, String)], args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_runner-guard"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}
