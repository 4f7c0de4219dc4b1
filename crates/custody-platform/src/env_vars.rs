//! Every environment variable Custody reads, in one module, so a reviewer can see at a
//! glance what input crosses the process boundary.

// Custody's own
/// Default store URL when `--store` is not given.
pub const CUSTODY_STORE: &str = "CUSTODY_STORE";
/// Extra trusted CA certificates (PEM files, comma-separated) when `--ca-file` is not
/// given: a private CA, e.g. a hospital's TLS-inspection proxy.
pub const CUSTODY_CA_FILE: &str = "CUSTODY_CA_FILE";
/// Proxies for HTTPS and HTTP requests, and the hosts that bypass them (either case;
/// read through `custody_http::net::ProxySettings`). `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// replace the system's CA bundle (read by `rustls-native-certs`).
pub const PROXY_VARIABLES: [&str; 4] = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"];
/// Path of the signing key when `--key` is not given.
pub const CUSTODY_SIGNING_KEY: &str = "CUSTODY_SIGNING_KEY";
/// The signing key itself (PEM), for CI systems that hand secrets over as variables.
/// Masked on GitHub before anything else is printed.
pub const CUSTODY_SIGNING_KEY_PEM: &str = "CUSTODY_SIGNING_KEY_PEM";
/// RFC 3161 timestamp authorities (comma-separated URLs) every signature is sent to.
pub const CUSTODY_TSA: &str = "CUSTODY_TSA";
/// Path of the transparency log's signing key (`custody log checkpoint`,
/// `policy-check --log-signing-key`).
pub const CUSTODY_LOG_SIGNING_KEY: &str = "CUSTODY_LOG_SIGNING_KEY";
/// Path of the log's verifier key (`custody log verify --log-key`).
pub const CUSTODY_LOG_KEY: &str = "CUSTODY_LOG_KEY";
/// Path of a witness's signing key (`custody log witness`).
pub const CUSTODY_WITNESS_SIGNING_KEY: &str = "CUSTODY_WITNESS_SIGNING_KEY";
/// A GitLab token (sent as `PRIVATE-TOKEN`) for `gitlab://` stores; wins over `CI_JOB_TOKEN`.
pub const CUSTODY_GITLAB_TOKEN: &str = "CUSTODY_GITLAB_TOKEN";
/// GitLab's job token (sent as `JOB-TOKEN`) for `gitlab://` stores.
pub const CI_JOB_TOKEN: &str = "CI_JOB_TOKEN";
/// S3 stores: an S3-compatible endpoint (MinIO, Ceph RGW); AWS when unset.
pub const CUSTODY_S3_ENDPOINT: &str = "CUSTODY_S3_ENDPOINT";
/// S3 stores: the region (default: the AWS configuration, or us-east-1 with an endpoint).
pub const CUSTODY_S3_REGION: &str = "CUSTODY_S3_REGION";
/// S3 stores: `true` addresses buckets by path (MinIO, Ceph).
pub const CUSTODY_S3_PATH_STYLE: &str = "CUSTODY_S3_PATH_STYLE";
/// S3 stores: `COMPLIANCE` (default) or `GOVERNANCE`.
pub const CUSTODY_S3_LOCK_MODE: &str = "CUSTODY_S3_LOCK_MODE";
/// S3 stores: `true` puts a legal hold on every object.
pub const CUSTODY_S3_LEGAL_HOLD: &str = "CUSTODY_S3_LEGAL_HOLD";
/// S3 stores: `true` allows a bucket without Object Lock (demos and tests only).
pub const CUSTODY_S3_ALLOW_UNLOCKED: &str = "CUSTODY_S3_ALLOW_UNLOCKED";
/// runner-guard and `custody runners audit`: path of the tier model (default
/// `.custody/tiers.yaml`). The variables the guard reads about the job itself (OIDC request,
/// job token, runner and credential variables) are declared in `custody_guard::env`, which
/// works from one snapshot of the environment.
pub const CUSTODY_TIER_MODEL: &str = "CUSTODY_TIER_MODEL";
/// `custody runners audit`: a GitHub token with `admin:org` (or the fine-grained organization
/// permission "Self-hosted runners: read"). Never printed.
pub const CUSTODY_GITHUB_ADMIN_TOKEN: &str = "CUSTODY_GITHUB_ADMIN_TOKEN";
/// `custody runners audit`: a GitLab administrator's (or auditor's) token for
/// `GET /runners/all`. Never printed.
pub const CUSTODY_GITLAB_ADMIN_TOKEN: &str = "CUSTODY_GITLAB_ADMIN_TOKEN";
/// `cargo xtask release` (maintainers): a GitHub token with `contents: write` on the
/// repository, for the release and its assets. Never printed.
pub const CUSTODY_RELEASE_GITHUB_TOKEN: &str = "CUSTODY_RELEASE_GITHUB_TOKEN";
/// `cargo xtask release` (maintainers): a GitLab token with the `api` scope (Developer or
/// more) for the generic package and the release. Never printed.
pub const CUSTODY_RELEASE_GITLAB_TOKEN: &str = "CUSTODY_RELEASE_GITLAB_TOKEN";
/// Where evidence is kept when the store cannot be reached.
pub const CUSTODY_SPOOL: &str = "CUSTODY_SPOOL";
/// evidence-upload `--sigstore-bundles DIR`: each record also as a Sigstore bundle.
pub const CUSTODY_SIGSTORE_BUNDLES: &str = "CUSTODY_SIGSTORE_BUNDLES";
/// The job's workspace on GitHub and GitLab: evidence files must be inside it.
pub const GITHUB_WORKSPACE: &str = "GITHUB_WORKSPACE";
pub const CI_PROJECT_DIR: &str = "CI_PROJECT_DIR";
/// Log filter for `tracing` (e.g. `debug`).
pub const CUSTODY_LOG: &str = "CUSTODY_LOG";
/// Disables colored output when set (https://no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";

// GitHub Actions
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
pub const GITHUB_SHA: &str = "GITHUB_SHA";
pub const GITHUB_REF: &str = "GITHUB_REF";
pub const GITHUB_REF_PROTECTED: &str = "GITHUB_REF_PROTECTED";
pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";
pub const GITHUB_RUN_ATTEMPT: &str = "GITHUB_RUN_ATTEMPT";
pub const GITHUB_JOB: &str = "GITHUB_JOB";
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
pub const GITHUB_TRIGGERING_ACTOR: &str = "GITHUB_TRIGGERING_ACTOR";
pub const RUNNER_NAME: &str = "RUNNER_NAME";
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";

// GitLab CI
pub const GITLAB_CI: &str = "GITLAB_CI";
pub const CI_SERVER_URL: &str = "CI_SERVER_URL";
pub const CI_PROJECT_PATH: &str = "CI_PROJECT_PATH";
pub const CI_COMMIT_SHA: &str = "CI_COMMIT_SHA";
pub const CI_COMMIT_REF_NAME: &str = "CI_COMMIT_REF_NAME";
pub const CI_COMMIT_REF_PROTECTED: &str = "CI_COMMIT_REF_PROTECTED";
pub const CI_PIPELINE_ID: &str = "CI_PIPELINE_ID";
pub const CI_PIPELINE_URL: &str = "CI_PIPELINE_URL";
pub const CI_JOB_NAME: &str = "CI_JOB_NAME";
pub const CI_JOB_ID: &str = "CI_JOB_ID";
pub const GITLAB_USER_LOGIN: &str = "GITLAB_USER_LOGIN";
pub const CI_RUNNER_ID: &str = "CI_RUNNER_ID";
pub const CI_RUNNER_DESCRIPTION: &str = "CI_RUNNER_DESCRIPTION";
pub const CI_ENVIRONMENT_NAME: &str = "CI_ENVIRONMENT_NAME";

// policy-check
/// GitHub REST API root (GitHub sets it in every job; GHES: `https://HOST/api/v3`).
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// GitHub token for run approvals, environments, PRs and commits.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// A GitHub token for policy-check; wins over `GITHUB_TOKEN`.
pub const CUSTODY_GITHUB_TOKEN: &str = "CUSTODY_GITHUB_TOKEN";
/// GitLab REST API root (`https://HOST/api/v4`), set in every GitLab job.
pub const CI_API_V4_URL: &str = "CI_API_V4_URL";
/// GitLab project id.
pub const CI_PROJECT_ID: &str = "CI_PROJECT_ID";
/// Replaces `https://<registry host>` for cosign signature lookups.
pub const CUSTODY_REGISTRY_URL: &str = "CUSTODY_REGISTRY_URL";
/// evidence-upload: attach each record to the image as an OCI referrer (`true`).
pub const CUSTODY_OCI_ATTACH: &str = "CUSTODY_OCI_ATTACH";
/// Registry credentials for cosign signature lookups (anonymous when unset).
pub const CUSTODY_REGISTRY_USERNAME: &str = "CUSTODY_REGISTRY_USERNAME";
pub const CUSTODY_REGISTRY_PASSWORD: &str = "CUSTODY_REGISTRY_PASSWORD";

/// The AWS KMS endpoint (a whole URL) for `awskms:///…` keys, as the AWS SDKs read it.
pub const AWS_ENDPOINT_URL_KMS: &str = "AWS_ENDPOINT_URL_KMS";
/// Every AWS service's endpoint, when no service-specific one is set.
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// The PIN of a `pkcs11:` signing key (masked in the job log first).
pub const CUSTODY_PKCS11_PIN: &str = "CUSTODY_PKCS11_PIN";
/// The PKCS#11 module of a `pkcs11:` key whose URI has no `module-path`.
pub const CUSTODY_PKCS11_MODULE: &str = "CUSTODY_PKCS11_MODULE";
