//! Collecting signals and judging them against the tier model.
//!
//! [`collect`] does all I/O (token, JWKS, platform API, local probes) and records each signal
//! with what went wrong, never aborting on a missing one; [`evaluate`] is pure and turns signals
//! into a [`Report`]. Every check prefers the strongest source available: a verified token claim,
//! then the platform API, then the local kernel, and only as a last resort a CI variable. When
//! the tier sets `require_verified`, a check that rests only on a variable fails "for want of
//! trust" (exit code 3 unless something failed outright).
//!
//! `collect.rs` gathers (token, JWKS, platform API, local probes), `evaluate.rs` judges,
//! `identity.rs` decides whether a runner's identity (name, group, labels, id) is one a
//! tier admits.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::env::{self, Environment};
use crate::error::{OidcError, TierModelError};
use crate::http::Http;
use crate::local::{LocalFacts, LocalProbe, MetadataProbe};
use crate::oidc::{self, Claims, Expectation, Jwks};
use crate::platform::{self, EnvironmentProtection, RunnerInfo};
use crate::report::{Check, REPORT_SCHEMA, Report, Source, Status};
use crate::tier::{RunnerEnvironment, Tier, TierModel, aws_role_account};

/// The CI platform the job runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[serde(rename = "github")]
    GitHub,
    #[serde(rename = "gitlab")]
    GitLab,
}

impl Platform {
    /// `github` or `gitlab`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
        }
    }

    /// Detects the platform from `GITHUB_ACTIONS` / `GITLAB_CI`. Only used to pick the code
    /// path: the trust anchors still come from the tier model.
    pub fn detect(env: &Environment) -> Option<Self> {
        if env.get(env::GITHUB_ACTIONS) == Some("true") {
            Some(Self::GitHub)
        } else if env.get(env::GITLAB_CI) == Some("true") {
            Some(Self::GitLab)
        } else {
            None
        }
    }
}

/// What the caller (the `runner-guard` step's inputs) asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub platform: Platform,
    /// The environment the job says it deploys to. On GitHub no variable carries the job's
    /// environment, so this input is the unverified fallback when no token verifies.
    pub environment: Option<String>,
    /// The tier the job expects to run in. Used for jobs without an environment; for jobs with
    /// one it must agree with the environment's tier.
    pub tier: Option<String>,
    /// The environment the job gates without deploying to it (`--for-environment`), such as a
    /// policy gate that runs before the deployment's approval: a job without an environment is
    /// judged against the tier this environment belongs to. The job's own environment still
    /// comes from the token (or variables), and one that differs from this fails.
    pub for_environment: Option<String>,
    /// Require verified signals whatever the tier says (`--require-verified`). It can only
    /// make the guard stricter: a tier with `require_verified` stays strict without it.
    pub require_verified: bool,
}

/// The OIDC token signal.
#[derive(Debug, Clone)]
pub enum TokenSignal {
    /// Verified against the pinned issuer's JWKS.
    Verified(Claims),
    /// Obtained but refused (forged, expired, wrong issuer or audience...).
    Rejected(String),
    /// Not obtained (no permission, network, JWKS unreachable).
    Unavailable(String),
}

/// A platform API answer, or why there is none.
#[derive(Debug, Clone)]
pub enum ApiSignal<T> {
    Answered(T),
    Failed(String),
    NotAsked(String),
}

impl<T> ApiSignal<T> {
    fn answered(&self) -> Option<&T> {
        match self {
            Self::Answered(t) => Some(t),
            _ => None,
        }
    }

    fn why_not(&self) -> &str {
        match self {
            Self::Answered(_) => "",
            Self::Failed(r) | Self::NotAsked(r) => r,
        }
    }
}

/// CI variables the guard may fall back on. Spoofable by earlier steps of the job.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub environment: Option<String>,
    pub ref_protected: Option<bool>,
    pub repository_id: Option<String>,
    pub runner_name: Option<String>,
    pub runner_environment: Option<String>,
    pub runner_id: Option<u64>,
    pub runner_tags: Option<Vec<String>>,
    pub deployment_tier: Option<String>,
    pub aws_role_arn: Option<String>,
}

impl Variables {
    /// Reads the variables of `platform` from `env`.
    pub fn read(platform: Platform, env: &Environment) -> Self {
        let get = |n: &str| env.get(n).map(str::to_owned);
        let boolean = |n: &str| env.get(n).map(|v| v == "true");
        let common = Self {
            aws_role_arn: get(env::AWS_ROLE_ARN),
            ..Self::default()
        };
        match platform {
            Platform::GitHub => Self {
                ref_protected: boolean(env::GITHUB_REF_PROTECTED),
                repository_id: get(env::GITHUB_REPOSITORY_ID),
                runner_name: get(env::RUNNER_NAME),
                runner_environment: get(env::RUNNER_ENVIRONMENT),
                ..common
            },
            Platform::GitLab => Self {
                environment: get(env::CI_ENVIRONMENT_NAME),
                ref_protected: boolean(env::CI_COMMIT_REF_PROTECTED),
                repository_id: get(env::CI_PROJECT_ID),
                runner_id: env.get(env::CI_RUNNER_ID).and_then(|v| v.parse().ok()),
                runner_tags: env
                    .get(env::CI_RUNNER_TAGS)
                    .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok()),
                deployment_tier: get(env::CI_ENVIRONMENT_TIER),
                ..common
            },
        }
    }
}

/// Everything [`collect`] gathered.
#[derive(Debug, Clone)]
pub struct Signals {
    pub token: TokenSignal,
    pub runner: ApiSignal<RunnerInfo>,
    /// GitHub only: protection of the token's environment.
    pub environment_protection: ApiSignal<EnvironmentProtection>,
    pub variables: Variables,
    pub local: LocalFacts,
}

/// How to collect signals.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    pub request: Request,
    /// The environment snapshot (the process's in production, injected in tests).
    pub env: Environment,
    /// Stands in for `/` for local probes.
    pub root: PathBuf,
    /// Overrides the tier model's metadata endpoint (tests point it at loopback); `None` keeps
    /// the model's.
    pub metadata_endpoint: Option<SocketAddr>,
    /// Current time, seconds since the epoch; `None` reads the system clock.
    pub now: Option<u64>,
    /// Ask the platform API about the runner and environment (phase 2 signals).
    pub use_platform_api: bool,
}

impl GuardOptions {
    /// Options for the real process: root `/`, process environment, system clock, platform API on.
    pub fn for_this_process(request: Request) -> Self {
        Self {
            request,
            env: Environment::from_process(),
            root: PathBuf::from("/"),
            metadata_endpoint: None,
            now: None,
            use_platform_api: true,
        }
    }
}

mod collect;
mod evaluate;
mod identity;

pub use collect::{collect, verified_token};
pub use evaluate::evaluate;

/// Collects signals and evaluates them.
pub fn run(model: &TierModel, opts: &GuardOptions) -> Result<Report, TierModelError> {
    let signals = collect(model, opts)?;
    Ok(evaluate(model, &opts.request, &signals))
}

/// A value together with the source it came from.
type Fact<T> = Option<(T, Source)>;

/// The verified claim if a token verified, else the variable.
fn fact<T>(verified: Option<T>, variable: Option<T>) -> Fact<T> {
    verified
        .map(|v| (v, Source::VerifiedToken))
        .or_else(|| variable.map(|v| (v, Source::UnverifiedVariable)))
}
