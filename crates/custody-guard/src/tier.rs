//! The tier model: which environments belong to which tier, which runners may serve each tier,
//! and what each tier demands of a job (protected ref, protected environment, ephemeral runner,
//! cloud identities, local hardening). The schema is documented in `TIER-MODEL.md`.
//!
//! The model is the guard's root of trust for *where* to look: the OIDC issuer, audience, JWKS
//! URL and platform API host are pinned here and never read from environment variables, which
//! an earlier step of the job could have changed. Loading validates the whole model up front
//! (unknown fields, unknown tiers, runners or cloud accounts shared between tiers) so a bad model
//! is a configuration error naming the file and the field, never a surprise at check time.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::TierModelError;

/// The only schema version this crate reads.
pub const TIER_MODEL_VERSION: u32 = 1;
/// GitHub's OIDC issuer for github.com.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// GitHub's JWKS for github.com.
pub const GITHUB_JWKS_URL: &str = "https://token.actions.githubusercontent.com/.well-known/jwks";
/// GitHub's REST API for github.com.
pub const GITHUB_API_URL: &str = "https://api.github.com";
/// Default instance metadata endpoint probed for reachability (AWS, Azure, GCP all answer here).
pub const DEFAULT_METADATA_ENDPOINT: &str = "169.254.169.254:80";
/// Default leeway for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;
/// Largest leeway the model may configure: more would make `exp` meaningless.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// Where a runner comes from, as the OIDC `runner_environment` claim says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunnerEnvironment {
    SelfHosted,
    GithubHosted,
    GitlabHosted,
    /// Tier model only: any platform-hosted runner (`github-hosted` or `gitlab-hosted`), for
    /// models that pin both platforms.
    Hosted,
}

impl RunnerEnvironment {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfHosted => "self-hosted",
            Self::GithubHosted => "github-hosted",
            Self::GitlabHosted => "gitlab-hosted",
            Self::Hosted => "hosted",
        }
    }

    /// Parses a claim or variable value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "self-hosted" => Some(Self::SelfHosted),
            "github-hosted" => Some(Self::GithubHosted),
            "gitlab-hosted" => Some(Self::GitlabHosted),
            _ => None,
        }
    }

    /// Platform-hosted runners are fresh VMs per job.
    pub fn is_hosted(self) -> bool {
        !matches!(self, Self::SelfHosted)
    }

    /// Whether a runner whose claim says `got` satisfies this requirement.
    pub fn admits(self, got: Self) -> bool {
        self == got || (self == Self::Hosted && got.is_hosted())
    }
}

/// Pinned trust anchors and HTTP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    #[serde(default)]
    pub github: Option<GitHubTrust>,
    #[serde(default)]
    pub gitlab: Option<GitLabTrust>,
    /// Clock leeway for `exp`, `nbf`, `iat`.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Timeout for each HTTP call (token, JWKS, platform API).
    #[serde(default = "default_http_timeout")]
    pub http_timeout_ms: u64,
    /// HTTP(S) proxy for those calls. Pinned here because proxy variables are spoofable;
    /// `None` means direct connections.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Extra CA certificates (PEM) for those calls, e.g. a TLS-inspection proxy's. Pinned
    /// here for the same reason: the guard trusts the built-in roots and these only,
    /// never the runner's system store or `SSL_CERT_FILE`, which a previous job on a
    /// persistent runner, or the job's environment, could change.
    #[serde(default)]
    pub ca_certificates: Option<String>,
}

/// GitHub Actions trust anchors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubTrust {
    #[serde(default = "default_github_issuer")]
    pub issuer: String,
    #[serde(default = "default_github_jwks")]
    pub jwks_url: String,
    #[serde(default = "default_github_api")]
    pub api_url: String,
    /// The audience the guard requests and requires in `aud`.
    pub audience: String,
    /// `owner/name`: the token's `repository` claim must equal it.
    pub repository: String,
    /// The token's `repository_id` claim must equal it (survives renames, unlike the name).
    #[serde(deserialize_with = "id_string")]
    pub repository_id: String,
}

/// GitLab CI trust anchors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitLabTrust {
    /// The GitLab instance URL, e.g. `https://gitlab.com` (the `iss` claim).
    pub issuer: String,
    /// Defaults to `<issuer>/oauth/discovery/keys`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Defaults to the issuer.
    #[serde(default)]
    pub api_url: Option<String>,
    pub audience: String,
    /// The token's `project_id` claim must equal it.
    #[serde(deserialize_with = "id_string")]
    pub project_id: String,
    /// Name of the CI variable declared under `id_tokens:` that holds the token.
    pub token_variable: String,
}

impl GitLabTrust {
    /// The pinned JWKS URL.
    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!("{}/oauth/discovery/keys", self.issuer.trim_end_matches('/'))
        })
    }

    /// The pinned API base URL (without `/api/v4`).
    pub fn api_url(&self) -> String {
        self.api_url
            .clone()
            .unwrap_or_else(|| self.issuer.trim_end_matches('/').to_owned())
    }
}

/// Settings of the local probes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// Address whose reachability is probed (root path only).
    #[serde(default = "default_metadata_endpoint")]
    pub metadata_endpoint: SocketAddr,
    #[serde(default = "default_probe_timeout")]
    pub probe_timeout_ms: u64,
}

impl Default for LocalSettings {
    fn default() -> Self {
        Self {
            metadata_endpoint: default_metadata_endpoint(),
            probe_timeout_ms: default_probe_timeout(),
        }
    }
}

/// Runners a tier admits on GitHub. Non-empty lists must all match: `groups` and `names` are
/// any-of, `labels` are all-of (the runner must carry every label).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubRunners {
    #[serde(default)]
    pub groups: BTreeSet<String>,
    #[serde(default)]
    pub names: BTreeSet<String>,
    #[serde(default)]
    pub labels: BTreeSet<String>,
}

impl GitHubRunners {
    /// True when no criterion is set (admits every runner).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.names.is_empty() && self.labels.is_empty()
    }
}

/// Runners a tier admits on GitLab: `ids` any-of, `tags` all-of.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitLabRunners {
    #[serde(default)]
    pub ids: BTreeSet<u64>,
    #[serde(default)]
    pub tags: BTreeSet<String>,
}

impl GitLabRunners {
    /// True when no criterion is set (admits every runner).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.tags.is_empty()
    }
}

/// Runner selectors per platform.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runners {
    #[serde(default)]
    pub github: GitHubRunners,
    #[serde(default)]
    pub gitlab: GitLabRunners,
}

/// Cloud identities a tier may use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudIdentities {
    #[serde(default)]
    pub aws_accounts: BTreeSet<String>,
    #[serde(default)]
    pub aws_roles: BTreeSet<String>,
}

impl CloudIdentities {
    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.aws_accounts.is_empty() && self.aws_roles.is_empty()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHardening {
    no_container_socket: Option<bool>,
    no_privileged_capabilities: Option<bool>,
    no_root: Option<bool>,
    no_ambient_credentials: Option<bool>,
    metadata_unreachable: Option<bool>,
    require_no_new_privs: Option<bool>,
    require_seccomp: Option<bool>,
}

/// Local hardening a tier requires (resolved: unset fields default to the tier's production flag,
/// except `require_no_new_privs` and `require_seccomp` which default to false).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hardening {
    pub no_container_socket: bool,
    pub no_privileged_capabilities: bool,
    pub no_root: bool,
    pub no_ambient_credentials: bool,
    pub metadata_unreachable: bool,
    pub require_no_new_privs: bool,
    pub require_seccomp: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    #[serde(default)]
    production: Option<bool>,
    #[serde(default)]
    require_verified: Option<bool>,
    #[serde(default)]
    runner_environment: Option<RunnerEnvironment>,
    #[serde(default)]
    require_protected_ref: bool,
    #[serde(default)]
    require_protected_environment: bool,
    #[serde(default)]
    require_ephemeral: bool,
    #[serde(default)]
    runners: Runners,
    #[serde(default)]
    cloud_identities: CloudIdentities,
    #[serde(default)]
    hardening: RawHardening,
    #[serde(default)]
    gitlab_deployment_tier: Option<String>,
}

/// One tier, with defaults resolved.
#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    /// True for a tier flagged `production: true` or named `production`.
    pub production: bool,
    /// A check that rests only on unverified variables fails (default: `production`).
    pub require_verified: bool,
    pub runner_environment: Option<RunnerEnvironment>,
    pub require_protected_ref: bool,
    pub require_protected_environment: bool,
    pub require_ephemeral: bool,
    pub runners: Runners,
    pub cloud_identities: CloudIdentities,
    pub hardening: Hardening,
    /// GitLab `deployment_tier` the job's environment must have.
    pub gitlab_deployment_tier: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    version: u32,
    trust: Trust,
    #[serde(default)]
    local: LocalSettings,
    environments: BTreeMap<String, String>,
    #[serde(default)]
    default_tier: Option<String>,
    tiers: BTreeMap<String, RawTier>,
}

/// A loaded and validated tier model.
#[derive(Debug, Clone)]
pub struct TierModel {
    pub trust: Trust,
    pub local: LocalSettings,
    /// Environment name (or `prefix*` pattern) to tier name.
    pub environments: BTreeMap<String, String>,
    /// Tier of jobs that reference no environment.
    pub default_tier: Option<String>,
    pub tiers: BTreeMap<String, Tier>,
    source: String,
    digest: String,
}

impl TierModel {
    /// Reads and validates a tier model file.
    pub fn load(path: &Path) -> Result<Self, TierModelError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| TierModelError::Read {
            file: file.clone(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| TierModelError::Parse {
            file: file.clone(),
            line: None,
            message: "the file is not UTF-8 text".into(),
        })?;
        Self::from_yaml(&text, &file)
    }

    /// Parses and validates a tier model; `file` names the source in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, TierModelError> {
        let raw: RawModel = serde_yaml_ng::from_str(text).map_err(|e| TierModelError::Parse {
            file: file.to_owned(),
            line: e.location().map(|l| l.line()),
            message: e.to_string(),
        })?;
        let digest = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        Validator { file, text }.model(raw, digest)
    }

    /// File name the model was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `sha256:<hex>` of the model text, recorded in the report so evidence names the exact
    /// model it was judged against.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The tier named `name`.
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.get(name)
    }

    /// The tier an environment belongs to: an exact entry wins, then the longest `prefix*`
    /// pattern that matches.
    pub fn tier_for_environment(&self, environment: &str) -> Option<&Tier> {
        if let Some(tier) = self.environments.get(environment) {
            return self.tiers.get(tier);
        }
        self.environments
            .iter()
            .filter_map(|(pattern, tier)| {
                pattern
                    .strip_suffix('*')
                    .filter(|prefix| environment.starts_with(prefix))
                    .map(|prefix| (prefix.len(), tier))
            })
            .max_by_key(|(len, _)| *len)
            .and_then(|(_, tier)| self.tiers.get(tier))
    }

    /// Every environment entry mapped to `tier`.
    pub fn environments_of(&self, tier: &str) -> Vec<&str> {
        self.environments
            .iter()
            .filter(|(_, t)| t.as_str() == tier)
            .map(|(e, _)| e.as_str())
            .collect()
    }

    /// Tier that lists this AWS role or account, if any.
    pub fn tier_of_aws_role(&self, role_arn: &str) -> Option<&Tier> {
        let account = aws_role_account(role_arn);
        self.tiers.values().find(|t| {
            t.cloud_identities.aws_roles.contains(role_arn)
                || account.is_some_and(|a| t.cloud_identities.aws_accounts.contains(a))
        })
    }
}

/// The account id inside an IAM role ARN (`arn:<partition>:iam::<account>:role/<name>`).
pub fn aws_role_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (arn_ == "arn"
        && service == "iam"
        && region.is_empty()
        && is_aws_account(account)
        && resource.starts_with("role/")
        && resource.len() > "role/".len())
    .then_some(account)
}

fn is_aws_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Why `url` may not be used as a pinned API or JWKS URL (`https://`, or plain `http://` on a
/// loopback host only), or `None` when it may. Flags that override pinned URLs follow the same
/// rule as the tier model.
pub fn pinned_url_problem(url: &str) -> Option<String> {
    url_problem(url, false)
}

fn url_problem(url: &str, allow_http: bool) -> Option<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(format!("`{url}` is not an absolute URL"));
    };
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host_port
        .strip_prefix('[')
        .and_then(|h| h.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| host_port.split(':').next().unwrap_or_default());
    if host.is_empty() || host_port.contains('@') {
        return Some(format!("`{url}` has no host, or carries credentials"));
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => None,
        "http" if allow_http || loopback => None,
        _ => Some(format!(
            "`{url}` must use https (plain http is accepted for loopback hosts only)"
        )),
    }
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Validator<'_> {
    fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> TierModelError {
        let field = field.into();
        TierModelError::Invalid {
            file: self.file.to_owned(),
            line: locate(self.text, &field),
            field,
            problem: problem.into(),
        }
    }

    fn model(&self, raw: RawModel, digest: String) -> Result<TierModel, TierModelError> {
        if raw.version != TIER_MODEL_VERSION {
            return Err(self.err(
                "version",
                format!(
                    "version {} is not supported: this runner-guard reads version {TIER_MODEL_VERSION}",
                    raw.version
                ),
            ));
        }
        self.trust(&raw.trust)?;
        if raw.tiers.is_empty() {
            return Err(self.err("tiers", "no tiers defined: define at least one tier"));
        }
        let mut tiers = BTreeMap::new();
        for (name, tier) in raw.tiers {
            let tier = self.tier(&name, tier)?;
            tiers.insert(name, tier);
        }
        let known = || tiers.keys().cloned().collect::<Vec<_>>().join(", ");
        if raw.environments.is_empty() {
            return Err(self.err(
                "environments",
                "no environments mapped: map each deployment environment to a tier",
            ));
        }
        for (environment, tier) in &raw.environments {
            let field = format!("environments.{environment}");
            if environment.is_empty() || environment.trim_end_matches('*').contains('*') {
                return Err(self.err(
                    field,
                    "an environment is an exact name or a prefix ending in a single `*`",
                ));
            }
            if !tiers.contains_key(tier) {
                return Err(self.err(
                    field,
                    format!("unknown tier `{tier}`: known tiers are {}", known()),
                ));
            }
        }
        if let Some(tier) = &raw.default_tier
            && !tiers.contains_key(tier)
        {
            return Err(self.err(
                "default_tier",
                format!("unknown tier `{tier}`: known tiers are {}", known()),
            ));
        }
        let tier_list: Vec<&Tier> = tiers.values().collect();
        for (i, a) in tier_list.iter().enumerate() {
            for b in tier_list.iter().skip(i + 1) {
                if raw.trust.github.is_some() {
                    self.github_overlap(a, b)?;
                }
                if raw.trust.gitlab.is_some() {
                    self.gitlab_overlap(a, b)?;
                }
                self.cloud_overlap(a, b)?;
            }
        }
        for tier in &tier_list {
            self.selector_present(&raw.trust, tier)?;
        }
        Ok(TierModel {
            trust: raw.trust,
            local: raw.local,
            environments: raw.environments,
            default_tier: raw.default_tier,
            tiers,
            source: self.file.to_owned(),
            digest: format!("sha256:{digest}"),
        })
    }

    fn trust(&self, trust: &Trust) -> Result<(), TierModelError> {
        if trust.github.is_none() && trust.gitlab.is_none() {
            return Err(self.err(
                "trust",
                "pin at least one platform: add `trust.github` or `trust.gitlab`",
            ));
        }
        if trust.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(self.err(
                "trust.leeway_seconds",
                format!(
                    "{} s is too lenient: use at most {MAX_LEEWAY_SECONDS}",
                    trust.leeway_seconds
                ),
            ));
        }
        if trust.http_timeout_ms == 0 {
            return Err(self.err("trust.http_timeout_ms", "must be greater than 0"));
        }
        if let Some(proxy) = &trust.proxy {
            self.url("trust.proxy", proxy, true)?;
        }
        if let Some(pem) = &trust.ca_certificates {
            custody_http::net::Net::pinned(
                Some(pem),
                "trust.ca_certificates",
                custody_http::net::ProxySettings::default(),
            )
            .map_err(|e| self.err("trust.ca_certificates", e.to_string()))?;
        }
        if let Some(gh) = &trust.github {
            self.url("trust.github.issuer", &gh.issuer, false)?;
            self.url("trust.github.jwks_url", &gh.jwks_url, false)?;
            self.url("trust.github.api_url", &gh.api_url, false)?;
            self.non_empty("trust.github.audience", &gh.audience)?;
            let mut parts = gh.repository.split('/');
            let ok = matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some(o), Some(r), None) if !o.is_empty() && !r.is_empty()
            );
            if !ok {
                return Err(self.err(
                    "trust.github.repository",
                    format!("`{}` is not of the form owner/name", gh.repository),
                ));
            }
            self.numeric_id("trust.github.repository_id", &gh.repository_id)?;
        }
        if let Some(gl) = &trust.gitlab {
            self.url("trust.gitlab.issuer", &gl.issuer, false)?;
            self.url("trust.gitlab.jwks_url", &gl.jwks_url(), false)?;
            self.url("trust.gitlab.api_url", &gl.api_url(), false)?;
            self.non_empty("trust.gitlab.audience", &gl.audience)?;
            self.numeric_id("trust.gitlab.project_id", &gl.project_id)?;
            let valid_name = !gl.token_variable.is_empty()
                && gl
                    .token_variable
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                return Err(self.err(
                    "trust.gitlab.token_variable",
                    "must be the name of the CI variable declared under `id_tokens:` (letters, digits, `_`)",
                ));
            }
        }
        Ok(())
    }

    fn non_empty(&self, field: &str, value: &str) -> Result<(), TierModelError> {
        if value.trim().is_empty() {
            return Err(self.err(field, "must not be empty"));
        }
        Ok(())
    }

    fn numeric_id(&self, field: &str, value: &str) -> Result<(), TierModelError> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(field, format!("`{value}` is not a numeric id")));
        }
        Ok(())
    }

    /// Pinned URLs must use https; plain http is accepted for loopback hosts only (tests, a
    /// local mirror). A proxy may use http (the TLS session to the pinned host goes through it).
    fn url(&self, field: &str, url: &str, allow_http: bool) -> Result<(), TierModelError> {
        match url_problem(url, allow_http) {
            Some(problem) => Err(self.err(field, problem)),
            None => Ok(()),
        }
    }

    fn tier(&self, name: &str, raw: RawTier) -> Result<Tier, TierModelError> {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(self.err(
                format!("tiers.{name}"),
                "a tier name uses lowercase letters, digits, `-` and `_`",
            ));
        }
        let production = raw.production.unwrap_or(name == "production");
        let h = &raw.hardening;
        let hardening = Hardening {
            no_container_socket: h.no_container_socket.unwrap_or(production),
            no_privileged_capabilities: h.no_privileged_capabilities.unwrap_or(production),
            no_root: h.no_root.unwrap_or(production),
            no_ambient_credentials: h.no_ambient_credentials.unwrap_or(production),
            metadata_unreachable: h.metadata_unreachable.unwrap_or(production),
            require_no_new_privs: h.require_no_new_privs.unwrap_or(false),
            require_seccomp: h.require_seccomp.unwrap_or(false),
        };
        for account in &raw.cloud_identities.aws_accounts {
            if !is_aws_account(account) {
                return Err(self.err(
                    format!("tiers.{name}.cloud_identities.aws_accounts"),
                    format!("`{account}` is not a 12-digit AWS account id (quote it in YAML)"),
                ));
            }
        }
        for role in &raw.cloud_identities.aws_roles {
            if aws_role_account(role).is_none() {
                return Err(self.err(
                    format!("tiers.{name}.cloud_identities.aws_roles"),
                    format!("`{role}` is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
                ));
            }
        }
        if let Some(t) = &raw.gitlab_deployment_tier
            && !["production", "staging", "testing", "development", "other"].contains(&t.as_str())
        {
            return Err(self.err(
                format!("tiers.{name}.gitlab_deployment_tier"),
                format!("`{t}` is not a GitLab deployment tier: use production, staging, testing, development or other"),
            ));
        }
        Ok(Tier {
            name: name.to_owned(),
            production,
            require_verified: raw.require_verified.unwrap_or(production),
            runner_environment: raw.runner_environment,
            require_protected_ref: raw.require_protected_ref,
            require_protected_environment: raw.require_protected_environment,
            require_ephemeral: raw.require_ephemeral,
            runners: raw.runners,
            cloud_identities: raw.cloud_identities,
            hardening,
            gitlab_deployment_tier: raw.gitlab_deployment_tier,
        })
    }

    /// A tier on self-hosted (or unspecified) runners must say which runners it admits:
    /// an empty selector would admit every runner of every other tier.
    fn selector_present(&self, trust: &Trust, tier: &Tier) -> Result<(), TierModelError> {
        let hosted = tier
            .runner_environment
            .is_some_and(RunnerEnvironment::is_hosted);
        if hosted {
            return Ok(());
        }
        if trust.github.is_some() && tier.runners.github.is_empty() {
            return Err(self.err(
                format!("tiers.{}.runners.github", tier.name),
                "no runners listed: name the runner groups, runner names or labels this tier may run on (or set `runner_environment: github-hosted`)",
            ));
        }
        if trust.gitlab.is_some() && tier.runners.gitlab.is_empty() {
            return Err(self.err(
                format!("tiers.{}.runners.gitlab", tier.name),
                "no runners listed: name the runner ids or tags this tier may run on (or set `runner_environment: gitlab-hosted`)",
            ));
        }
        Ok(())
    }

    /// Two tiers can share runners only if both may run on self-hosted runners: platform-hosted
    /// runners are a fresh VM per job, so nothing carries over between tiers.
    fn may_share(a: &Tier, b: &Tier) -> bool {
        let hosted = |t: &Tier| {
            t.runner_environment
                .is_some_and(RunnerEnvironment::is_hosted)
        };
        !hosted(a) && !hosted(b)
    }

    fn shared(&self, field: String, what: &str, item: &str, other: &str) -> TierModelError {
        self.err(
            field,
            format!(
                "{what} `{item}` is also allowed in tier `{other}`: a runner may serve one tier only, give each tier its own runners"
            ),
        )
    }

    fn github_overlap(&self, a: &Tier, b: &Tier) -> Result<(), TierModelError> {
        if !Self::may_share(a, b) {
            return Ok(());
        }
        let (ra, rb) = (&a.runners.github, &b.runners.github);
        let field = |what: &str| format!("tiers.{}.runners.github.{what}", b.name);
        if let Some(n) = ra.names.intersection(&rb.names).next() {
            return Err(self.shared(field("names"), "runner", n, &a.name));
        }
        if let Some(g) = ra.groups.intersection(&rb.groups).next() {
            return Err(self.shared(field("groups"), "runner group", g, &a.name));
        }
        let only_labels = |r: &GitHubRunners| r.names.is_empty() && r.groups.is_empty();
        if only_labels(ra) && only_labels(rb) && !ra.labels.is_empty() && ra.labels == rb.labels {
            let labels = ra.labels.iter().cloned().collect::<Vec<_>>().join(", ");
            return Err(self.shared(field("labels"), "a runner labelled", &labels, &a.name));
        }
        Ok(())
    }

    fn gitlab_overlap(&self, a: &Tier, b: &Tier) -> Result<(), TierModelError> {
        if !Self::may_share(a, b) {
            return Ok(());
        }
        let (ra, rb) = (&a.runners.gitlab, &b.runners.gitlab);
        let field = |what: &str| format!("tiers.{}.runners.gitlab.{what}", b.name);
        if let Some(id) = ra.ids.intersection(&rb.ids).next() {
            return Err(self.shared(field("ids"), "runner id", &id.to_string(), &a.name));
        }
        if ra.ids.is_empty() && rb.ids.is_empty() && !ra.tags.is_empty() && ra.tags == rb.tags {
            let tags = ra.tags.iter().cloned().collect::<Vec<_>>().join(", ");
            return Err(self.shared(field("tags"), "a runner tagged", &tags, &a.name));
        }
        Ok(())
    }

    fn cloud_overlap(&self, a: &Tier, b: &Tier) -> Result<(), TierModelError> {
        let (ca, cb) = (&a.cloud_identities, &b.cloud_identities);
        let field = |what: &str| format!("tiers.{}.cloud_identities.{what}", b.name);
        let problem = |what: &str, item: &str| {
            format!(
                "{what} `{item}` also belongs to tier `{}`: a cloud account may serve one tier only",
                a.name
            )
        };
        if let Some(acc) = ca.aws_accounts.intersection(&cb.aws_accounts).next() {
            return Err(self.err(field("aws_accounts"), problem("AWS account", acc)));
        }
        if let Some(role) = ca.aws_roles.intersection(&cb.aws_roles).next() {
            return Err(self.err(field("aws_roles"), problem("role", role)));
        }
        for (x, y, name) in [(ca, cb, &b.name), (cb, ca, &a.name)] {
            for role in &y.aws_roles {
                if let Some(acc) = aws_role_account(role)
                    && x.aws_accounts.contains(acc)
                {
                    let other = if name == &b.name { &a.name } else { &b.name };
                    return Err(self.err(
                        format!("tiers.{name}.cloud_identities.aws_roles"),
                        format!(
                            "role `{role}` lives in AWS account {acc} of tier `{other}`: a cloud account may serve one tier only"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The 1-based line of a dotted field path (`tiers.staging.runners.github.groups`) in YAML
/// text, so an error can say `file:line`. A best effort over block and flow style: each
/// segment is looked up among the direct children of the previous one (or on the previous
/// one's line, for `github: { groups: [...] }`); when a segment cannot be found, the deepest
/// line found so far is returned.
fn locate(text: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    fn content(line: &str) -> Option<(usize, &str)> {
        let t = line.trim_start();
        (!t.is_empty() && !t.starts_with('#')).then(|| (line.len() - t.len(), t))
    }
    let is_key = |t: &str, seg: &str| {
        let t = t.strip_prefix("- ").unwrap_or(t);
        [seg.to_owned(), format!("\"{seg}\""), format!("'{seg}'")]
            .iter()
            .any(|k| {
                t.strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with(':'))
            })
    };
    // (line index, indent) of the last segment found; `None` before the first.
    let mut found: Option<(usize, usize)> = None;
    for seg in field.split('.') {
        if let Some((i, _)) = found {
            let own = lines.get(i).copied().unwrap_or_default();
            let rest = own.split_once(':').map(|(_, r)| r).unwrap_or_default();
            if rest.contains(&format!("{seg}:")) {
                continue;
            }
        }
        let from = found.map_or(0, |(i, _)| i + 1);
        let parent_indent = found.map(|(_, ind)| ind);
        let mut child_indent = None;
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let Some((indent, t)) = content(line) else {
                continue;
            };
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            let level = *child_indent.get_or_insert(indent);
            if indent == level && is_key(t, seg) {
                hit = Some((i, indent));
                break;
            }
        }
        match hit {
            Some(h) => found = Some(h),
            None => break,
        }
    }
    found.map(|(i, _)| i + 1)
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECONDS
}
fn default_http_timeout() -> u64 {
    10_000
}
fn default_probe_timeout() -> u64 {
    300
}
fn default_github_issuer() -> String {
    GITHUB_ISSUER.into()
}
fn default_github_jwks() -> String {
    GITHUB_JWKS_URL.into()
}
fn default_github_api() -> String {
    GITHUB_API_URL.into()
}
fn default_metadata_endpoint() -> SocketAddr {
    SocketAddr::from(([169, 254, 169, 254], 80))
}

/// Accepts an id written as a YAML integer or string.
fn id_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Int(u64),
        Str(String),
    }
    Ok(match Id::deserialize(d)? {
        Id::Int(i) => i.to_string(),
        Id::Str(s) => s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
version: 1
trust:
  github:
    audience: custody
    repository: acme/app
    repository_id: 42
environments:
  production: production
  review/*: dev
  review/hotfix*: production
default_tier: dev
tiers:
  dev:
    runners:
      github: { groups: [dev] }
  production:
    runners:
      github: { groups: [prod], labels: [prod] }
"#;

    fn load(text: &str) -> Result<TierModel, TierModelError> {
        TierModel::from_yaml(text, "tiers.yaml")
    }

    #[test]
    fn defaults_follow_the_production_flag() {
        let m = load(BASE).unwrap();
        let prod = m.tier("production").unwrap();
        assert!(prod.production && prod.require_verified && prod.hardening.no_root);
        assert!(!prod.hardening.require_seccomp);
        let dev = m.tier("dev").unwrap();
        assert!(!dev.production && !dev.require_verified && !dev.hardening.no_root);
        assert_eq!(m.trust.github.as_ref().unwrap().repository_id, "42");
        assert_eq!(m.trust.github.as_ref().unwrap().issuer, GITHUB_ISSUER);
        assert!(m.digest().starts_with("sha256:") && m.digest().len() == 7 + 64);
    }

    #[test]
    fn environments_match_exactly_then_by_longest_prefix() {
        let m = load(BASE).unwrap();
        let tier = |e: &str| m.tier_for_environment(e).map(|t| t.name.clone());
        assert_eq!(tier("production").as_deref(), Some("production"));
        assert_eq!(tier("review/feature-1").as_deref(), Some("dev"));
        assert_eq!(tier("review/hotfix-2").as_deref(), Some("production"));
        assert_eq!(tier("productionx"), None);
    }

    #[test]
    fn fields_are_located_in_block_and_flow_style() {
        let at = |field: &str| locate(BASE, field);
        let line_of = |needle: &str| BASE.lines().position(|l| l.contains(needle)).map(|i| i + 1);
        let exact = |l: &str| BASE.lines().position(|x| x == l).map(|i| i + 1);
        assert_eq!(at("tiers.production"), exact("  production:"));
        assert_eq!(
            at("tiers.production.runners.github"),
            line_of("github: { groups: [prod]")
        );
        assert_eq!(
            at("tiers.production.runners.github.labels"),
            line_of("github: { groups: [prod]")
        );
        assert_eq!(
            at("trust.github.repository_id"),
            line_of("repository_id: 42")
        );
        assert_eq!(at("environments.review/*"), line_of("review/*: dev"));
        assert_eq!(at("default_tier"), line_of("default_tier: dev"));
        // `production` under `environments` is not the tier of that name.
        assert_ne!(at("tiers.production"), line_of("production: production"));
        // An unknown segment stops at the deepest known line.
        assert_eq!(at("tiers.dev.nothing"), exact("  dev:"));
        assert_eq!(at("nothing"), None);
    }

    #[test]
    fn validation_errors_name_the_line() {
        let text = BASE.replace("repository_id: 42", "repository_id: abc");
        let err = load(&text).unwrap_err().to_string();
        let line = text
            .lines()
            .position(|l| l.contains("repository_id"))
            .unwrap()
            + 1;
        assert!(
            err.starts_with(&format!("tiers.yaml:{line}: `trust.github.repository_id`")),
            "{err}"
        );
        let err = load("version: 1\ntrust: [\n").unwrap_err().to_string();
        assert!(err.starts_with("tiers.yaml:"), "{err}");
    }

    #[test]
    fn role_accounts_parse() {
        assert_eq!(
            aws_role_account("arn:aws:iam::123456789012:role/deploy"),
            Some("123456789012")
        );
        assert_eq!(aws_role_account("arn:aws:iam::123456789012:user/bob"), None);
        assert_eq!(aws_role_account("arn:aws:s3:::bucket"), None);
        assert_eq!(aws_role_account("arn:aws:iam::12345:role/x"), None);
    }

    #[test]
    fn plain_http_only_for_loopback() {
        let with = |url: &str| {
            BASE.replace(
                "repository_id: 42",
                &format!("repository_id: 42\n    jwks_url: {url}"),
            )
        };
        assert!(load(&with("http://127.0.0.1:8080/jwks")).is_ok());
        let err = load(&with("http://evil.example/jwks"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trust.github.jwks_url") && err.contains("https"),
            "{err}"
        );
    }

    #[test]
    fn hosted_tiers_may_share_the_hosted_pool() {
        let text = BASE.replace(
            "  dev:\n    runners:\n      github: { groups: [dev] }",
            "  dev:\n    runner_environment: github-hosted\n  qa:\n    runner_environment: github-hosted",
        );
        assert!(load(&text).is_ok(), "{:?}", load(&text).err());
    }

    #[test]
    fn shared_aws_account_is_an_error() {
        let text = format!(
            "{BASE}    cloud_identities: {{ aws_accounts: ['111111111111'] }}\n"
        )
        .replace(
            "      github: { groups: [dev] }",
            "      github: { groups: [dev] }\n    cloud_identities: { aws_roles: ['arn:aws:iam::111111111111:role/dev'] }",
        );
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.contains("111111111111") && err.contains("one tier only"),
            "{err}"
        );
    }
}
