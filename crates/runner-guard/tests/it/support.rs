//! Test support: a fake root, the example tier model pointed at the loopback servers, and
//! a runner for the real binary. The loopback servers and the test issuer's tokens are
//! custody-test-support's (`http`, `oidc`); the platform API answers are custody-guard's
//! test data (`../custody-guard/tests/data`).

use std::path::{Path, PathBuf};
use std::process::Command;

use custody_test_support::{Server, tiers};
use serde_json::Value;

pub const JOB_PATH: &str = "/repos/acme-health/claims-service/actions/jobs/399444496";
pub const ENV_PATH: &str = "/repos/acme-health/claims-service/environments/production";
/// Secrets handed to the guard; none may appear in any output or record.
pub const API_TOKEN: &str = "ghs_api_token_secret_value_1234";
pub const REQUEST_TOKEN: &str = "request-bearer-secret-5678";

pub fn guard_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../custody-guard/tests/data")
        .join(name)
}

pub fn read_guard_data(name: &str) -> String {
    std::fs::read_to_string(guard_data(name)).unwrap()
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
        let text = tiers::example(&jwks.url("/.well-known/jwks"), &api.url(""));
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
