//! End to end: signals collected from loopback servers (token, JWKS, platform API), a fake root
//! and a closed metadata port, judged against the example tier model.

use custody_guard::{
    Environment, GuardOptions, Outcome, Platform, Report, Request, Source, Status, TierModel,
};
use custody_test_support::oidc::{self, AUDIENCE, ISSUER, Keys, github_claims, sign};
use custody_test_support::{Server, closed_port, tiers};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::support::{CLEAN_STATUS, FakeRoot, read_data};

const JOB_PATH: &str = "/repos/acme-health/claims-service/actions/jobs/399444496";
const ENV_PATH: &str = "/repos/acme-health/claims-service/environments/production";
const API_TOKEN: &str = "ghs_api_token_secret_value";
const REQUEST_TOKEN: &str = "request-bearer-secret";

fn model(jwks: &Server, api: &Server) -> TierModel {
    let text = tiers::example(&jwks.url("/.well-known/jwks"), &api.url(""));
    TierModel::from_yaml(&text, "tiers.yaml").unwrap()
}

struct World {
    keys: Keys,
    jwks: Server,
    api: Server,
    root: FakeRoot,
}

impl World {
    fn github(job: &str) -> World {
        let keys = Keys::new();
        let jwks = Server::start(&[("/.well-known/jwks", 200, keys.jwks())]);
        let api = Server::start(&[
            (JOB_PATH, 200, job.to_owned()),
            (ENV_PATH, 200, read_data("github-environment.json")),
        ]);
        World {
            keys,
            jwks,
            api,
            root: FakeRoot::clean(),
        }
    }

    fn model(&self) -> TierModel {
        model(&self.jwks, &self.api)
    }

    /// Runs the guard on GitHub with a token server minting `token` (if any).
    fn run_github(
        &self,
        token: Option<&str>,
        extra: &[(&str, &str)],
        request_env: Option<&str>,
    ) -> Report {
        let request = Request {
            platform: Platform::GitHub,
            environment: request_env.map(str::to_owned),
            tier: None,
            for_environment: None,
            require_verified: false,
        };
        self.run_github_request(token, extra, request)
    }

    /// [`World::run_github`] with the whole request.
    fn run_github_request(
        &self,
        token: Option<&str>,
        extra: &[(&str, &str)],
        request: Request,
    ) -> Report {
        let tokens =
            token.map(|t| Server::start(&[("/idtoken", 200, json!({"value": t}).to_string())]));
        let mut vars: Vec<(String, String)> = vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("GITHUB_TOKEN".into(), API_TOKEN.into()),
            ("HOME".into(), "/home/runner".into()),
        ];
        if let Some(tokens) = &tokens {
            vars.push((
                "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
                tokens.url("/idtoken?api-version=2.0"),
            ));
            vars.push((
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
                REQUEST_TOKEN.into(),
            ));
        }
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let env = Environment::from_map(vars);
        assert_eq!(Platform::detect(&env), Some(Platform::GitHub));
        let opts = GuardOptions {
            request,
            env,
            root: self.root.path().to_owned(),
            metadata_endpoint: Some(closed_port()),
            now: None,
            use_platform_api: true,
        };
        custody_guard::run(&self.model(), &opts).unwrap()
    }

    fn token(&self, claims: &Value) -> String {
        sign(&self.keys.rsa, Algorithm::RS256, "rsa-1", claims)
    }
}

fn check<'r>(report: &'r Report, id: &str) -> &'r custody_guard::Check {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check `{id}` in {:#?}", report.checks))
}

fn assert_no_secrets(report: &Report, token: &str) {
    let shown = format!("{}\n{}\n{report:?}", report.to_json(), report.to_markdown());
    for secret in [token, API_TOKEN, REQUEST_TOKEN] {
        assert!(!shown.contains(secret), "a secret reached the report");
    }
}

#[test]
fn github_production_job_on_a_production_runner_passes() {
    let world = World::github(&read_data("github-job.json"));
    let token = world.token(&github_claims(ISSUER));
    let report = world.run_github(Some(&token), &[], None);
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.to_markdown());
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.tier.as_deref(), Some("production"));
    assert_eq!(check(&report, "tier").source, Source::VerifiedToken);
    assert_eq!(
        check(&report, "protected-ref").source,
        Source::VerifiedToken
    );
    let runner = check(&report, "runner");
    assert_eq!(
        (runner.status, runner.source),
        (Status::Pass, Source::PlatformApi)
    );
    assert!(
        runner.reason.contains("production-runners"),
        "{}",
        runner.reason
    );
    assert_eq!(check(&report, "protected-environment").status, Status::Pass);
    assert_eq!(check(&report, "ephemeral-runner").status, Status::Warn);
    for id in [
        "no-root",
        "no-privileged-capabilities",
        "no-container-socket",
        "no-ambient-credentials",
        "metadata-unreachable",
        "no-new-privs",
    ] {
        assert_eq!(check(&report, id).status, Status::Pass, "{id}");
    }
    assert!(!report.checks.iter().any(|c| c.id == "runner-single-tier"));
    // The API was asked about the job named by the verified token, with the API token.
    let requests = world.api.requests();
    let job = requests
        .iter()
        .find(|r| r.target == JOB_PATH)
        .expect("jobs API called");
    assert_eq!(job.headers["authorization"], format!("Bearer {API_TOKEN}"));
    assert_eq!(job.headers["x-github-api-version"], "2022-11-28");
    assert_no_secrets(&report, &token);
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["tierModelDigest"].as_str().unwrap().len(), 71);
    assert_eq!(json["checks"][0]["source"], "verified-token");
    assert_eq!(json["local"]["status"]["uid"], 1001);
    assert!(
        report
            .to_markdown()
            .contains("| runner | pass | platform-api |")
    );
}

#[test]
fn github_job_on_a_runner_of_another_tier_fails() {
    let job = read_data("github-job.json")
        .replace("production-runners", "staging-runners")
        .replace("custody-production", "custody-staging");
    let world = World::github(&job);
    let token = world.token(&github_claims(ISSUER));
    let report = world.run_github(Some(&token), &[], None);
    assert_eq!(report.outcome, Outcome::Fail);
    assert_eq!(report.exit_code, 1);
    let runner = check(&report, "runner");
    assert_eq!(runner.status, Status::Fail);
    assert!(
        runner
            .reason
            .contains("runner group `staging-runners` is not allowed in tier `production`"),
        "{}",
        runner.reason
    );
    let single = check(&report, "runner-single-tier");
    assert!(single.reason.contains("`staging`"), "{}", single.reason);
}

#[test]
fn forged_token_fails_rather_than_being_untrusted() {
    let world = World::github(&read_data("github-job.json"));
    let forged = sign(
        &world.keys.attacker_rsa,
        Algorithm::RS256,
        "rsa-1",
        &github_claims(ISSUER),
    );
    let report = world.run_github(Some(&forged), &[], Some("production"));
    let token = check(&report, "oidc-token");
    assert_eq!(token.status, Status::Fail);
    assert!(!token.untrusted);
    assert_eq!(report.outcome, Outcome::Fail);
    assert!(report.claims.is_none());
    assert_no_secrets(&report, &forged);
}

#[test]
fn token_of_another_repository_fails() {
    let world = World::github(&read_data("github-job.json"));
    let mut claims = github_claims(ISSUER);
    claims["repository_id"] = json!("999");
    let report = world.run_github(Some(&world.token(&claims)), &[], None);
    let repo = check(&report, "repository");
    assert_eq!(repo.status, Status::Fail);
    assert!(repo.reason.contains("pins 712345678"), "{}", repo.reason);
}

#[test]
fn unprotected_ref_fails_on_production() {
    let world = World::github(&read_data("github-job.json"));
    let mut claims = github_claims(ISSUER);
    claims["ref_protected"] = json!("false");
    let report = world.run_github(
        Some(&world.token(&claims)),
        &[("GITHUB_REF_PROTECTED", "true")],
        None,
    );
    let check = check(&report, "protected-ref");
    // The verified claim wins over the variable an earlier step could set.
    assert_eq!(
        (check.status, check.source),
        (Status::Fail, Source::VerifiedToken)
    );
}

#[test]
fn no_token_on_production_is_untrusted_and_variables_do_not_count() {
    let world = World::github(&read_data("github-job.json"));
    let report = world.run_github(
        None,
        &[
            ("GITHUB_REF_PROTECTED", "true"),
            ("RUNNER_ENVIRONMENT", "self-hosted"),
            ("GITHUB_REPOSITORY_ID", "712345678"),
        ],
        Some("production"),
    );
    assert_eq!(
        report.outcome,
        Outcome::Untrusted,
        "{}",
        report.to_markdown()
    );
    assert_eq!(report.exit_code, 3);
    let token = check(&report, "oidc-token");
    assert!(
        token.untrusted && token.reason.contains("id-token: write"),
        "{}",
        token.reason
    );
    let protected = check(&report, "protected-ref");
    assert_eq!(
        (protected.status, protected.source),
        (Status::Fail, Source::UnverifiedVariable)
    );
    assert!(protected.untrusted && protected.reason.contains("rests only on a CI variable"));
    assert!(
        world.api.requests().is_empty(),
        "no job id to ask about without a verified token"
    );
}

#[test]
fn no_token_on_development_falls_back_to_variables_with_a_warning() {
    let world = World::github(&read_data("github-job.json"));
    let report = world.run_github(
        None,
        &[
            ("RUNNER_ENVIRONMENT", "github-hosted"),
            ("GITHUB_REPOSITORY_ID", "712345678"),
        ],
        Some("development"),
    );
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.to_markdown());
    assert_eq!(check(&report, "oidc-token").status, Status::Warn);
    let env = check(&report, "runner-environment");
    assert_eq!(
        (env.status, env.source),
        (Status::Pass, Source::UnverifiedVariable)
    );
    // Twin: a variable that says the runner is self-hosted still fails the hosted-only tier.
    let report = world.run_github(
        None,
        &[
            ("RUNNER_ENVIRONMENT", "self-hosted"),
            ("GITHUB_REPOSITORY_ID", "712345678"),
        ],
        Some("development"),
    );
    assert_eq!(report.outcome, Outcome::Fail);
    assert_eq!(check(&report, "runner-environment").status, Status::Fail);
}

#[test]
fn job_claiming_another_environment_than_its_token_fails() {
    let world = World::github(&read_data("github-job.json"));
    let token = world.token(&github_claims(ISSUER));
    let report = world.run_github(Some(&token), &[], Some("development"));
    let tier = check(&report, "tier");
    assert_eq!(tier.status, Status::Fail);
    assert!(
        tier.reason.contains("verified token says `production`"),
        "{}",
        tier.reason
    );
    assert_eq!(report.outcome, Outcome::Fail);
}

/// A request for a job that gates `environment` without deploying to it.
fn gating(environment: &str) -> Request {
    Request {
        platform: Platform::GitHub,
        environment: None,
        tier: None,
        for_environment: Some(environment.to_owned()),
        require_verified: false,
    }
}

/// Claims of a job without an environment (a policy gate before the approval).
fn claims_without_environment() -> Value {
    let mut claims = github_claims(ISSUER);
    let object = claims.as_object_mut().unwrap();
    object.remove("environment");
    object.insert(
        "sub".into(),
        json!("repo:acme-health/claims-service:ref:refs/heads/main"),
    );
    claims
}

#[test]
fn job_gating_an_environment_is_judged_by_that_environments_tier() {
    let world = World::github(&read_data("github-job.json"));
    let token = world.token(&claims_without_environment());
    let report = world.run_github_request(Some(&token), &[], gating("production"));
    assert_eq!(report.tier.as_deref(), Some("production"));
    // The job's own environment stays none: it gates production, it does not deploy there.
    assert_eq!(report.environment, None);
    assert!(report.require_verified);
    let tier = check(&report, "tier");
    assert_eq!(
        (tier.status, tier.source),
        (Status::Pass, Source::VerifiedToken)
    );
    assert!(
        tier.reason
            .contains("gating environment `production`, which belongs to tier `production`"),
        "{}",
        tier.reason
    );
    assert_eq!(check(&report, "runner").status, Status::Pass);
    // A gate before the deployment has no environment of its own: the tier's protected
    // environment is the deploy job's to check, so this is a warning naming it, where
    // `--tier production` (a job claiming that tier for itself) fails.
    let protected = check(&report, "protected-environment");
    assert_eq!(protected.status, Status::Warn, "{}", protected.reason);
    assert!(
        protected
            .reason
            .contains("gates environment `production` without deploying to it"),
        "{}",
        protected.reason
    );
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.to_markdown());
    assert_no_secrets(&report, &token);

    // Every other check is judged exactly as `--tier production` judges the same job (reasons
    // aside: each run probes its own closed metadata port).
    let by_tier = world.run_github_request(
        Some(&token),
        &[],
        Request {
            for_environment: None,
            tier: Some("production".into()),
            ..gating("production")
        },
    );
    assert_eq!(
        check(&by_tier, "protected-environment").status,
        Status::Fail
    );
    let verdicts = |r: &Report| -> Vec<_> {
        r.checks
            .iter()
            .filter(|c| c.id != "tier" && c.id != "protected-environment")
            .map(|c| (c.id.clone(), c.status, c.source, c.untrusted))
            .collect()
    };
    assert_eq!(verdicts(&report), verdicts(&by_tier));

    // Twin: gating staging on a production runner is judged as staging, and fails.
    let report = world.run_github_request(Some(&token), &[], gating("staging"));
    assert_eq!(report.tier.as_deref(), Some("staging"));
    assert_eq!(check(&report, "tier").status, Status::Pass);
    let runner = check(&report, "runner");
    assert_eq!(runner.status, Status::Fail, "{}", runner.reason);
    assert_eq!(report.outcome, Outcome::Fail);
}

#[test]
fn job_gating_an_environment_outside_the_model_fails() {
    let world = World::github(&read_data("github-job.json"));
    let token = world.token(&claims_without_environment());
    let report = world.run_github_request(Some(&token), &[], gating("qa"));
    let tier = check(&report, "tier");
    assert_eq!(
        (tier.status, tier.source),
        (Status::Fail, Source::VerifiedToken)
    );
    assert!(
        tier.reason.contains(
            "the gated environment `qa` is not in the tier model: map it to a tier under `environments`"
        ),
        "{}",
        tier.reason
    );
    assert_eq!(report.tier, None);
    assert_eq!(report.outcome, Outcome::Fail);
}

#[test]
fn job_gating_an_environment_whose_token_names_another_fails() {
    let world = World::github(&read_data("github-job.json"));
    // The token says the job deploys to production: it is no gate for staging.
    let token = world.token(&github_claims(ISSUER));
    let report = world.run_github_request(Some(&token), &[], gating("staging"));
    let tier = check(&report, "tier");
    assert_eq!(
        (tier.status, tier.source),
        (Status::Fail, Source::VerifiedToken)
    );
    assert!(
        tier.reason.contains(
            "the job gates environment `staging` but its verified token says `production`"
        ),
        "{}",
        tier.reason
    );
    assert_eq!(report.tier, None);
    assert_eq!(report.outcome, Outcome::Fail);
}

#[test]
fn unsafe_local_facts_fail_production() {
    let mut world = World::github(&read_data("github-job.json"));
    world.root = FakeRoot::new(
        &CLEAN_STATUS
            .replace("Uid:\t1001\t1001\t1001\t1001", "Uid:\t0\t0\t0\t0")
            .replace("CapEff:\t0000000000000000", "CapEff:\t000001ffffffffff")
            .replace("NoNewPrivs:\t1", "NoNewPrivs:\t0"),
    );
    world.root.file("/var/run/docker.sock", "");
    world
        .root
        .file("/home/runner/.aws/credentials", "[default]\nSECRETFILE\n");
    let token = world.token(&github_claims(ISSUER));
    let report = world.run_github(
        Some(&token),
        &[("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjEXAMPLE")],
        None,
    );
    for id in [
        "no-root",
        "no-privileged-capabilities",
        "no-container-socket",
        "no-ambient-credentials",
        "no-new-privs",
    ] {
        let c = check(&report, id);
        assert_eq!(
            (c.status, c.source),
            (Status::Fail, Source::LocalKernel),
            "{id}"
        );
        assert!(!c.untrusted, "{id}");
    }
    let ambient = check(&report, "no-ambient-credentials");
    assert!(
        ambient.reason.contains("$AWS_SESSION_TOKEN")
            && ambient.reason.contains("/home/runner/.aws/credentials")
    );
    let shown = report.to_json();
    assert!(!shown.contains("IQoJb3JpZ2luX2VjEXAMPLE") && !shown.contains("SECRETFILE"));
    assert_eq!(report.outcome, Outcome::Fail);
}

#[test]
fn reachable_metadata_endpoint_fails_production() {
    let world = World::github(&read_data("github-job.json"));
    let metadata = Server::start(&[("/", 200, "{}".to_owned())]);
    let token = world.token(&github_claims(ISSUER));
    let tokens = Server::start(&[("/idtoken", 200, json!({"value": token}).to_string())]);
    let opts = GuardOptions {
        request: Request {
            platform: Platform::GitHub,
            environment: None,
            tier: None,
            for_environment: None,
            require_verified: false,
        },
        env: Environment::from_map([
            ("ACTIONS_ID_TOKEN_REQUEST_URL", tokens.url("/idtoken")),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
            ("GITHUB_TOKEN", API_TOKEN.to_owned()),
        ]),
        root: world.root.path().to_owned(),
        metadata_endpoint: Some(metadata.addr),
        now: None,
        use_platform_api: true,
    };
    let report = custody_guard::run(&world.model(), &opts).unwrap();
    let c = check(&report, "metadata-unreachable");
    assert_eq!(c.status, Status::Fail, "{}", report.to_markdown());
    assert!(c.reason.contains("127.0.0.1"));
    assert_eq!(metadata.requests()[0].target, "/");
}

fn gitlab_claims(runner_id: u64) -> Value {
    let now = oidc::now();
    json!({
        "namespace_id": "72",
        "namespace_path": "acme-health",
        "project_id": "48123456",
        "project_path": "acme-health/claims-service",
        "user_login": "deployer",
        "pipeline_id": "1212",
        "pipeline_source": "push",
        "job_id": "8",
        "ref": "main",
        "ref_type": "branch",
        "ref_path": "refs/heads/main",
        "ref_protected": "true",
        "environment": "production",
        "environment_protected": "true",
        "deployment_tier": "production",
        "environment_action": "start",
        "runner_id": runner_id,
        "runner_environment": "self-hosted",
        "sha": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd",
        "project_visibility": "private",
        "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
        "iss": "https://gitlab.com",
        "iat": now - 5,
        "nbf": now - 10,
        "exp": now + 3600,
        "sub": "project_path:acme-health/claims-service:ref_type:branch:ref:main",
        "aud": AUDIENCE,
    })
}

fn run_gitlab(claims: &Value, job: &str) -> (Report, Server, String) {
    let keys = Keys::new();
    let jwks = Server::start(&[("/.well-known/jwks", 200, keys.jwks())]);
    let api = Server::start(&[("/api/v4/job", 200, job.to_owned())]);
    let token = sign(&keys.ec, Algorithm::ES256, "ec-1", claims);
    let root = FakeRoot::clean();
    let env = Environment::from_map([
        ("GITLAB_CI", "true".to_owned()),
        ("CUSTODY_ID_TOKEN", token.clone()),
        ("CI_JOB_TOKEN", "glcbt-job-token-secret".to_owned()),
        ("CI_ENVIRONMENT_NAME", "production".to_owned()),
    ]);
    assert_eq!(Platform::detect(&env), Some(Platform::GitLab));
    let opts = GuardOptions {
        request: Request {
            platform: Platform::GitLab,
            environment: None,
            tier: None,
            for_environment: None,
            require_verified: false,
        },
        env,
        root: root.path().to_owned(),
        metadata_endpoint: Some(closed_port()),
        now: None,
        use_platform_api: true,
    };
    let report = custody_guard::run(&model(&jwks, &api), &opts).unwrap();
    (report, api, token)
}

#[test]
fn gitlab_production_job_on_its_runner_passes() {
    let (report, api, token) = run_gitlab(&gitlab_claims(3001), &read_data("gitlab-job.json"));
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.to_markdown());
    let runner = check(&report, "runner");
    assert_eq!(runner.status, Status::Pass);
    // Tags come from the API, the id from the token: the weakest source is reported.
    assert_eq!(runner.source, Source::PlatformApi);
    for id in [
        "protected-environment",
        "deployment-tier",
        "protected-ref",
        "repository",
    ] {
        let c = check(&report, id);
        assert_eq!(
            (c.status, c.source),
            (Status::Pass, Source::VerifiedToken),
            "{id}"
        );
    }
    assert_eq!(
        api.requests()[0].headers["job-token"],
        "glcbt-job-token-secret"
    );
    let shown = format!("{}{}{report:?}", report.to_json(), report.to_markdown());
    assert!(!shown.contains(&token) && !shown.contains("glcbt-job-token-secret"));
}

#[test]
fn gitlab_job_on_a_staging_runner_fails() {
    let job = read_data("gitlab-job.json").replace("\"id\": 3001", "\"id\": 2001");
    let (report, _api, _) = run_gitlab(&gitlab_claims(2001), &job);
    assert_eq!(report.outcome, Outcome::Fail);
    let runner = check(&report, "runner");
    assert_eq!(
        (runner.status, runner.source),
        (Status::Fail, Source::VerifiedToken)
    );
    assert!(
        runner.reason.contains("runner id 2001"),
        "{}",
        runner.reason
    );
}

#[test]
fn gitlab_api_runner_differing_from_the_token_fails() {
    let job = read_data("gitlab-job.json").replace("\"id\": 3001", "\"id\": 2001");
    let (report, _api, _) = run_gitlab(&gitlab_claims(3001), &job);
    let runner = check(&report, "runner");
    assert_eq!(runner.status, Status::Fail);
    assert!(
        runner.reason.contains("token names runner 3001"),
        "{}",
        runner.reason
    );
}

#[test]
fn gitlab_unprotected_environment_fails() {
    let mut claims = gitlab_claims(3001);
    claims["environment_protected"] = json!("false");
    let (report, _api, _) = run_gitlab(&claims, &read_data("gitlab-job.json"));
    assert_eq!(check(&report, "protected-environment").status, Status::Fail);
    assert_eq!(report.outcome, Outcome::Fail);
}
