//! Gathering the signals: the token and its JWKS, the platform API, the local probes.

use super::*;
use crate::tier::{GitHubTrust, GitLabTrust};

pub(super) fn now_or_clock(now: Option<u64>) -> u64 {
    now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

fn not_pinned(platform: Platform) -> TierModelError {
    TierModelError::Invalid {
        file: "tier model".into(),
        line: None,
        field: format!("trust.{}", platform.as_str()),
        problem: format!(
            "the job runs on {} but the tier model pins no trust anchors for it: add this section",
            platform.as_str()
        ),
    }
}

/// The tier model's GitHub trust anchors, which a job on GitHub needs.
fn github_trust(model: &TierModel) -> Result<&GitHubTrust, TierModelError> {
    model
        .trust
        .github
        .as_ref()
        .ok_or_else(|| not_pinned(Platform::GitHub))
}

/// The tier model's GitLab trust anchors, which a job on GitLab needs.
fn gitlab_trust(model: &TierModel) -> Result<&GitLabTrust, TierModelError> {
    model
        .trust
        .gitlab
        .as_ref()
        .ok_or_else(|| not_pinned(Platform::GitLab))
}

/// Obtains the job's token and verifies it against the JWKS fetched from the pinned URL.
pub fn verified_token(
    model: &TierModel,
    platform: Platform,
    env: &Environment,
    http: &Http,
    now: u64,
) -> Result<Result<Claims, OidcError>, TierModelError> {
    let (issuer, audience, jwks_url) = match platform {
        Platform::GitHub => {
            let gh = github_trust(model)?;
            (gh.issuer.clone(), gh.audience.clone(), gh.jwks_url.clone())
        }
        Platform::GitLab => {
            let gl = gitlab_trust(model)?;
            (gl.issuer.clone(), gl.audience.clone(), gl.jwks_url())
        }
    };
    let token = match platform {
        Platform::GitHub => oidc::fetch_github_token(env, &audience, http),
        Platform::GitLab => oidc::gitlab_token(env, &gitlab_trust(model)?.token_variable),
    };
    Ok(token.and_then(|token| {
        let jwks = Jwks::fetch(&jwks_url, http)?;
        oidc::verify(
            &token,
            &jwks,
            &Expectation {
                issuer: &issuer,
                audience: &audience,
                leeway_seconds: model.trust.leeway_seconds,
                now,
            },
        )
    }))
}

/// Gathers every signal. Fails only on configuration errors (platform not pinned, bad proxy).
pub fn collect(model: &TierModel, opts: &GuardOptions) -> Result<Signals, TierModelError> {
    let platform = opts.request.platform;
    let http = Http::from_trust(&model.trust)?;
    let now = now_or_clock(opts.now);
    let token = match verified_token(model, platform, &opts.env, &http, now)? {
        Ok(claims) => TokenSignal::Verified(claims),
        Err(e) if e.is_unavailable() => TokenSignal::Unavailable(e.to_string()),
        Err(e) => TokenSignal::Rejected(e.to_string()),
    };
    let claims = match &token {
        TokenSignal::Verified(c) => Some(c),
        _ => None,
    };
    let off = "platform API lookups are turned off";
    let (runner, environment_protection) = if !opts.use_platform_api {
        (
            ApiSignal::NotAsked(off.into()),
            ApiSignal::NotAsked(off.into()),
        )
    } else {
        match platform {
            Platform::GitHub => github_api(model, opts, claims, &http)?,
            Platform::GitLab => {
                let gl = gitlab_trust(model)?;
                let runner = match opts.env.secret(env::CI_JOB_TOKEN) {
                    None => ApiSignal::NotAsked(format!("{} is not set", env::CI_JOB_TOKEN)),
                    Some(job_token) => {
                        match platform::gitlab_job_runner(&gl.api_url(), &job_token, &http) {
                            Ok(r) => ApiSignal::Answered(r),
                            Err(e) => ApiSignal::Failed(e.to_string()),
                        }
                    }
                };
                (
                    runner,
                    ApiSignal::NotAsked("GitLab states environment protection in the token".into()),
                )
            }
        }
    };
    let probe = LocalProbe {
        root: opts.root.clone(),
        env: opts.env.clone(),
        metadata_endpoint: Some(
            opts.metadata_endpoint
                .unwrap_or(model.local.metadata_endpoint),
        ),
        probe_timeout: Duration::from_millis(model.local.probe_timeout_ms),
    };
    Ok(Signals {
        token,
        runner,
        environment_protection,
        variables: Variables::read(platform, &opts.env),
        local: probe.gather(),
    })
}

type GitHubApi = (ApiSignal<RunnerInfo>, ApiSignal<EnvironmentProtection>);

fn github_api(
    model: &TierModel,
    opts: &GuardOptions,
    claims: Option<&Claims>,
    http: &Http,
) -> Result<GitHubApi, TierModelError> {
    let gh = github_trust(model)?;
    let Some(claims) = claims else {
        let why = "no verified token: the job id to ask about would come from a spoofable variable";
        return Ok((
            ApiSignal::NotAsked(why.into()),
            ApiSignal::NotAsked(why.into()),
        ));
    };
    let Some(api_token) = opts.env.secret(env::GITHUB_TOKEN) else {
        let why = format!("{} is not set", env::GITHUB_TOKEN);
        return Ok((ApiSignal::NotAsked(why.clone()), ApiSignal::NotAsked(why)));
    };
    let runner = match claims.string("check_run_id") {
        None => ApiSignal::NotAsked("the verified token has no `check_run_id` claim".into()),
        Some(job_id) => {
            match platform::github_job_runner(
                &gh.api_url,
                &gh.repository,
                &job_id,
                &api_token,
                http,
            ) {
                Ok(r) => ApiSignal::Answered(r),
                Err(e) => ApiSignal::Failed(e.to_string()),
            }
        }
    };
    let environment = claims.string("environment");
    let wants_protection = environment
        .as_deref()
        .and_then(|e| model.tier_for_environment(e))
        .is_some_and(|t| t.require_protected_environment);
    let protection = match environment {
        Some(name) if wants_protection => match platform::github_environment_protection(
            &gh.api_url,
            &gh.repository,
            &name,
            &api_token,
            http,
        ) {
            Ok(p) => ApiSignal::Answered(p),
            Err(e) => ApiSignal::Failed(e.to_string()),
        },
        _ => ApiSignal::NotAsked("the tier does not require a protected environment".into()),
    };
    Ok((runner, protection))
}
