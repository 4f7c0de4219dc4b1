//! `custody runners audit`: every self-hosted runner as the platform sees it (GitHub
//! organization runner groups, GitLab runners), held against the tier model. For an
//! administrator's scheduled job, with an admin token from `CUSTODY_GITHUB_ADMIN_TOKEN` /
//! `CUSTODY_GITLAB_ADMIN_TOKEN`, never printed. The logic is in `custody_guard::audit`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use custody_guard::audit::fetch::{self, AuditSources, GitHubSource, GitLabSource};
use custody_guard::audit::{evaluate, to_text};
use custody_guard::{Secret, TierModel};
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::env_vars;

use crate::cli::Format;
use crate::exit::{Exit, fail};

#[derive(Debug, Args)]
pub struct RunnersArgs {
    #[command(subcommand)]
    pub command: RunnersCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunnersCommand {
    /// Flag every runner reachable from more than one tier, and every production runner that
    /// is shared or unprotected (admin token from CUSTODY_GITHUB_ADMIN_TOKEN /
    /// CUSTODY_GITLAB_ADMIN_TOKEN).
    Audit(AuditArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditPlatform {
    Github,
    Gitlab,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The tier model (the one runner-guard reads).
    #[arg(long, env = env_vars::CUSTODY_TIER_MODEL, default_value = ".custody/tiers.yaml")]
    pub tier_model: PathBuf,
    /// Audit this platform only (repeatable; default: every platform the tier model pins).
    #[arg(long = "platform", value_enum)]
    pub platforms: Vec<AuditPlatform>,
    /// GitHub organization (default: the owner of `trust.github.repository`).
    #[arg(long)]
    pub org: Option<String>,
    /// GitHub REST API base URL (default: the tier model's `trust.github.api_url`).
    #[arg(long)]
    pub github_api_url: Option<String>,
    /// GitLab instance URL (default: the tier model's `trust.gitlab.api_url`).
    #[arg(long)]
    pub gitlab_api_url: Option<String>,
    /// Timeout per request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    #[command(flatten)]
    pub tls: crate::cli::CaFileArg,
}

pub async fn run(args: RunnersArgs) -> anyhow::Result<Exit> {
    match args.command {
        RunnersCommand::Audit(a) => audit(a).await,
    }
}

fn token(env: &dyn Env, name: &str) -> anyhow::Result<Secret> {
    env.var(name).map(Secret::new).ok_or_else(|| {
        fail(
            Exit::Usage,
            format!("{name} is not set: the audit needs an administrator's token"),
        )
    })
}

async fn audit(args: AuditArgs) -> anyhow::Result<Exit> {
    let model = TierModel::load(&args.tier_model).map_err(|e| fail(Exit::Usage, e.to_string()))?;
    let wants = |p: AuditPlatform| args.platforms.is_empty() || args.platforms.contains(&p);
    let env = ProcessEnv;
    let github = match (&model.trust.github, wants(AuditPlatform::Github)) {
        (Some(gh), true) => {
            let org = match &args.org {
                Some(o) => o.clone(),
                None => gh
                    .repository
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            };
            Some(GitHubSource {
                api_url: args
                    .github_api_url
                    .clone()
                    .unwrap_or_else(|| gh.api_url.clone()),
                org,
                token: token(&env, env_vars::CUSTODY_GITHUB_ADMIN_TOKEN)?,
            })
        }
        (None, true) if args.platforms.contains(&AuditPlatform::Github) => {
            return Err(fail(
                Exit::Usage,
                format!(
                    "{}: the tier model pins no `trust.github`: nothing to audit on GitHub",
                    args.tier_model.display()
                ),
            ));
        }
        _ => None,
    };
    let gitlab = match (&model.trust.gitlab, wants(AuditPlatform::Gitlab)) {
        (Some(gl), true) => Some(GitLabSource {
            api_url: args.gitlab_api_url.clone().unwrap_or_else(|| gl.api_url()),
            token: token(&env, env_vars::CUSTODY_GITLAB_ADMIN_TOKEN)?,
        }),
        (None, true) if args.platforms.contains(&AuditPlatform::Gitlab) => {
            return Err(fail(
                Exit::Usage,
                format!(
                    "{}: the tier model pins no `trust.gitlab`: nothing to audit on GitLab",
                    args.tier_model.display()
                ),
            ));
        }
        _ => None,
    };
    let net = custody_platform::stores::net(&ProcessEnv, &args.tls.ca_file)
        .map_err(|e| fail(Exit::Usage, e.to_string()))?;
    let sources = AuditSources {
        github,
        gitlab,
        timeout: Duration::from_secs(args.timeout.max(1)),
        net,
    };
    let inventory = match fetch::collect(&sources).await {
        Ok(i) => i,
        Err(e @ fetch::FetchError::Url { .. }) => return Err(fail(Exit::Usage, e.to_string())),
        Err(e) => return Err(fail(Exit::Platform, e.to_string())),
    };
    let report = evaluate(&model, &inventory);
    match args.format {
        Format::Json => out!(
            "{}",
            serde_json::to_string_pretty(&report).context("rendering the audit as JSON")?
        ),
        Format::Table => out!("{}", to_text(&report).trim_end()),
    }
    // A failing finding is a failed verification of the runners against the model.
    Ok(if report.exit_code() == 0 {
        Exit::Ok
    } else {
        Exit::Verify
    })
}
