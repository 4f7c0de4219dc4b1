//! The verdicts through the binary: a pass, each failing branch with its `::error`
//! annotation, untrusted (exit 3), `--require-verified`, bad tier models (exit 2 naming file
//! and line), GitLab's dotenv report, table output, and one run on the real machine.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;

use custody_test_support::oidc::{AUDIENCE, ISSUER, Keys, github_claims, now, sign_rs256};
use custody_test_support::{Server, closed_port};
use serde_json::{Value, json};

use crate::support::{
    self, API_TOKEN, ENV_PATH, JOB_PATH, REQUEST_TOKEN, Run, Sandbox, read_guard_data,
};

/// A GitHub job: JWKS, platform API and token servers on loopback, a clean fake root.
pub struct GitHub {
    pub sandbox: Sandbox,
    pub jwks: Server,
    pub api: Server,
    pub token: Option<String>,
    /// Kept alive for the run: the token endpoint.
    _tokens: Option<Server>,
    pub env: Vec<(&'static str, String)>,
    pub args: Vec<String>,
}

impl GitHub {
    pub fn new(token: Option<String>) -> GitHub {
        Self::with_api(
            token,
            &read_guard_data("github-job.json"),
            &read_guard_data("github-environment.json"),
        )
    }

    pub fn with_api(token: Option<String>, job: &str, environment: &str) -> GitHub {
        let sandbox = Sandbox::new();
        let jwks = Server::start(&[("/.well-known/jwks", 200, Keys::rsa_jwks())]);
        let api = Server::start(&[
            (JOB_PATH, 200, job.to_owned()),
            (ENV_PATH, 200, environment.to_owned()),
        ]);
        let model = sandbox.model(&jwks, &api);
        let tokens = token
            .as_ref()
            .map(|t| Server::start(&[("/idtoken", 200, json!({"value": t}).to_string())]));
        let mut env = vec![
            ("GITHUB_ACTIONS", "true".to_owned()),
            ("GITHUB_TOKEN", API_TOKEN.to_owned()),
            ("HOME", "/home/runner".to_owned()),
            ("GITHUB_REPOSITORY", "acme-health/claims-service".to_owned()),
            ("GITHUB_RUN_ID", "29679449".to_owned()),
            ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
            ("GITHUB_JOB", "deploy".to_owned()),
            (
                "GITHUB_OUTPUT",
                sandbox.path("output").display().to_string(),
            ),
            (
                "GITHUB_STEP_SUMMARY",
                sandbox.path("summary.md").display().to_string(),
            ),
        ];
        if let Some(t) = &tokens {
            env.push((
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                t.url("/idtoken?api-version=2.0"),
            ));
            env.push(("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()));
        }
        let args = vec![
            "--tier-model".to_owned(),
            model.display().to_string(),
            "--root".to_owned(),
            sandbox.root().display().to_string(),
            "--metadata-endpoint".to_owned(),
            closed_port().to_string(),
            "--format".to_owned(),
            "json".to_owned(),
        ];
        GitHub {
            sandbox,
            jwks,
            api,
            token,
            _tokens: tokens,
            env,
            args,
        }
    }

    pub fn production() -> GitHub {
        Self::new(Some(sign_rs256(&github_claims(ISSUER), false)))
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }

    pub fn var(mut self, k: &'static str, v: &str) -> Self {
        self.env.retain(|(n, _)| *n != k);
        self.env.push((k, v.to_owned()));
        self
    }

    pub fn run(&self) -> Run {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let run = support::run(&self.env, &args);
        // Whatever happened, no secret the job holds reaches stdout or stderr.
        let mut secrets = vec![API_TOKEN.to_owned(), REQUEST_TOKEN.to_owned()];
        secrets.extend(self.token.clone());
        for s in &secrets {
            assert!(
                !run.stdout.contains(s.as_str()),
                "secret on stdout: {}",
                run.stdout
            );
            assert!(
                !run.stderr.contains(s.as_str()),
                "secret on stderr: {}",
                run.stderr
            );
        }
        run
    }

    pub fn outputs(&self) -> String {
        std::fs::read_to_string(self.sandbox.path("output")).unwrap_or_default()
    }

    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.sandbox.path("summary.md")).unwrap_or_default()
    }
}

#[test]
fn production_job_on_a_production_runner_passes() {
    let gh = GitHub::production();
    let run = gh.run();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    assert_eq!(v["report"]["outcome"], "pass");
    assert_eq!(v["report"]["tier"], "production");
    assert_eq!(v["report"]["requireVerified"], true);
    assert_eq!(v["evidence"]["state"], "notConfigured");
    assert_eq!(run.check("runner")["source"], "platform-api");
    assert_eq!(run.check("oidc-token")["source"], "verified-token");
    assert!(!run.stderr.contains("::error"), "{}", run.stderr);
    let outputs = gh.outputs();
    assert!(outputs.contains("tier=production\n"), "{outputs}");
    assert!(outputs.contains("outcome=pass\n"), "{outputs}");
    assert!(outputs.contains("exit-code=0\n"), "{outputs}");
    let summary = gh.summary();
    assert!(summary.contains("### runner-guard: PASS"), "{summary}");
    assert!(
        summary.contains("| runner | pass | platform-api |"),
        "{summary}"
    );
    // The API was asked about the job the verified token names.
    assert!(
        gh.api.targets().iter().any(|t| t == JOB_PATH),
        "{:?}",
        gh.api.targets()
    );
    assert_eq!(gh.jwks.targets(), ["/.well-known/jwks"]);
}

/// A failing branch: exit 1, the check fails, and GitHub gets an annotation for it.
fn fails(gh: &GitHub, check: &str, reason: &str) -> Run {
    let run = gh.run();
    assert_eq!(run.code, 1, "{check}: {}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["report"]["outcome"], "fail", "{check}");
    let c = run.check(check);
    assert_eq!(c["status"], "fail", "{check}: {c}");
    assert!(
        c["reason"].as_str().unwrap().contains(reason),
        "{check}: {}",
        c["reason"]
    );
    assert!(
        run.stderr
            .contains(&format!("::error::runner-guard {check}: ")),
        "{check}: {}",
        run.stderr
    );
    assert!(gh.outputs().contains("outcome=fail\n"));
    assert!(gh.summary().contains("### runner-guard: FAIL"));
    run
}

#[test]
fn runner_of_another_tier_fails() {
    let job = read_guard_data("github-job.json")
        .replace("production-runners", "staging-runners")
        .replace("custody-production", "custody-staging");
    let gh = GitHub::with_api(
        Some(sign_rs256(&github_claims(ISSUER), false)),
        &job,
        &read_guard_data("github-environment.json"),
    );
    fails(
        &gh,
        "runner",
        "runner group `staging-runners` is not allowed in tier `production`",
    );
    fails(&gh, "runner-single-tier", "`staging`");
}

#[test]
fn unprotected_ref_fails() {
    let mut claims = github_claims(ISSUER);
    claims["ref_protected"] = json!("false");
    fails(
        &GitHub::new(Some(sign_rs256(&claims, false))),
        "protected-ref",
        "the ref is protected: no",
    );
}

#[test]
fn forged_token_fails() {
    let gh = GitHub::new(Some(sign_rs256(&github_claims(ISSUER), true)));
    fails(&gh, "oidc-token", "does not verify");
    // A forged token never makes the guard ask the API about a job.
    assert!(gh.api.targets().is_empty(), "{:?}", gh.api.targets());
}

#[test]
fn token_of_another_repository_fails() {
    let mut claims = github_claims(ISSUER);
    claims["repository_id"] = json!("99");
    fails(
        &GitHub::new(Some(sign_rs256(&claims, false))),
        "repository",
        "pins 712345678",
    );
}

#[test]
fn unprotected_environment_fails() {
    let environment = r#"{"id": 161088068, "name": "production", "protection_rules": [], "deployment_branch_policy": null, "can_admins_bypass": true}"#;
    let gh = GitHub::with_api(
        Some(sign_rs256(&github_claims(ISSUER), false)),
        &read_guard_data("github-job.json"),
        environment,
    );
    fails(&gh, "protected-environment", "neither required reviewers");
}

#[test]
fn job_claiming_another_environment_than_its_token_fails() {
    let gh = GitHub::production().arg("--environment").arg("staging");
    fails(
        &gh,
        "tier",
        "claims environment `staging` but its verified token says `production`",
    );
}

#[test]
fn for_environment_conflicts_with_environment_and_tier() {
    for other in [["--environment", "production"], ["--tier", "production"]] {
        let gh = GitHub::production()
            .arg("--for-environment")
            .arg("production")
            .arg(other[0])
            .arg(other[1]);
        let run = gh.run();
        assert_eq!(run.code, 2, "{other:?}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("cannot be used with") && run.stderr.contains(other[0]),
            "{other:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "no verdict: {}", run.stdout);
        assert!(gh.outputs().is_empty(), "no step outputs: {}", gh.outputs());
    }
}

#[test]
fn local_hardening_violations_fail_production() {
    let gh = GitHub::production();
    gh.sandbox.file("/var/run/docker.sock", "");
    fails(&gh, "no-container-socket", "/var/run/docker.sock");

    let gh = GitHub::production();
    gh.sandbox.file(
        "/proc/self/status",
        &support::CLEAN_STATUS.replace("Uid:\t1001\t1001", "Uid:\t0\t0"),
    );
    fails(&gh, "no-root", "uid 0");

    let gh = GitHub::production();
    gh.sandbox.file(
        "/proc/self/status",
        &support::CLEAN_STATUS.replace("CapEff:\t0000000000000000", "CapEff:\t000001ffffffffff"),
    );
    fails(&gh, "no-privileged-capabilities", "privileged");

    let gh = GitHub::production().var("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEVALUE0001");
    let run = fails(&gh, "no-ambient-credentials", "$AWS_ACCESS_KEY_ID");
    assert!(
        !run.stdout.contains("AKIAEXAMPLEVALUE0001"),
        "names only, never values"
    );

    let gh = GitHub::production();
    gh.sandbox.file(
        "/home/runner/.aws/credentials",
        "[default]\naws_secret_access_key = SECRETVALUE\n",
    );
    let run = fails(
        &gh,
        "no-ambient-credentials",
        "/home/runner/.aws/credentials",
    );
    assert!(!run.stdout.contains("SECRETVALUE"));
}

#[test]
fn reachable_metadata_endpoint_fails_production() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let mut gh = GitHub::production();
    let i = gh
        .args
        .iter()
        .position(|a| a == "--metadata-endpoint")
        .unwrap();
    gh.args[i + 1] = addr.to_string();
    fails(&gh, "metadata-unreachable", "answers");
    let request = asked.join().unwrap();
    assert!(
        request.starts_with("GET / HTTP/1.1\r\n"),
        "only the root path: {request}"
    );
}

#[test]
fn no_token_on_production_is_untrusted() {
    // Variables that say all is well do not count on a production tier.
    let gh = GitHub::new(None)
        .arg("--environment")
        .arg("production")
        .var("GITHUB_REF_PROTECTED", "true")
        .var("GITHUB_REPOSITORY_ID", "712345678")
        .var("RUNNER_ENVIRONMENT", "self-hosted");
    let run = gh.run();
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["report"]["outcome"], "untrusted");
    let c = run.check("oidc-token");
    assert_eq!(
        (c["status"].as_str(), c["untrusted"].as_bool()),
        (Some("fail"), Some(true))
    );
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("ACTIONS_ID_TOKEN_REQUEST_URL")
    );
    assert_eq!(run.check("protected-ref")["untrusted"], true);
    assert!(gh.outputs().contains("outcome=untrusted\n"));
    assert!(gh.summary().contains("UNTRUSTED"));
    // Nothing was fetched without a token: no JWKS, no job lookup.
    assert!(gh.jwks.targets().is_empty() && gh.api.targets().is_empty());
}

/// A development job without a token: its tier accepts CI variables with a warning, unless
/// `--require-verified` is given.
fn development() -> GitHub {
    GitHub::new(None)
        .arg("--tier")
        .arg("development")
        .var("GITHUB_REPOSITORY_ID", "712345678")
        .var("RUNNER_ENVIRONMENT", "github-hosted")
}

#[test]
fn require_verified_turns_variables_into_untrusted() {
    let run = development().run();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["report"]["requireVerified"], false);
    assert_eq!(run.check("oidc-token")["status"], "warn");
    assert_eq!(
        run.check("runner-environment")["source"],
        "unverified-variable"
    );

    let run = development().arg("--require-verified").run();
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    assert_eq!(v["report"]["requireVerified"], true);
    let c = run.check("runner-environment");
    assert_eq!(
        (c["status"].as_str(), c["untrusted"].as_bool()),
        (Some("fail"), Some(true))
    );
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("rests only on a CI variable")
    );
}

#[test]
fn table_output_is_a_readable_table() {
    let mut gh = GitHub::production();
    let i = gh.args.iter().position(|a| a == "--format").unwrap();
    gh.args[i + 1] = "table".into();
    let run = gh.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = run.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("runner-guard: PASS (exit code 0) tier production"),
        "{first}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("check ") && l.contains("status") && l.ends_with("reason"))
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("runner ") && l.contains("pass") && l.contains("platform-api"))
    );
}

fn model_error(text: &str) -> Run {
    let sandbox = Sandbox::new();
    let path = sandbox.path("tiers.yaml");
    std::fs::write(&path, text).unwrap();
    let out = support::run(
        &[
            ("GITHUB_ACTIONS", "true".to_owned()),
            (
                "GITHUB_OUTPUT",
                sandbox.path("output").display().to_string(),
            ),
        ],
        &[
            "--tier-model",
            path.to_str().unwrap(),
            "--metadata-endpoint",
            &closed_port().to_string(),
        ],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.is_empty(),
        "no verdict without a model: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains(&format!("::error file={}::", path.display())),
        "{}",
        out.stderr
    );
    out
}

#[test]
fn bad_tier_models_are_configuration_errors_naming_file_and_line() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../custody-guard/examples/tiers.yaml"),
    )
    .unwrap();
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;

    // A runner group in two tiers.
    let text = example.replace("groups: [staging-runners]", "groups: [production-runners]");
    let run = model_error(&text);
    let line = line_of(&text, "groups: [production-runners]");
    assert!(
        run.stderr.contains(&format!(
            "tiers.yaml:{line}: `tiers.staging.runners.github.groups`: runner group `production-runners` is also allowed in tier `production`"
        )),
        "{}",
        run.stderr
    );

    // A typo in a field name: the parser's line.
    let text = example.replace("require_ephemeral: true", "require_ephemerall: true");
    let run = model_error(&text);
    let line = line_of(&text, "require_ephemerall");
    assert!(
        run.stderr
            .contains(&format!("tiers.yaml:{line}: not a valid tier model")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unknown field `require_ephemerall`"),
        "{}",
        run.stderr
    );

    // YAML that does not parse: `tiers.yaml:<line>:`.
    let run = model_error("version: 1\ntrust: {github: [\n");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap();
    let after = line.split("tiers.yaml:").nth(1).unwrap_or_default();
    assert!(
        after.starts_with(|c: char| c.is_ascii_digit()),
        "{}",
        run.stderr
    );

    // The twin: the example itself loads (exit code is the verdict's, not 2).
    let sandbox = Sandbox::new();
    let path = sandbox.path("tiers.yaml");
    std::fs::write(&path, &example).unwrap();
    let run = support::run(
        &[],
        &[
            "--tier-model",
            path.to_str().unwrap(),
            "--platform",
            "github",
            "--root",
            sandbox.root().to_str().unwrap(),
            "--metadata-endpoint",
            &closed_port().to_string(),
            "--tier",
            "development",
        ],
    );
    assert_ne!(run.code, 2, "{}", run.stderr);
}

#[test]
fn missing_tier_model_and_unknown_platform_are_usage_errors() {
    let run = support::run(
        &[("GITHUB_ACTIONS", "true".into())],
        &["--tier-model", "/nonexistent/tiers.yaml"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("/nonexistent/tiers.yaml"),
        "{}",
        run.stderr
    );

    let run = support::run(&[], &["--tier-model", "/nonexistent/tiers.yaml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("pass --platform github"),
        "{}",
        run.stderr
    );

    // Default path, from the environment variable too.
    let run = support::run(&[("GITHUB_ACTIONS", "true".into())], &[]);
    assert!(run.stderr.contains(".custody/tiers.yaml"), "{}", run.stderr);
    let run = support::run(
        &[
            ("GITHUB_ACTIONS", "true".into()),
            ("CUSTODY_TIER_MODEL", "/elsewhere/t.yaml".into()),
        ],
        &[],
    );
    assert!(run.stderr.contains("/elsewhere/t.yaml"), "{}", run.stderr);
}

#[test]
fn gitlab_production_job_passes_and_writes_a_dotenv_report() {
    let sandbox = Sandbox::new();
    let jwks = Server::start(&[("/.well-known/jwks", 200, Keys::rsa_jwks())]);
    let api = Server::start(&[("/api/v4/job", 200, read_guard_data("gitlab-job.json"))]);
    let model = sandbox.model(&jwks, &api);
    let now = now();
    let claims = json!({
        "project_id": "48123456", "project_path": "acme-health/claims-service",
        "pipeline_id": "1212", "job_id": "8", "ref": "main", "ref_type": "branch",
        "ref_protected": "true", "environment": "production", "environment_protected": "true",
        "deployment_tier": "production", "runner_id": 3001, "runner_environment": "self-hosted",
        "sha": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd", "iss": "https://gitlab.com",
        "iat": now - 5, "nbf": now - 10, "exp": now + 3600, "aud": AUDIENCE,
        "sub": "project_path:acme-health/claims-service:ref_type:branch:ref:main",
    });
    let token = sign_rs256(&claims, false);
    let dotenv = sandbox.path("runner-guard.env");
    let run = support::run(
        &[
            ("GITLAB_CI", "true".into()),
            ("CUSTODY_ID_TOKEN", token.clone()),
            ("CI_JOB_TOKEN", "glcbt-job-token-secret".into()),
            ("HOME", "/home/gitlab-runner".into()),
        ],
        &[
            "--tier-model",
            model.to_str().unwrap(),
            "--root",
            sandbox.root().to_str().unwrap(),
            "--metadata-endpoint",
            &closed_port().to_string(),
            "--format",
            "json",
            "--dotenv",
            dotenv.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["report"]["platform"], "gitlab");
    assert_eq!(run.check("runner")["status"], "pass");
    assert_eq!(
        std::fs::read_to_string(&dotenv).unwrap(),
        "CUSTODY_RUNNER_TIER=production\nCUSTODY_RUNNER_OUTCOME=pass\nCUSTODY_RUNNER_RECORD=\n"
    );
    for secret in [token.as_str(), "glcbt-job-token-secret"] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
    // No GitHub workflow commands off GitHub.
    assert!(!run.stderr.contains("::error"));
}

#[test]
fn real_machine_local_checks() {
    // The guard's local probes on this machine, as a development job with no CI signals.
    // Only structure is asserted: what this machine looks like is not the test's business.
    let sandbox = Sandbox::new();
    let model = sandbox.path("tiers.yaml");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../custody-guard/examples/tiers.yaml"),
        &model,
    )
    .unwrap();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let run = support::run(
        &[("HOME", home)],
        &[
            "--tier-model",
            model.to_str().unwrap(),
            "--platform",
            "github",
            "--tier",
            "development",
            "--metadata-endpoint",
            &closed_port().to_string(),
            "--format",
            "json",
        ],
    );
    eprintln!(
        "runner-guard on this machine (exit {}):\n{}",
        run.code, run.stdout
    );
    assert!([0, 1, 3].contains(&run.code), "{}", run.stderr);
    let v = run.json();
    let ids: Vec<&str> = v["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in [
        "tier",
        "oidc-token",
        "no-root",
        "no-container-socket",
        "no-ambient-credentials",
        "metadata-unreachable",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let local = &v["report"]["local"];
    assert!(local["containerRuntimeAccess"].is_array());
    assert!(local["ambientCredentialVariables"].is_array());
    assert_eq!(local["metadata"]["state"], "unreachable");
    if cfg!(target_os = "linux") {
        assert!(local["status"]["uid"].is_u64(), "{local}");
        assert!(local["status"]["capEff"].is_string(), "{local}");
    }
    let _: &Value = &v["report"]["tierModelDigest"];
}

/// Issue 15, item 7: the tier model comes from the repository; a key in it that the
/// error message quotes must not become a workflow command in the job's log.
#[test]
fn a_tier_model_cannot_write_workflow_commands() {
    let out = model_error("version: 1\n\"x\\n::error title=X::pwned ##[error]\": 1\n");
    assert!(out.stderr.contains("pwned"), "{}", out.stderr);
    for l in out
        .stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("::"))
    {
        assert!(l.starts_with("::error file="), "{l:?}\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("##["), "{}", out.stderr);
    assert!(!out.stdout.contains("##["));
}

/// Issue 18, as an attacker: the JWKS answers over HTTPS with a certificate from a CA
/// the attacker made, and the job's environment names that CA everywhere the other steps
/// look (`SSL_CERT_FILE`, `SSL_CERT_DIR`, `CUSTODY_CA_FILE`, `--ca-file`). The guard's
/// roots do not widen: no verified token, so production is not passed. Pinned in the
/// tier model (`trust.ca_certificates`), the same CA is trusted and the job passes.
#[test]
fn the_jwks_roots_cannot_be_widened_from_the_job() {
    use custody_test_support::{TestCa, TlsFront};
    let ca = TestCa::new("Attacker CA");
    let gh = GitHub::production();
    let front = TlsFront::start(&ca, gh.jwks.addr);
    let model = gh.sandbox.path("tiers.yaml");
    let plain = std::fs::read_to_string(&model).unwrap().replace(
        &gh.jwks.url("/.well-known/jwks"),
        &format!("{}/.well-known/jwks", front.url()),
    );
    std::fs::write(&model, &plain).unwrap();
    let ca_file = gh.sandbox.path("attacker-ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let ca_path = ca_file.display().to_string();
    let gh = gh
        .var("SSL_CERT_FILE", &ca_path)
        .var("SSL_CERT_DIR", &gh_dir(&ca_file))
        .var("CUSTODY_CA_FILE", &ca_path)
        .arg("--ca-file")
        .arg(&ca_path)
        .arg("--environment")
        .arg("production");
    let run = gh.run();
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_ne!(run.json()["report"]["outcome"], "pass");
    let token = run.check("oidc-token");
    assert_ne!(token["status"], "pass", "{token}");
    let reason = token["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not trusted") && reason.contains("trust.ca_certificates"),
        "{reason}"
    );

    // pinned in the tier model, the CA is trusted
    let pem: String = ca.ca_pem().lines().map(|l| format!("    {l}\n")).collect();
    let pinned = plain.replacen(
        "trust:\n",
        &format!("trust:\n  ca_certificates: |\n{pem}"),
        1,
    );
    std::fs::write(&model, pinned).unwrap();
    let run = gh.run();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.check("oidc-token")["source"], "verified-token");
}

fn gh_dir(file: &std::path::Path) -> String {
    file.parent().unwrap().display().to_string()
}
