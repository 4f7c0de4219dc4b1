//! Tier model loading and validation: the example loads, and each kind of mistake is an error
//! that names the file, the field and the problem.

use custody_guard::TierModel;
use custody_guard::tier::RunnerEnvironment;

fn example_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiers.yaml")
}

fn example() -> String {
    std::fs::read_to_string(example_path()).unwrap()
}

/// Loads `text` and returns the error message; panics if it loads.
fn error_of(text: &str) -> String {
    match TierModel::from_yaml(text, "ci/tiers.yaml") {
        Ok(_) => panic!("the model should have been refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn example_model_loads() {
    let model = TierModel::load(&example_path()).unwrap();
    assert_eq!(
        model.tiers.keys().collect::<Vec<_>>(),
        ["development", "production", "staging"]
    );
    let prod = model.tier("production").unwrap();
    assert!(prod.production && prod.require_verified && prod.require_ephemeral);
    assert!(
        prod.hardening.no_root
            && prod.hardening.metadata_unreachable
            && prod.hardening.require_no_new_privs
    );
    assert_eq!(prod.runner_environment, Some(RunnerEnvironment::SelfHosted));
    let dev = model.tier("development").unwrap();
    assert!(
        !dev.require_verified && !dev.hardening.no_root && dev.hardening.no_ambient_credentials
    );
    assert_eq!(
        model.tier_for_environment("review/feature-7").unwrap().name,
        "development"
    );
    assert_eq!(
        model.trust.gitlab.as_ref().unwrap().token_variable,
        "CUSTODY_ID_TOKEN"
    );
    assert_eq!(
        model.local.metadata_endpoint.to_string(),
        "169.254.169.254:80"
    );
    assert!(model.source().ends_with("examples/tiers.yaml"));
}

#[test]
fn runner_in_two_tiers_is_an_error() {
    let text = example().replace("groups: [staging-runners]", "groups: [production-runners]");
    let err = error_of(&text);
    // The line of the staging tier's `groups:`, the first of the two in the file.
    let line = text
        .lines()
        .position(|l| l.contains("groups: [production-runners]"))
        .unwrap()
        + 1;
    assert!(
        err.starts_with(&format!(
            "ci/tiers.yaml:{line}: `tiers.staging.runners.github.groups`"
        )),
        "{err}"
    );
    assert!(
        err.contains("`production-runners` is also allowed in tier `production`"),
        "{err}"
    );

    let text = example().replace("ids: [2001, 2002]", "ids: [2001, 3001]");
    let err = error_of(&text);
    assert!(
        err.contains("runners.gitlab.ids") && err.contains("runner id `3001`"),
        "{err}"
    );

    // Twin: distinct runners load.
    assert!(TierModel::from_yaml(&example(), "ci/tiers.yaml").is_ok());
}

#[test]
fn tier_admitting_every_self_hosted_runner_is_an_error() {
    let text = example().replace(
        "    runners:\n      github:\n        groups: [staging-runners]\n        labels: [custody-staging]\n",
        "    runners:\n",
    );
    let err = error_of(&text);
    assert!(
        err.contains("tiers.staging.runners.github") && err.contains("no runners listed"),
        "{err}"
    );
}

#[test]
fn unknown_tier_in_environments_is_an_error() {
    let text = example().replace("  staging: staging\n", "  staging: qa\n");
    let err = error_of(&text);
    assert!(err.contains("`environments.staging`"), "{err}");
    assert!(
        err.contains("unknown tier `qa`: known tiers are development, production, staging"),
        "{err}"
    );
    let text = example().replace("default_tier: development", "default_tier: dev");
    assert!(error_of(&text).contains("`default_tier`: unknown tier `dev`"));
}

#[test]
fn bad_yaml_is_an_error_naming_the_file_and_place() {
    let err = error_of("version: 1\ntrust: [unclosed\n");
    assert!(
        err.starts_with("ci/tiers.yaml:2: not a valid tier model:"),
        "{err}"
    );
    assert!(err.contains("line"), "{err}");
}

#[test]
fn unknown_and_missing_fields_are_errors_naming_the_field() {
    let err = error_of(&example().replace("require_ephemeral: true", "require_ephemerall: true"));
    assert!(err.contains("unknown field `require_ephemerall`"), "{err}");
    assert!(err.contains("tiers.production"), "{err}");
    let err = error_of(&example().replace("    repository_id: 712345678\n", ""));
    assert!(err.contains("repository_id"), "{err}");
}

#[test]
fn pinned_urls_must_be_https() {
    let text = example().replace(
        "api_url: https://api.github.com",
        "api_url: http://api.github.com",
    );
    let err = error_of(&text);
    assert!(
        err.contains("`trust.github.api_url`") && err.contains("must use https"),
        "{err}"
    );
}

#[test]
fn cloud_account_in_two_tiers_is_an_error() {
    let text = example().replace(
        r#"aws_accounts: ["222222222222"]"#,
        r#"aws_accounts: ["333333333333"]"#,
    );
    let err = error_of(&text);
    assert!(
        err.contains("AWS account `333333333333` also belongs to tier"),
        "{err}"
    );
}

#[test]
fn too_lenient_leeway_is_an_error() {
    let err = error_of(&example().replace("leeway_seconds: 60", "leeway_seconds: 3600"));
    assert!(err.contains("`trust.leeway_seconds`"), "{err}");
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let err = TierModel::load(std::path::Path::new("/nonexistent/tiers.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/tiers.yaml"), "{err}");
}
