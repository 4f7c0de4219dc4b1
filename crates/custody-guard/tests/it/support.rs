//! Test support: a tiny HTTP server on loopback, token minting with test keys, fake roots.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn read_data(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: BTreeMap<String, String>,
}

/// A loopback HTTP/1.1 server answering fixed routes (path without query -> status, body).
pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
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
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let target = parts.next().unwrap_or_default().to_owned();
                let mut headers = BTreeMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let path = target.split('?').next().unwrap_or_default().to_owned();
                seen.lock().unwrap().push(Recorded {
                    method,
                    target,
                    headers,
                });
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
        Server { addr, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
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

/// Signing keys of the test issuer (RSA and P-256) and of an attacker.
pub struct Keys {
    pub rsa: EncodingKey,
    pub attacker_rsa: EncodingKey,
    pub ec: EncodingKey,
    pub ec_x: String,
    pub ec_y: String,
}

impl Keys {
    pub fn new() -> Keys {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use p256::pkcs8::EncodePrivateKey as _;
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(Default::default()).unwrap();
        let point = secret.public_key().to_encoded_point(false);
        Keys {
            rsa: EncodingKey::from_rsa_pem(read_data("rsa-issuer.key.pem").as_bytes()).unwrap(),
            attacker_rsa: EncodingKey::from_rsa_pem(read_data("rsa-attacker.key.pem").as_bytes())
                .unwrap(),
            ec: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            ec_x: URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            ec_y: URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }
    }

    /// The issuer's JWKS: RSA key `rsa-1`, EC key `ec-1`.
    pub fn jwks(&self) -> String {
        let rsa: Value = serde_json::from_str(&read_data("rsa-issuer.jwk.json")).unwrap();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": rsa["n"], "e": rsa["e"]},
            {"kty": "EC", "kid": "ec-1", "alg": "ES256", "use": "sig", "crv": "P-256", "x": self.ec_x, "y": self.ec_y},
        ]})
        .to_string()
    }

    /// The attacker's JWKS, using the issuer's kid.
    pub fn attacker_jwks() -> String {
        let rsa: Value = serde_json::from_str(&read_data("rsa-attacker.jwk.json")).unwrap();
        json!({"keys": [{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": rsa["n"], "e": rsa["e"]}]})
            .to_string()
    }
}

pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const AUDIENCE: &str = "custody-runner-guard";

/// GitHub-shaped claims for a production deploy (see GitHub's "About security hardening with
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
        "sha": "f83a356604ae3c5d03e1b46ef4d1ca77d64a90b0",
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

pub fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token with a hand-made header and no signature check possible (`alg: none` and friends).
pub fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A fake root: `proc/self/status` and whatever files are added.
pub struct FakeRoot {
    pub dir: tempfile::TempDir,
}

pub const CLEAN_STATUS: &str = "Name:\trunner-guard\nUmask:\t0022\nState:\tR (running)\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";

impl FakeRoot {
    pub fn new(status: &str) -> FakeRoot {
        let root = FakeRoot {
            dir: tempfile::tempdir().unwrap(),
        };
        root.file("/proc/self/status", status);
        root
    }

    pub fn clean() -> FakeRoot {
        Self::new(CLEAN_STATUS)
    }

    pub fn file(&self, absolute: &str, content: &str) {
        let path = self.path().join(absolute.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
