//! The `custody-gate` binary: the configuration and secrets resolved from the file and
//! the environment, and `gitlab-approve` against a GitLab-shaped server on 127.0.0.1
//! that records the approval call. (The service's paths are in `github.rs` and
//! `gitlab.rs`; the demo runs it as `custody gate serve`.)

use std::path::PathBuf;
use std::process::{Command, Output};

use custody_evidence::SigningKey;
use custody_test_support::http::Server;
use serde_json::json;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate();
        std::fs::write(dir.path().join("signer.key.pub"), key.public().pem()).unwrap();
        Self { dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_custody-gate"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("CUSTODY_STORE")
            .env_remove("CUSTODY_SIGNING_KEY")
            .env_remove("CUSTODY_SIGNING_KEY_PEM")
            .env("NO_COLOR", "1");
        for var in [
            "CUSTODY_GATE_LISTEN",
            "CUSTODY_GATE_CONFIG",
            "CUSTODY_GATE_GITHUB_PRIVATE_KEY",
            "CUSTODY_GATE_GITHUB_WEBHOOK_SECRET",
            "CUSTODY_GATE_GITLAB_TOKEN",
            "CUSTODY_GATE_GITLAB_WEBHOOK_TOKEN",
        ] {
            c.env_remove(var);
        }
        c
    }
    /// Runs and expects `code`; returns stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out: Output = self.cmd(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        stderr
    }
}

const TOKEN: &str = "glpat-gate-account-secret-0003";

fn config(e: &Env, extra: &str) {
    if !e.path("gate.key").exists() {
        let key = SigningKey::generate();
        std::fs::write(e.path("gate.key"), key.to_pkcs8_pem().unwrap()).unwrap();
    }
    std::fs::write(
        e.path("gate.yaml"),
        format!(
            "store: store\ntrustedKeys: [signer.key.pub]\nrecord:\n  signingKey: gate.key\nattempts: 1\n{extra}"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(e.path("store")).unwrap();
}

/// A GitLab answering one deployment (`status`) and recording approvals.
fn gitlab(status: &'static str) -> Server {
    Server::handle(move |req| {
        if req.headers.get("private-token").map(String::as_str) != Some(TOKEN) {
            return (401, r#"{"message":"401 Unauthorized"}"#.into());
        }
        match (req.method.as_str(), req.path()) {
            ("GET", "/api/v4/projects/acme%2Fapp/deployments/17") => (
                200,
                json!({"id": 17, "iid": 2, "ref": "main", "sha": "0123456789abcdef0123456789abcdef01234567",
                       "status": status, "environment": {"id": 9, "name": "production"},
                       "deployable": {"id": 664, "status": "manual", "pipeline": {"id": 502}},
                       "approvals": []})
                .to_string(),
            ),
            ("POST", "/api/v4/projects/acme%2Fapp/deployments/17/approval") => {
                (201, json!({"user": {"username": "custody-gate"}, "status": "rejected"}).to_string())
            }
            _ => (404, r#"{"message":"404 Not Found"}"#.into()),
        }
    })
}

#[test]
fn gitlab_approve_rejects_a_commit_without_evidence_and_says_so() {
    let e = Env::new();
    let server = gitlab("blocked");
    config(
        &e,
        &format!("gitlab:\n  apiUrl: {}\n", server.url("/api/v4")),
    );
    let out = e
        .cmd(&[
            "gitlab-approve",
            "--config",
            "gate.yaml",
            "--project",
            "acme/app",
            "--deployment",
            "17",
        ])
        .env("CUSTODY_GATE_GITLAB_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "No verified evidence in the store names an artifact built from commit 0123456789abcdef"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("custody-gate: deployment 17 rejected"),
        "{stderr}"
    );
    let approval = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the approval call");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&approval.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert!(
        form.contains(&("status".into(), "rejected".into())),
        "{form:?}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains(TOKEN));
    }
}

#[test]
fn gitlab_approve_refuses_a_deployment_that_is_not_waiting() {
    let e = Env::new();
    let server = gitlab("success");
    config(
        &e,
        &format!("gitlab:\n  apiUrl: {}\n", server.url("/api/v4")),
    );
    let stderr = {
        let out = e
            .cmd(&[
                "gitlab-approve",
                "--config",
                "gate.yaml",
                "--project",
                "acme/app",
                "--deployment",
                "17",
            ])
            .env("CUSTODY_GATE_GITLAB_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(
        stderr.contains("deployment 17 is success, not blocked"),
        "{stderr}"
    );
    assert!(
        server.requests().iter().all(|r| r.method == "GET"),
        "nothing approved"
    );
}

#[test]
fn serve_refuses_to_start_without_its_secrets_and_names_them() {
    let e = Env::new();
    std::fs::write(e.path("app.pem"), custody_test_support::oidc::app_key_pem()).unwrap();
    config(&e, "github:\n  appId: 1\n  privateKeyFile: app.pem\n");
    let stderr = e.fails(
        2,
        &["serve", "--config", "gate.yaml", "--listen", "127.0.0.1:0"],
    );
    assert!(
        stderr.contains("CUSTODY_GATE_GITHUB_WEBHOOK_SECRET is not set"),
        "{stderr}"
    );
    // neither platform configured
    config(&e, "");
    let stderr = e.fails(2, &["serve", "--config", "gate.yaml"]);
    assert!(stderr.contains("configure `github`"), "{stderr}");
    // an unknown key in the file (a secret pasted in by mistake) is refused, not echoed
    std::fs::write(
        e.path("bad.yaml"),
        "store: store\nwebhookSecret: hunter2-secret\n",
    )
    .unwrap();
    let stderr = e.fails(2, &["serve", "--config", "bad.yaml"]);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("webhookSecret"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2-secret"), "{stderr}");
    // a key that is not an RSA key
    std::fs::write(e.path("app.pem"), "not a key").unwrap();
    config(&e, "github:\n  appId: 1\n  privateKeyFile: app.pem\n");
    let out = e
        .cmd(&["serve", "--config", "gate.yaml"])
        .env("CUSTODY_GATE_GITHUB_WEBHOOK_SECRET", "s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an RSA private key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
