//! Judging the signals against the tier model: pure, no I/O.

use super::identity::{Admit, admits, describe, identity, weakest};
use super::*;

pub(super) struct Judge<'a> {
    pub(super) model: &'a TierModel,
    pub(super) platform: Platform,
    pub(super) claims: Option<&'a Claims>,
    pub(super) signals: &'a Signals,
    pub(super) checks: Vec<Check>,
    /// Whether missing signals fail (true when the tier requires verification, or is unknown).
    pub(super) strict: bool,
}

impl Judge<'_> {
    pub(super) fn claim(&self, name: &str) -> Option<String> {
        self.claims.and_then(|c| c.string(name))
    }

    fn claim_bool(&self, name: &str) -> Option<bool> {
        self.claims.and_then(|c| c.boolean(name))
    }

    /// A signal the check needs is missing: fail for want of trust on strict tiers, else warn.
    fn missing(&mut self, id: &str, source: Source, reason: String) {
        self.checks.push(if self.strict {
            Check::untrusted(id, source, reason)
        } else {
            Check::warn(id, source, reason)
        });
    }

    /// A required boolean property.
    fn require(&mut self, id: &str, what: &str, fact: Fact<bool>, missing: &str) {
        match fact {
            Some((true, s)) => self.checks.push(Check::pass(id, s, format!("{what}: yes"))),
            Some((false, s)) => self.checks.push(Check::fail(id, s, format!("{what}: no"))),
            None => self.missing(id, Source::VerifiedToken, missing.to_owned()),
        }
    }

    /// A hardening property: `bad` is the violation (if any); required violations fail,
    /// optional ones warn.
    fn hardening(&mut self, id: &str, required: bool, bad: Option<Option<String>>, ok: &str) {
        match bad {
            Some(None) => self.checks.push(Check::pass(id, Source::LocalKernel, ok)),
            Some(Some(why)) if required => {
                self.checks.push(Check::fail(id, Source::LocalKernel, why))
            }
            Some(Some(why)) => self.checks.push(Check::warn(
                id,
                Source::LocalKernel,
                format!("{why} (not required for this tier)"),
            )),
            None if required => self.missing(
                id,
                Source::LocalKernel,
                self.signals
                    .local
                    .status_error
                    .clone()
                    .unwrap_or_else(|| "the local fact could not be established".into()),
            ),
            None => self.checks.push(Check::warn(
                id,
                Source::LocalKernel,
                "could not be established (not required for this tier)",
            )),
        }
    }
}

/// Judges `signals` against the tier model. Pure: no I/O.
pub fn evaluate(model: &TierModel, request: &Request, signals: &Signals) -> Report {
    let platform = request.platform;
    let claims = match &signals.token {
        TokenSignal::Verified(c) => Some(c),
        _ => None,
    };
    let mut j = Judge {
        model,
        platform,
        claims,
        signals,
        checks: Vec::new(),
        strict: true,
    };

    // Environment and tier.
    let verified_env = claims.and_then(|c| c.string("environment"));
    let variable_env = signals
        .variables
        .environment
        .clone()
        .or_else(|| request.environment.clone());
    let environment: Fact<String> = if claims.is_some() {
        verified_env.clone().map(|e| (e, Source::VerifiedToken))
    } else {
        variable_env
            .clone()
            .map(|e| (e, Source::UnverifiedVariable))
    };
    let tier = resolve_tier(
        &mut j,
        request,
        environment.as_ref(),
        variable_env.as_deref(),
    );
    j.strict = request.require_verified || tier.is_none_or(|t| t.require_verified);

    token_check(&mut j);
    repository_check(&mut j);
    if let Some(tier) = tier {
        tier_checks(
            &mut j,
            tier,
            environment.as_ref(),
            request.for_environment.as_deref(),
        );
    }
    local_checks(&mut j, tier);

    // require_verified: a pass that rests only on a variable is not good enough.
    if j.strict {
        for c in &mut j.checks {
            if c.status == Status::Pass && c.source == Source::UnverifiedVariable {
                c.status = Status::Fail;
                c.untrusted = true;
                c.reason = format!(
                    "rests only on a CI variable an earlier step could set (the tier requires verified signals): {}",
                    c.reason
                );
            }
        }
    }
    let checks = j.checks;
    let outcome = Report::outcome_of(&checks);
    let runner = signals.runner.answered().cloned();
    Report {
        schema: REPORT_SCHEMA,
        platform: platform.as_str(),
        tier: tier.map(|t| t.name.clone()),
        environment: environment.map(|(e, _)| e),
        require_verified: j.strict,
        tier_model_digest: model.digest().to_owned(),
        outcome,
        exit_code: outcome.exit_code(),
        checks,
        claims: claims.cloned(),
        runner,
        local: signals.local.clone(),
    }
}

fn resolve_tier<'m>(
    j: &mut Judge<'m>,
    request: &Request,
    environment: Option<&(String, Source)>,
    variable_env: Option<&str>,
) -> Option<&'m Tier> {
    let model = j.model;
    let id = "tier";
    if let (Some((verified, Source::VerifiedToken)), Some(asked)) = (environment, variable_env)
        && verified != asked
    {
        j.checks.push(Check::fail(
            id,
            Source::VerifiedToken,
            format!(
                "the job claims environment `{asked}` but its verified token says `{verified}`"
            ),
        ));
        return None;
    }
    if j.claims.is_some()
        && environment.is_none()
        && let Some(asked) = variable_env
    {
        j.checks.push(Check::fail(
            id,
            Source::VerifiedToken,
            format!(
                "the job claims environment `{asked}` but its verified token names no environment"
            ),
        ));
        return None;
    }
    // A gate job that turns out to deploy somewhere else is judged by neither environment.
    if let Some(gated) = request.for_environment.as_deref()
        && let Some((own, source)) = environment
        && own != gated
    {
        let says = if *source == Source::VerifiedToken {
            "its verified token says"
        } else {
            "its CI variables say"
        };
        j.checks.push(Check::fail(
            id,
            *source,
            format!("the job gates environment `{gated}` but {says} `{own}`"),
        ));
        return None;
    }
    let none_source = if j.claims.is_some() {
        Source::VerifiedToken
    } else {
        Source::UnverifiedVariable
    };
    let (tier, source, why) = match (environment, request.for_environment.as_deref()) {
        (Some((env, source)), _) => match model.tier_for_environment(env) {
            Some(t) => (
                t,
                *source,
                format!("environment `{env}` belongs to tier `{}`", t.name),
            ),
            None => {
                j.checks.push(Check::fail(
                    id,
                    *source,
                    format!("environment `{env}` is not in the tier model: map it to a tier under `environments`"),
                ));
                return None;
            }
        },
        (None, Some(gated)) => match model.tier_for_environment(gated) {
            Some(t) => (
                t,
                none_source,
                format!(
                    "the job has no environment; gating environment `{gated}`, which belongs to tier `{}`",
                    t.name
                ),
            ),
            None => {
                j.checks.push(Check::fail(
                    id,
                    none_source,
                    format!("the gated environment `{gated}` is not in the tier model: map it to a tier under `environments`"),
                ));
                return None;
            }
        },
        (None, None) => {
            let name = request.tier.as_deref().or(model.default_tier.as_deref());
            match name.and_then(|n| model.tier(n)) {
                Some(t) => (
                    t,
                    none_source,
                    format!("the job has no environment; judged as tier `{}`", t.name),
                ),
                None => {
                    j.checks.push(Check::fail(
                        id,
                        none_source,
                        match name {
                            Some(n) => format!("unknown tier `{n}`: define it in the tier model"),
                            None => "the job has no environment and the tier model has no `default_tier`: set one, or pass the expected tier".into(),
                        },
                    ));
                    return None;
                }
            }
        }
    };
    if let Some(asked) = &request.tier
        && asked != &tier.name
    {
        j.checks.push(Check::fail(
            id,
            source,
            format!("the job expects tier `{asked}`, but {why}"),
        ));
        return None;
    }
    j.checks.push(Check::pass(id, source, why));
    Some(tier)
}

fn token_check(j: &mut Judge<'_>) {
    let id = "oidc-token";
    match &j.signals.token {
        TokenSignal::Verified(c) => {
            let iss = c.string("iss").unwrap_or_default();
            j.checks.push(Check::pass(
                id,
                Source::VerifiedToken,
                format!(
                    "signed by the pinned issuer `{iss}`; audience, expiry and not-before hold"
                ),
            ));
        }
        TokenSignal::Rejected(reason) => {
            j.checks.push(Check::fail(
                id,
                Source::VerifiedToken,
                format!("token refused: {reason}"),
            ));
        }
        TokenSignal::Unavailable(reason) => j.missing(
            id,
            Source::VerifiedToken,
            format!("no verified token: {reason}"),
        ),
    }
}

fn repository_check(j: &mut Judge<'_>) {
    let id = "repository";
    let (expected, claim) = match j.platform {
        Platform::GitHub => (
            j.model
                .trust
                .github
                .as_ref()
                .map(|g| g.repository_id.clone()),
            "repository_id",
        ),
        Platform::GitLab => (
            j.model.trust.gitlab.as_ref().map(|g| g.project_id.clone()),
            "project_id",
        ),
    };
    let Some(expected) = expected else {
        return;
    };
    match fact(j.claim(claim), j.signals.variables.repository_id.clone()) {
        Some((found, s)) if found == expected => {
            j.checks.push(Check::pass(id, s, format!("`{claim}` is {found}, as pinned")));
        }
        Some((found, s)) => j.checks.push(Check::fail(
            id,
            s,
            format!("`{claim}` is {found}, but the tier model pins {expected}: a token of another repository or project is refused"),
        )),
        None => j.missing(id, Source::VerifiedToken, format!("`{claim}` is unknown")),
    }
}

fn tier_checks(
    j: &mut Judge<'_>,
    tier: &Tier,
    environment: Option<&(String, Source)>,
    gated: Option<&str>,
) {
    if tier.require_protected_ref {
        let f = fact(
            j.claim_bool("ref_protected"),
            j.signals.variables.ref_protected,
        );
        j.require(
            "protected-ref",
            "the ref is protected",
            f,
            "whether the ref is protected is unknown (no verified token, no variable)",
        );
    }
    if tier.require_protected_environment {
        match (environment, gated) {
            // a gate job before the deployment has no environment of its own (naming it
            // would ask for the approval it gates): the deploy job's runner-guard and
            // policy-check's environment-protected rule check the gated one's protection
            (None, Some(gated)) => j.checks.push(Check::warn(
                "protected-environment",
                Source::LocalKernel,
                format!(
                    "the job gates environment `{gated}` without deploying to it: the deploy job's runner-guard checks that `{gated}` is protected"
                ),
            )),
            _ => protected_environment(j, environment),
        }
    }
    let runner_env = fact(
        j.claim("runner_environment"),
        j.signals.variables.runner_environment.clone(),
    )
    .and_then(|(v, s)| RunnerEnvironment::parse(&v).map(|e| (e, s)));
    if let Some(want) = tier.runner_environment {
        let id = "runner-environment";
        match runner_env {
            Some((got, s)) if want.admits(got) => j.checks.push(Check::pass(
                id,
                s,
                format!("runner environment is `{}`", got.as_str()),
            )),
            Some((got, s)) => j.checks.push(Check::fail(
                id,
                s,
                format!(
                    "runner environment is `{}`, tier `{}` requires `{}`",
                    got.as_str(),
                    tier.name,
                    want.as_str()
                ),
            )),
            None => j.missing(
                id,
                Source::VerifiedToken,
                "the runner environment is unknown".into(),
            ),
        }
    }
    runner_checks(j, tier, runner_env.map(|(e, _)| e));
    if tier.require_ephemeral {
        let id = "ephemeral-runner";
        match runner_env {
            Some((e, s)) if e.is_hosted() => j.checks.push(Check::pass(
                id,
                s,
                format!("`{}` runners are fresh virtual machines per job", e.as_str()),
            )),
            // No in-job signal says whether a self-hosted runner is ephemeral (the runners API
            // needs admin rights): say so in the evidence rather than block every deploy.
            Some((RunnerEnvironment::SelfHosted, _)) => j.checks.push(Check::warn(
                id,
                Source::PlatformApi,
                "a self-hosted runner's ephemerality cannot be verified from inside the job: register runners as ephemeral (GitHub `--ephemeral`, GitLab autoscaler with one build per instance) and audit them with `custody runners audit`",
            )),
            _ => j.missing(
                id,
                Source::VerifiedToken,
                "the runner environment is unknown, so ephemerality cannot be judged".into(),
            ),
        }
    }
    if let Some(want) = &tier.gitlab_deployment_tier
        && j.platform == Platform::GitLab
    {
        let id = "deployment-tier";
        match fact(
            j.claim("deployment_tier"),
            j.signals.variables.deployment_tier.clone(),
        ) {
            Some((got, s)) if &got == want => {
                j.checks
                    .push(Check::pass(id, s, format!("deployment tier is `{got}`")));
            }
            Some((got, s)) => j.checks.push(Check::fail(
                id,
                s,
                format!(
                    "deployment tier is `{got}`, tier `{}` requires `{want}`",
                    tier.name
                ),
            )),
            None => j.missing(
                id,
                Source::VerifiedToken,
                "the deployment tier is unknown".into(),
            ),
        }
    }
    cloud_identity(j, tier);
}

fn protected_environment(j: &mut Judge<'_>, environment: Option<&(String, Source)>) {
    let id = "protected-environment";
    let Some((name, _)) = environment else {
        j.checks.push(Check::fail(
            id,
            Source::LocalKernel,
            "the job references no environment, but its tier requires a protected one",
        ));
        return;
    };
    match j.platform {
        Platform::GitLab => {
            let f = j.claim_bool("environment_protected").map(|b| (b, Source::VerifiedToken));
            j.require(
                id,
                &format!("environment `{name}` is protected"),
                f,
                "whether the environment is protected is unknown (GitLab states it only in the verified token)",
            );
        }
        Platform::GitHub => match &j.signals.environment_protection {
            ApiSignal::Answered(p) if p.is_protected() => {
                let mut reason = format!("environment `{name}` has");
                if p.required_reviewers {
                    reason.push_str(" required reviewers");
                }
                if p.required_reviewers && p.branch_policy {
                    reason.push_str(" and");
                }
                if p.branch_policy {
                    reason.push_str(" a deployment branch policy");
                }
                if p.can_admins_bypass == Some(true) {
                    j.checks.push(Check::warn(
                        id,
                        Source::PlatformApi,
                        format!("{reason}, but administrators can bypass it"),
                    ));
                } else {
                    j.checks.push(Check::pass(id, Source::PlatformApi, reason));
                }
            }
            ApiSignal::Answered(_) => j.checks.push(Check::fail(
                id,
                Source::PlatformApi,
                format!("environment `{name}` has neither required reviewers nor a deployment branch policy"),
            )),
            other => {
                let why = format!("environment protection is unknown: {}", other.why_not());
                j.missing(id, Source::PlatformApi, why);
            }
        },
    }
}

fn runner_checks(j: &mut Judge<'_>, tier: &Tier, runner_env: Option<RunnerEnvironment>) {
    let who = identity(j);
    let selector_empty = match j.platform {
        Platform::GitHub => tier.runners.github.is_empty(),
        Platform::GitLab => tier.runners.gitlab.is_empty(),
    };
    // GitLab: the API's runner must be the token's runner.
    if j.platform == Platform::GitLab
        && let (Some(claimed), Some(api_id)) = (
            j.claim("runner_id").and_then(|v| v.parse::<u64>().ok()),
            j.signals.runner.answered().and_then(|r| r.id),
        )
        && claimed != api_id
    {
        j.checks.push(Check::fail(
            "runner",
            Source::PlatformApi,
            format!(
                "the token names runner {claimed} but the API says the job runs on runner {api_id}"
            ),
        ));
        return;
    }
    let id = "runner";
    if selector_empty {
        // Validation only allows this for platform-hosted tiers; runner-environment covers it.
        j.checks.push(Check::pass(
            id,
            Source::LocalKernel,
            format!(
                "tier `{}` admits any platform-hosted runner (see runner-environment)",
                tier.name
            ),
        ));
    } else {
        match admits(tier, j.platform, &who) {
            Admit::Yes(s) => j.checks.push(Check::pass(
                id,
                s,
                format!("{} is allowed in tier `{}`", describe(&who), tier.name),
            )),
            Admit::No(why, s) => j.checks.push(Check::fail(id, s, why)),
            Admit::Unknown(why) => {
                let api = j.signals.runner.why_not().to_owned();
                let reason = if api.is_empty() {
                    why
                } else {
                    format!("{why}: {api}")
                };
                j.missing(id, Source::PlatformApi, reason);
            }
        }
    }
    // A runner may serve one tier only: no other tier may admit it.
    let others: Vec<String> = j
        .model
        .tiers
        .values()
        .filter(|t| t.name != tier.name)
        .filter(|t| {
            let empty = match j.platform {
                Platform::GitHub => t.runners.github.is_empty(),
                Platform::GitLab => t.runners.gitlab.is_empty(),
            };
            let env_ok = match (t.runner_environment, runner_env) {
                (Some(want), Some(got)) => want.admits(got),
                _ => true,
            };
            !empty && env_ok && matches!(admits(t, j.platform, &who), Admit::Yes(_))
        })
        .map(|t| format!("`{}`", t.name))
        .collect();
    if !others.is_empty() {
        j.checks.push(Check::fail(
            "runner-single-tier",
            weakest(
                [
                    who.name.as_ref().map(|f| f.1),
                    who.group.as_ref().map(|f| f.1),
                    who.id.as_ref().map(|f| f.1),
                ]
                .into_iter()
                .flatten(),
            ),
            format!(
                "{} is also admitted by tier(s) {}: a runner may serve one tier only",
                describe(&who),
                others.join(", ")
            ),
        ));
    }
}

fn cloud_identity(j: &mut Judge<'_>, tier: &Tier) {
    let id = "cloud-identity";
    let Some(role) = j.signals.variables.aws_role_arn.clone() else {
        if !tier.cloud_identities.is_empty() {
            j.checks.push(Check::warn(
                id,
                Source::UnverifiedVariable,
                "AWS_ROLE_ARN is not set: the tier's cloud identities are enforced only by the roles' trust policies on OIDC claims",
            ));
        }
        return;
    };
    let owner = j.model.tier_of_aws_role(&role);
    match owner {
        Some(t) if t.name != tier.name => j.checks.push(Check::fail(
            id,
            Source::UnverifiedVariable,
            format!("AWS_ROLE_ARN `{role}` belongs to tier `{}`, not `{}`", t.name, tier.name),
        )),
        Some(_) => j.checks.push(Check::warn(
            id,
            Source::UnverifiedVariable,
            format!("AWS_ROLE_ARN `{role}` is allowed for this tier; a variable proves nothing, the role's trust policy on OIDC claims must enforce it"),
        )),
        None if aws_role_account(&role).is_none() => j.checks.push(Check::fail(
            id,
            Source::UnverifiedVariable,
            format!("AWS_ROLE_ARN `{role}` is not an IAM role ARN"),
        )),
        None => j.checks.push(Check::fail(
            id,
            Source::UnverifiedVariable,
            format!("AWS_ROLE_ARN `{role}` is not among the cloud identities of tier `{}`", tier.name),
        )),
    }
}

fn local_checks(j: &mut Judge<'_>, tier: Option<&Tier>) {
    // An unknown tier is judged as strictly as a production tier.
    let h = tier.map(|t| t.hardening);
    let req = |f: fn(&crate::tier::Hardening) -> bool| h.as_ref().is_none_or(f);
    let local = j.signals.local.clone();
    let status = local.status.as_ref();

    let privileged = status.and_then(|s| s.privileged.map(|p| (p, s)));
    j.hardening(
        "no-privileged-capabilities",
        req(|h| h.no_privileged_capabilities),
        privileged.map(|(p, s)| {
            p.then(|| {
                format!(
                    "the guard runs privileged: CapEff {} holds CAP_SYS_ADMIN or the full set",
                    s.cap_eff.clone().unwrap_or_default()
                )
            })
        }),
        &match status.map(|s| s.dangerous_capabilities.as_slice()) {
            Some(caps) if !caps.is_empty() => {
                format!("not privileged, though CapEff holds {}", caps.join(", "))
            }
            _ => "no privileged capabilities in CapEff".into(),
        },
    );
    j.hardening(
        "no-root",
        req(|h| h.no_root),
        status
            .and_then(|s| s.uid)
            .map(|uid| (uid == 0).then(|| "the guard runs as uid 0".to_owned())),
        &format!(
            "runs as uid {}",
            status.and_then(|s| s.uid).unwrap_or_default()
        ),
    );
    j.hardening(
        "no-container-socket",
        req(|h| h.no_container_socket),
        Some((!local.container_runtime_access.is_empty()).then(|| {
            format!(
                "container runtime reachable (root on the host): {}",
                local.container_runtime_access.join(", ")
            )
        })),
        "no container runtime socket",
    );
    let mut ambient: Vec<String> = local
        .ambient_credential_variables
        .iter()
        .map(|v| format!("${v}"))
        .collect();
    ambient.extend(local.ambient_credential_files.iter().cloned());
    if local.kubernetes_service_account_token {
        ambient.push(crate::local::KUBERNETES_SA_TOKEN.to_owned());
    }
    j.hardening(
        "no-ambient-credentials",
        req(|h| h.no_ambient_credentials),
        Some((!ambient.is_empty()).then(|| {
            format!(
                "credentials present before the job obtained its own (names only, values not read): {}",
                ambient.join(", ")
            )
        })),
        "no ambient cloud or cluster credentials",
    );
    let metadata = match &local.metadata {
        MetadataProbe::NotProbed => None,
        MetadataProbe::Unreachable { .. } => Some(None),
        MetadataProbe::Reachable {
            endpoint,
            status_line,
        } => Some(Some(format!(
            "instance metadata endpoint {endpoint} answers{}: the runner's cloud identity is reachable",
            status_line
                .as_deref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default()
        ))),
    };
    let unreachable_reason = match &local.metadata {
        MetadataProbe::Unreachable { endpoint, reason } => {
            format!("metadata endpoint {endpoint} unreachable: {reason}")
        }
        _ => String::new(),
    };
    j.hardening(
        "metadata-unreachable",
        req(|h| h.metadata_unreachable),
        metadata,
        &unreachable_reason,
    );
    j.hardening(
        "no-new-privs",
        h.is_some_and(|h| h.require_no_new_privs),
        status.and_then(|s| s.no_new_privs).map(|n| {
            (!n).then(|| "NoNewPrivs is 0: setuid binaries can raise privileges".to_owned())
        }),
        "NoNewPrivs is set",
    );
    j.hardening(
        "seccomp",
        h.is_some_and(|h| h.require_seccomp),
        status
            .and_then(|s| s.seccomp)
            .map(|m| (m == 0).then(|| "no seccomp filter".to_owned())),
        &format!(
            "seccomp mode {}",
            status.and_then(|s| s.seccomp).unwrap_or_default()
        ),
    );
}
