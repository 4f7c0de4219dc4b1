//! The container definition stays true to the workspace: no container runtime runs in
//! the suite, so what can drift is checked here.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn the_dockerfile_builds_this_toolchain_and_serves_the_gate() {
    let docker = read("Dockerfile");
    let toolchain = read("../../rust-toolchain.toml");
    let channel = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("channel = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        docker.contains(&format!("FROM rust:{channel}-alpine AS build")),
        "the build stage must use rust-toolchain.toml's {channel}"
    );
    assert!(docker.contains("cargo build --locked --release -p custody-gate --bin custody-gate"));
    assert!(docker.contains(r#"ENTRYPOINT ["/usr/local/bin/custody-gate", "serve"]"#));
    assert!(docker.contains("USER 65532:65532"), "never root");
    // the variables it sets are the ones the service reads
    for var in ["CUSTODY_GATE_LISTEN", "CUSTODY_GATE_CONFIG"] {
        assert!(docker.contains(var));
    }
    assert_eq!(custody_gate::config::env::LISTEN, "CUSTODY_GATE_LISTEN");
    let gate = read("src/main.rs");
    assert!(gate.contains(r#"env = "CUSTODY_GATE_CONFIG""#));
    // no secret is baked in
    for secret in ["WEBHOOK_SECRET=", "PRIVATE_KEY=", "TOKEN=", "SIGNING_KEY="] {
        assert!(!docker.contains(secret), "{secret}");
    }
}

/// The README's `gate.yaml` is a configuration the service reads, and the variables the
/// README and docs/gate.md name are the ones it reads.
#[test]
fn the_readme_gate_yaml_is_a_valid_configuration() {
    let readme = read("../../README.md");
    let block = readme
        .split("<!-- gate: gate.yaml -->\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md marks its gate.yaml block");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.yaml");
    std::fs::write(&path, block).unwrap();
    let cfg = custody_gate::Config::read(&path).unwrap();
    assert_eq!(cfg.github.unwrap().app_id, 123_456);
    assert_eq!(cfg.await_approvals_seconds, Some(3600));
    assert!(cfg.record.unwrap().signing_key.is_some());
    use custody_gate::config::env;
    let docs = read("../../docs/gate.md");
    for var in [
        env::GITHUB_WEBHOOK_SECRET,
        env::GITLAB_TOKEN,
        env::GITLAB_WEBHOOK_TOKEN,
    ] {
        assert!(readme.contains(var), "README.md does not name {var}");
        assert!(docs.contains(var), "docs/gate.md does not name {var}");
    }
    assert!(docs.contains(env::GITHUB_PRIVATE_KEY));
    // docs/gate.md's full example parses too
    let example = docs
        .split("```yaml\n# gate.yaml")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/gate.md's gate.yaml example");
    std::fs::write(&path, format!("# gate.yaml{example}")).unwrap();
    let cfg = custody_gate::Config::read(&path).unwrap();
    assert_eq!(cfg.concurrency, Some(8));
}
