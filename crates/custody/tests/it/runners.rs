//! `custody runners audit` through the binary, against GitHub- and GitLab-shaped servers on
//! 127.0.0.1 answering the fixtures in `crates/custody-guard/tests/data/audit` (shapes and
//! sources in that directory's README): a clean configuration, a runner in two tiers, a
//! shared production runner, an unprotected production runner, a non-ephemeral one, and the
//! errors (no token, a token refused, a non-loopback plain-http URL). The admin tokens never
//! reach stdout or stderr.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use custody_test_support::http::Server;
use serde_json::Value;

const GITHUB_TOKEN: &str = "ghp_admin_token_secret_value_0001";
const GITLAB_TOKEN: &str = "glpat-admin-token-secret-value-0002";

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../custody-guard/tests/data/audit")
            .join(name),
    )
    .unwrap()
}

/// A request as the server saw it: target and lowercased headers.
type Seen = (String, BTreeMap<String, String>);

fn seen(server: &Server) -> Vec<Seen> {
    server
        .requests()
        .into_iter()
        .map(|r| (r.target, r.headers))
        .collect()
}

/// The fixtures as routes; `edit` changes one before serving.
struct Platforms {
    github: BTreeMap<String, Value>,
    gitlab: BTreeMap<String, Value>,
}

impl Platforms {
    fn clean() -> Platforms {
        let gh = |p: &str, f: &str| (p.to_owned(), serde_json::from_str(&data(f)).unwrap());
        let org = "/orgs/acme-health/actions/runner-groups";
        let github = BTreeMap::from([
            gh(org, "github-runner-groups.json"),
            gh(&format!("{org}/1/runners"), "github-runners-default.json"),
            gh(&format!("{org}/2/runners"), "github-runners-staging.json"),
            gh(
                &format!("{org}/4/runners"),
                "github-runners-production.json",
            ),
        ]);
        let gitlab = BTreeMap::from([
            gh("/api/v4/runners/all", "gitlab-runners-all.json"),
            gh("/api/v4/runners/2001", "gitlab-runner-2001.json"),
            gh("/api/v4/runners/2002", "gitlab-runner-2002.json"),
            gh("/api/v4/runners/3001", "gitlab-runner-3001.json"),
        ]);
        Platforms { github, gitlab }
    }

    fn serve(map: &BTreeMap<String, Value>) -> Server {
        Server::start(
            &map.iter()
                .map(|(k, v)| (k.clone(), 200, v.to_string()))
                .collect::<Vec<_>>(),
        )
    }
}

struct Audit {
    dir: tempfile::TempDir,
    github: Server,
    gitlab: Server,
}

impl Audit {
    fn new(p: &Platforms) -> Audit {
        Self::with_model(p, |m| m.to_owned())
    }

    /// The example tier model, edited by `edit`.
    fn with_model(p: &Platforms, edit: impl Fn(&str) -> String) -> Audit {
        let dir = tempfile::tempdir().unwrap();
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../custody-guard/examples/tiers.yaml"),
        )
        .unwrap();
        std::fs::write(dir.path().join("tiers.yaml"), edit(&example)).unwrap();
        Audit {
            dir,
            github: Platforms::serve(&p.github),
            gitlab: Platforms::serve(&p.gitlab),
        }
    }

    fn model(&self) -> PathBuf {
        self.dir.path().join("tiers.yaml")
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_custody"));
        c.env_clear()
            .env("NO_COLOR", "1")
            .env("CUSTODY_GITHUB_ADMIN_TOKEN", GITHUB_TOKEN)
            .env("CUSTODY_GITLAB_ADMIN_TOKEN", GITLAB_TOKEN)
            .args(["runners", "audit", "--tier-model"])
            .arg(self.model());
        // The loopback servers, unless the test points a platform elsewhere.
        if !extra.contains(&"--github-api-url") {
            c.args(["--github-api-url", &self.github.url("")]);
        }
        if !extra.contains(&"--gitlab-api-url") {
            c.args(["--gitlab-api-url", &self.gitlab.url("")]);
        }
        c.args(extra);
        c
    }

    fn run(&self, extra: &[&str]) -> (i32, String, String) {
        let out: Output = self.command(extra).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        for t in [GITHUB_TOKEN, GITLAB_TOKEN] {
            assert!(
                !stdout.contains(t) && !stderr.contains(t),
                "an admin token was printed"
            );
        }
        (out.status.code().unwrap(), stdout, stderr)
    }

    fn json(&self) -> (i32, Value) {
        let (code, stdout, stderr) = self.run(&["--format", "json"]);
        let v = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
        (code, v)
    }
}

fn findings(v: &Value) -> Vec<(String, String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
                f["platform"].as_str().unwrap().to_owned(),
                f["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn clean_configuration_passes_and_the_tokens_go_to_their_hosts_only() {
    let a = Audit::new(&Platforms::clean());
    let (code, v) = a.json();
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["outcome"], "clean");
    assert!(findings(&v).is_empty(), "{:?}", findings(&v));
    let tiers: Vec<(u64, String)> = v["runners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                r["tiers"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tiers,
        [
            (21, "staging".into()),
            (17, "production".into()),
            (18, "production".into()),
            (2001, "staging".into()),
            (2002, "staging".into()),
            (3001, "production".into())
        ]
    );
    let gh = seen(&a.github);
    assert!(
        gh.iter()
            .any(|(t, _)| t.starts_with("/orgs/acme-health/actions/runner-groups?"))
    );
    assert!(gh.iter().any(|(t, _)| t.contains("per_page=100")));
    assert!(
        gh.iter()
            .all(|(_, h)| h["authorization"] == format!("Bearer {GITHUB_TOKEN}"))
    );
    assert!(gh.iter().all(|(_, h)| !h.contains_key("private-token")));
    let gl = seen(&a.gitlab);
    assert!(
        gl.iter()
            .any(|(t, _)| t.starts_with("/api/v4/runners/all?"))
    );
    assert!(
        gl.iter()
            .any(|(t, _)| t.split('?').next() == Some("/api/v4/runners/3001")),
        "{gl:?}"
    );
    assert!(gl.iter().all(|(_, h)| h["private-token"] == GITLAB_TOKEN));
    assert!(gl.iter().all(|(_, h)| !h.contains_key("authorization")));

    // The table form says the same.
    let (code, stdout, _) = a.run(&[]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("runner audit: CLEAN (6 runner(s), 0 finding(s))"),
        "{stdout}"
    );
}

#[test]
fn runner_in_two_tiers_is_flagged() {
    // Tiers that select runners by label / tag only (valid: the sets differ), and one runner
    // of each platform carrying both tiers' labels.
    let by_label = |m: &str| {
        m.lines()
            .filter(|l| {
                !l.trim_start().starts_with("groups:") && !l.trim_start().starts_with("ids:")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut p = Platforms::clean();
    let prod = p
        .github
        .get_mut("/orgs/acme-health/actions/runner-groups/4/runners")
        .unwrap();
    prod["runners"][0]["labels"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": 22, "name": "custody-staging", "type": "custom"}));
    p.gitlab.get_mut("/api/v4/runners/3001").unwrap()["tag_list"] =
        serde_json::json!(["production", "staging", "linux"]);
    let a = Audit::with_model(&p, by_label);
    let (code, v) = a.json();
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["outcome"], "findings");
    let f = findings(&v);
    assert!(
        f.contains(&(
            "fail".into(),
            "multi-tier".into(),
            "github".into(),
            "runner 17 `prod-runner-01` (group `production-runners`)".into()
        )),
        "{f:?}"
    );
    assert!(
        f.contains(&(
            "fail".into(),
            "multi-tier".into(),
            "gitlab".into(),
            "runner 3001 `prod-runner-01`".into()
        )),
        "{f:?}"
    );
    let multi: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "multi-tier")
        .collect();
    assert!(
        multi
            .iter()
            .all(|f| f["tiers"] == serde_json::json!(["production", "staging"]))
    );
    // Twin: the same model with the fixtures untouched has no multi-tier runner.
    let (code, v) = Audit::with_model(&Platforms::clean(), by_label).json();
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn shared_production_runner_is_flagged() {
    let mut p = Platforms::clean();
    let groups = p
        .github
        .get_mut("/orgs/acme-health/actions/runner-groups")
        .unwrap();
    groups["runner_groups"][2]["visibility"] = "all".into();
    groups["runner_groups"][2]["allows_public_repositories"] = true.into();
    let prod = p.gitlab.get_mut("/api/v4/runners/3001").unwrap();
    prod["runner_type"] = "instance_type".into();
    prod["is_shared"] = true.into();
    let (code, v) = Audit::new(&p).json();
    assert_eq!(code, 1, "{v:#}");
    let shared: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "shared")
        .collect();
    // Both GitHub production runners of the group, and the GitLab one.
    assert_eq!(shared.len(), 3, "{shared:#?}");
    let gh = shared[0]["message"].as_str().unwrap();
    assert!(
        gh.contains("visible to all repositories of `acme-health`")
            && gh.contains("public repositories"),
        "{gh}"
    );
    let gl = shared[2]["message"].as_str().unwrap();
    assert!(gl.contains("an instance runner"), "{gl}");
    assert!(
        shared
            .iter()
            .all(|f| f["severity"] == "fail" && f["tiers"] == serde_json::json!(["production"]))
    );

    // Twin: the same settings on the staging group and runners are not findings.
    let mut p = Platforms::clean();
    p.github
        .get_mut("/orgs/acme-health/actions/runner-groups")
        .unwrap()["runner_groups"][1]["visibility"] = "all".into();
    p.gitlab.get_mut("/api/v4/runners/2001").unwrap()["runner_type"] = "instance_type".into();
    let (code, v) = Audit::new(&p).json();
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn unprotected_production_runner_is_flagged() {
    let mut p = Platforms::clean();
    let groups = p
        .github
        .get_mut("/orgs/acme-health/actions/runner-groups")
        .unwrap();
    groups["runner_groups"][2]["restricted_to_workflows"] = false.into();
    let prod = p.gitlab.get_mut("/api/v4/runners/3001").unwrap();
    prod["access_level"] = "not_protected".into();
    prod["run_untagged"] = true.into();
    let (code, stdout, _) = Audit::new(&p).run(&[]);
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("FAIL unprotected"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("github runner 17")
            && lines[0].contains("not restricted to selected workflows"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("gitlab runner 3001")
            && lines[2].contains("not_protected")
            && lines[2].contains("untagged"),
        "{stdout}"
    );
    // Taking untagged jobs also makes it reachable from the development tier, whose jobs
    // carry no tags.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL multi-tier gitlab runner 3001")
                && l.contains("tier(s) `development` carry no tags")),
        "{stdout}"
    );
}

#[test]
fn non_ephemeral_production_runner_is_flagged() {
    let mut p = Platforms::clean();
    p.github
        .get_mut("/orgs/acme-health/actions/runner-groups/4/runners")
        .unwrap()["runners"][1]["ephemeral"] = false.into();
    let (code, v) = Audit::new(&p).json();
    assert_eq!(code, 1);
    assert_eq!(
        findings(&v),
        [(
            "fail".into(),
            "not-ephemeral".into(),
            "github".into(),
            "runner 18 `prod-runner-02` (group `production-runners`)".into()
        )]
    );
}

#[test]
fn one_platform_at_a_time_and_errors_have_their_codes() {
    let p = Platforms::clean();
    let a = Audit::new(&p);
    let (code, v) = {
        let (code, stdout, _) = a.run(&["--platform", "gitlab", "--format", "json"]);
        (code, serde_json::from_str::<Value>(&stdout).unwrap())
    };
    assert_eq!(code, 0);
    assert!(v["inventory"]["github"].is_null() && v["inventory"]["gitlab"].is_array());
    assert!(seen(&a.github).is_empty(), "GitHub was not asked");

    // No token: usage error, nothing asked.
    let out = a
        .command(&[])
        .env_remove("CUSTODY_GITLAB_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CUSTODY_GITLAB_ADMIN_TOKEN is not set"));

    // A token the platform refuses: exit 5, with a hint and without the token.
    let refused = [(
        "/orgs/acme-health/actions/runner-groups",
        403,
        r#"{"message":"Must have admin rights to Repository.","documentation_url":"https://docs.github.com/rest"}"#.to_owned(),
    )];
    let denied = Server::start(&refused);
    let (code, _, stderr) = a.run(&["--platform", "github", "--github-api-url", &denied.url("")]);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("HTTP 403") && stderr.contains("admin:org"),
        "{stderr}"
    );

    // Nothing listening: exit 5.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (code, _, stderr) = a.run(&[
        "--platform",
        "gitlab",
        "--gitlab-api-url",
        &format!("http://{closed}"),
    ]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains(&closed.to_string()), "{stderr}");

    // Plain http to a non-loopback host is refused before any request.
    let (code, _, stderr) = a.run(&[
        "--platform",
        "github",
        "--github-api-url",
        "http://api.example.com",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("must use https"), "{stderr}");
}
