//! `policy-check`: Rego policy gates over verified evidence, before the human approval
//! (`--gate pre-approval`) and before the deploy (`--gate pre-deploy`).
//!
//! The flags ([`cli::Args`]) and environment resolve into a
//! [`custody_policy::check::CheckConfig`]; custody-policy gathers facts, evaluates and
//! stores the signed decision; [`report`] says what to print (`--format json`, the whole
//! document, or `--format table`, a short plain-text table for a job log), writes the
//! document to `--output FILE` when asked, and what to tell the CI platform (step
//! summary, annotations, outputs, dotenv report). The binary only parses and writes.
//!
//! Exit codes: 0 allow, 1 deny, 2 error (bad flags, unreadable policy or input, an
//! unreachable store or platform API) — distinct, so a pipeline can tell a policy
//! denial from a broken gate.

pub mod cli;

use anyhow::{Context as _, bail};
use std::sync::Arc;

use custody_evidence::Signer;
use custody_platform::context::Env;
use custody_platform::step::{self, Report};
use custody_platform::{env_vars as v, files, keyfiles, stores};
use custody_policy::check::{self, CheckConfig, PlatformSource, RecordSettings};
use custody_policy::facts::Secret;
use custody_policy::facts::cosign::CosignConfig;
use custody_policy::facts::github::GitHubConfig;
use custody_policy::facts::gitlab::{GitLabConfig, TokenKind};
use custody_policy::{Decision, Gate, PolicyInput, PolicySet, Verdict, schema};

use crate::cli::{Args, FormatArg, PlatformArg, SchemaArg};

pub const EXIT_ALLOW: u8 = 0;
pub const EXIT_DENY: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Runs the gate the flags describe: what to print and tell the platform, and the exit
/// code ([`EXIT_ALLOW`], [`EXIT_DENY`]; an error is [`EXIT_ERROR`]).
pub fn run(args: &Args, env: &dyn Env) -> anyhow::Result<(Report, u8)> {
    if let Some(which) = args.print_schema {
        let schema = match which {
            SchemaArg::Input => schema::input_schema(),
            SchemaArg::Decision => schema::decision_schema(),
        };
        let stdout = format!("{schema}\n");
        return Ok((
            Report {
                stdout,
                ..Report::default()
            },
            EXIT_ALLOW,
        ));
    }
    let gate: Gate = args
        .gate
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(anyhow::Error::msg)?;
    let policies = PolicySet::load(&args.policies, &args.data, false)?;
    let rt = step::runtime().map_err(anyhow::Error::msg)?;

    if let Some(path) = &args.input {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let input: PolicyInput = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{}: not a policy input document (see --print-schema input)",
                path.display()
            )
        })?;
        let mut decision = check::decide(&policies, &input)?;
        if !args.no_record {
            bail!(
                "--input evaluates a given document; pass --no-record (a decision on a hand-made input is not evidence)"
            );
        }
        decision.record = None;
        return Ok(report(args, &decision));
    }

    let context = step::context(env, &args.context, None, args.environment.as_deref());
    let environment = args
        .environment
        .clone()
        .or_else(|| context.environment.clone());
    let subject = args.subject.clone().unwrap_or_default();
    if args.trusted_keys.is_empty() {
        bail!("pass --trusted-key with the public key(s) evidence records are signed with");
    }
    let trusted_keys =
        keyfiles::read_trusted_keys(&args.trusted_keys).context("reading --trusted-key")?;
    let net = stores::net(env, &args.tls.ca_file)?;
    let cosign = if args.cosign_keys.is_empty() {
        None
    } else {
        Some(CosignConfig {
            keys: keyfiles::read_trusted_keys(&args.cosign_keys)
                .context("reading --cosign-key")?
                .keys()
                .to_vec(),
            registry_url: args.registry_url.clone(),
            username: env.var(v::CUSTODY_REGISTRY_USERNAME),
            password: env.var(v::CUSTODY_REGISTRY_PASSWORD).map(Secret::new),
            net: net.clone(),
        })
    };
    let attestations = match &args.trusted_root {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("{}: cannot read the trusted root: {e}", path.display())
            })?;
            let root = custody_evidence::keyless::TrustedRoot::from_json(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let repository = args
                .repository
                .clone()
                .or_else(|| env.var(v::GITHUB_REPOSITORY))
                .context("--trusted-root reads GitHub attestations: pass --repository or set GITHUB_REPOSITORY")?;
            Some(custody_policy::facts::attestations::AttestationsConfig {
                github: GitHubConfig {
                    api_url: args.github_api_url.clone(),
                    token: github_token(env),
                    repository,
                    run_id: None,
                    commit: None,
                    environment: String::new(),
                    net: net.clone(),
                },
                root: Arc::new(root),
            })
        }
    };
    let platform = platform(args, env, &context, environment.as_deref(), &net)?;
    let record = if args.no_record || args.print_input {
        None
    } else {
        Some(RecordSettings {
            key: signing_key(env, args)?,
            keyid_scheme: args.record.keyid_scheme,
            retention: args.record.retention().map_err(anyhow::Error::msg)?,
        })
    };
    let cfg = CheckConfig {
        gate,
        subject,
        environment,
        trusted_keys,
        policies,
        context,
        platform,
        cosign,
        attestations,
        record,
        now: jiff::Timestamp::now(),
    };
    let log_signer = match &args.log_signing_key {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("{}: cannot read the log signing key: {e}", path.display())
            })?;
            Some(
                custody_store::log::LogSigner::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let mut stderr = Vec::new();
    let (mut report, code) = rt.block_on(async {
        let store = if cfg.record.is_some() || log_signer.is_some() {
            stores::create(&args.store, env, &args.tls.ca_file)
        } else {
            stores::open(&args.store, env, &args.tls.ca_file)
        }
        .with_context(|| format!("opening store {}", args.store))?;
        if let Some(signer) = &log_signer {
            use custody_store::EvidenceStore as _;
            let retention = args.record.retention().map_err(anyhow::Error::msg)?;
            let outcome = custody_store::log::checkpoint(&store, signer, &retention)
                .await
                .with_context(|| format!("checkpointing the log of {}", store.uri()))?;
            stderr.push(format!(
                "policy-check: log checkpoint of {} entries ({} new) signed for {}",
                outcome.checkpoint.size,
                outcome.checkpoint.size - outcome.previous,
                store.uri()
            ));
        }
        if args.print_input {
            let (input, problems) = check::gather_input(&cfg, &store).await?;
            stderr.extend(problems.iter().map(|p| format!("policy-check: {p}")));
            let stdout = format!("{}\n", serde_json::to_string_pretty(&input)?);
            return anyhow::Ok((
                Report {
                    stdout,
                    ..Report::default()
                },
                EXIT_ALLOW,
            ));
        }
        let outcome = check::run(&cfg, &store).await?;
        stderr.extend(
            outcome
                .problems
                .iter()
                .map(|p| format!("policy-check: {p}")),
        );
        let (mut rep, mut code) = report(args, &outcome.decision);
        if let Some((digest, envelope)) = &outcome.vsa {
            rep.stderr
                .push(format!("policy-check: verification summary (VSA) record {digest}"));
            rep.github.push(("vsa-record", digest.to_string()));
            if let Some(path) = &args.vsa
                && let Err(e) = files::write_atomically(path, envelope)
            {
                let message = format!(
                    "writing --vsa {}: {e}; the decision ({}) and its VSA are stored, but the step fails",
                    path.display(),
                    outcome.decision.decision.as_str()
                );
                rep.errors.push((None, message.clone()));
                rep.stderr.push(format!("policy-check: error: {message}"));
                code = EXIT_ERROR;
            }
        }
        Ok((rep, code))
    })?;
    // what happened on the way (the checkpoint, unreadable facts) before the verdict
    stderr.append(&mut report.stderr);
    report.stderr = stderr;
    Ok((report, code))
}

fn signing_key(env: &dyn Env, args: &Args) -> anyhow::Result<Arc<dyn Signer>> {
    step::signer(
        env,
        args.signing_key.as_deref(),
        &args.tsa.tsa,
        &args.tls.ca_file,
    )
        .map_err(anyhow::Error::msg)?
        .context(
            "no key to sign the decision record: pass --signing-key FILE|URI, set CUSTODY_SIGNING_KEY or CUSTODY_SIGNING_KEY_PEM, or --no-record",
        )
}

/// The GitHub token: CUSTODY_GITHUB_TOKEN, else GITHUB_TOKEN.
fn github_token(env: &dyn Env) -> Option<Secret> {
    env.var(v::CUSTODY_GITHUB_TOKEN)
        .or_else(|| env.var(v::GITHUB_TOKEN))
        .map(Secret::new)
}

fn platform(
    args: &Args,
    env: &dyn Env,
    context: &custody_evidence::PipelineContext,
    environment: Option<&str>,
    net: &custody_http::net::Net,
) -> anyhow::Result<PlatformSource> {
    if let Some(p) = &args.approvals {
        return Ok(PlatformSource::File(p.clone()));
    }
    let which = match args.platform {
        PlatformArg::Auto if env.var(v::GITHUB_ACTIONS).as_deref() == Some("true") => {
            PlatformArg::Github
        }
        PlatformArg::Auto if env.var(v::GITLAB_CI).as_deref() == Some("true") => {
            PlatformArg::Gitlab
        }
        PlatformArg::Auto => PlatformArg::None,
        other => other,
    };
    let environment = environment.unwrap_or_default().to_owned();
    Ok(match which {
        PlatformArg::Github => {
            let repository = args
                .repository
                .clone()
                .or_else(|| env.var(v::GITHUB_REPOSITORY))
                .context("GitHub facts need --repository or GITHUB_REPOSITORY")?;
            let run_id = match args.run_id {
                Some(id) => Some(id),
                None => env
                    .var(v::GITHUB_RUN_ID)
                    .map(|s| s.parse::<u64>())
                    .transpose()
                    .context("GITHUB_RUN_ID is not a number")?,
            };
            PlatformSource::GitHub(GitHubConfig {
                api_url: args.github_api_url.clone(),
                token: github_token(env),
                repository,
                run_id,
                commit: context.commit.clone(),
                environment,
                net: net.clone(),
            })
        }
        PlatformArg::Gitlab => {
            let api_url = args
                .gitlab_api_url
                .clone()
                .context("GitLab facts need --gitlab-api-url or CI_API_V4_URL")?;
            let project = args
                .gitlab_project
                .clone()
                .or_else(|| env.var(v::CI_PROJECT_ID))
                .or_else(|| env.var(v::CI_PROJECT_PATH))
                .context("GitLab facts need --gitlab-project, CI_PROJECT_ID or CI_PROJECT_PATH")?;
            let token = env
                .var(v::CUSTODY_GITLAB_TOKEN)
                .map(|t| (TokenKind::Private, Secret::new(t)))
                .or_else(|| {
                    env.var(v::CI_JOB_TOKEN)
                        .map(|t| (TokenKind::Job, Secret::new(t)))
                });
            PlatformSource::GitLab(GitLabConfig {
                api_url,
                token,
                project,
                deployment_id: args.gitlab_deployment,
                job_id: env.var(v::CI_JOB_ID).and_then(|s| s.parse().ok()),
                commit: context.commit.clone(),
                environment,
                net: net.clone(),
            })
        }
        PlatformArg::None | PlatformArg::Auto => PlatformSource::None,
    })
}

/// What to print and tell the platform about `decision`, and the exit code. Writes
/// `--output` first.
///
/// The decision is made (and maybe stored) by now, so a `--output` that cannot be
/// written does not hide it: the decision is still printed and reported to the
/// platform, and only then does the step fail with the error.
pub fn report(args: &Args, decision: &Decision) -> (Report, u8) {
    let mut out = Report::default();
    let json = match serde_json::to_string_pretty(decision) {
        Ok(s) => format!("{s}\n"),
        Err(e) => {
            out.stderr.push(format!("policy-check: error: {e}"));
            return (out, EXIT_ERROR);
        }
    };
    let written = args.output.as_deref().map(|path| {
        files::write_atomically(path, json.as_bytes())
            .map(|()| path)
            .map_err(|e| (path, e))
    });
    out.stdout = match args.format {
        FormatArg::Json => json,
        FormatArg::Table => {
            let mut text = decision.to_text();
            if let Some(Ok(path)) = &written {
                text.push_str(&format!("decision document (JSON) in {}\n", path.display()));
            }
            text
        }
    };
    for r in decision.failures() {
        out.errors.push((
            None,
            format!(
                "policy {} failed (HIPAA §{}): {}",
                r.id, r.control, r.message
            ),
        ));
    }
    out.summary = decision.to_markdown();
    out.dotenv = decision.outputs();
    out.github = out
        .dotenv
        .iter()
        .map(|(k, val)| {
            let key = match *k {
                "CUSTODY_POLICY_DECISION" => "decision",
                "CUSTODY_POLICY_GATE" => "gate",
                "CUSTODY_POLICY_FAILED" => "failed",
                "CUSTODY_POLICY_RECORD" => "record",
                _ => "policy-digest",
            };
            (key, val.clone())
        })
        .collect();
    // the table's first line says the same on stdout: once is enough in a job log
    if args.format == FormatArg::Json {
        let failed = decision.failures().count();
        out.stderr.push(format!(
            "policy-check {}: {} ({} rules, {failed} failed){}",
            decision.gate,
            decision.decision.as_str(),
            decision.rules.len(),
            decision
                .record
                .as_deref()
                .map_or_else(String::new, |r| format!("; decision record {r}"))
        ));
    }
    if let Some(Err((path, e))) = written {
        let message = format!(
            "writing --output {}: {e}; the decision above ({}) stands, but the step fails: fix the path or drop --output",
            path.display(),
            decision.decision.as_str()
        );
        out.errors.push((None, message.clone()));
        out.stderr.push(format!("policy-check: error: {message}"));
        return (out, EXIT_ERROR);
    }
    let code = match decision.decision {
        Verdict::Allow => EXIT_ALLOW,
        Verdict::Deny => EXIT_DENY,
    };
    (out, code)
}
