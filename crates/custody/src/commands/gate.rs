//! `custody gate`: the deploy gate as the platforms' enforcement point
//! (`custody_gate`).
//!
//! - `custody gate serve --config FILE`: the GitHub App for custom deployment
//!   protection rules, and the GitLab job-event webhook, as a long-running service.
//! - `custody gate gitlab-approve --config FILE --project P --deployment ID`: judge one
//!   blocked GitLab deployment and approve or reject it as the service account (exit 0
//!   approved, 1 rejected).
//!
//! This module resolves the configuration file and the environment into the library's
//! explicit settings; secrets come only from the environment or files, never the
//! command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use custody_gate::config::{Config, env as gate_env};
use custody_gate::github::App;
use custody_gate::gitlab::GitLab;
use custody_gate::judge::{Judge, Settings};
use custody_gate::serve::{Limits, Service};
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::{env_vars, keyfiles, step, stores};
use custody_policy::PolicySet;
use custody_policy::check::RecordSettings;
use custody_policy::facts::Secret;

use crate::exit::{Exit, fail};

#[derive(Debug, Subcommand)]
pub enum GateCommand {
    /// Serve the gate: the GitHub App's webhook (`POST /github`), GitLab job events
    /// (`POST /gitlab`) and `GET /healthz`, until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Judge one blocked GitLab deployment and approve or reject it as the service
    /// account (CUSTODY_GATE_GITLAB_TOKEN). Exit 0 approved, 1 rejected.
    GitlabApprove(GitLabApproveArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The gate's configuration file (YAML; see docs/gate.md).
    #[arg(long, env = "CUSTODY_GATE_CONFIG")]
    pub config: PathBuf,
    /// `HOST:PORT` to listen on (overrides the file and CUSTODY_GATE_LISTEN).
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct GitLabApproveArgs {
    #[arg(long, env = "CUSTODY_GATE_CONFIG")]
    pub config: PathBuf,
    /// The project, by path (`group/project`) or id.
    #[arg(long)]
    pub project: String,
    /// The blocked deployment's id.
    #[arg(long)]
    pub deployment: u64,
}

pub fn run(command: GateCommand) -> anyhow::Result<Exit> {
    // one thread drives the I/O; judgments run on the runtime's blocking threads
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            GateCommand::Serve(a) => serve(a).await,
            GateCommand::GitlabApprove(a) => gitlab_approve(a).await,
        }
    })
}

fn read_config(path: &Path) -> anyhow::Result<Config> {
    Config::read(path).map_err(|e| fail(Exit::Usage, e.to_string()))
}

fn usage(text: String) -> anyhow::Error {
    fail(Exit::Usage, text)
}

/// The judge the file and the environment describe.
fn judge(cfg: &Config, path: &Path, env: &dyn Env) -> anyhow::Result<Judge> {
    let store_url = env
        .var(env_vars::CUSTODY_STORE)
        .or_else(|| cfg.store.clone())
        .ok_or_else(|| {
            usage(format!(
                "{}: no `store` (nor CUSTODY_STORE)",
                path.display()
            ))
        })?;
    if cfg.trusted_keys.is_empty() {
        return Err(usage(format!(
            "{}: `trustedKeys` is empty: name the public keys evidence is signed with",
            path.display()
        )));
    }
    let trusted_keys = keyfiles::read_trusted_keys(&cfg.trusted_keys).context("trustedKeys")?;
    let policies = PolicySet::load(&cfg.policies, &cfg.data, false)
        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let record = match &cfg.record {
        None => None,
        Some(r) => {
            let key = step::signer(env, r.signing_key.as_deref(), &r.tsa, &cfg.ca_files)
                .map_err(usage)?
                .ok_or_else(|| {
                    usage(format!(
                        "{}: `record` needs a key: `record.signingKey`, CUSTODY_SIGNING_KEY or CUSTODY_SIGNING_KEY_PEM",
                        path.display()
                    ))
                })?;
            Some(RecordSettings {
                key,
                keyid_scheme: step::keyid_scheme(r.keyid_scheme.as_deref().unwrap_or("empty"))
                    .map_err(usage)?,
                retention: step::retention(r.retention_years.unwrap_or(6)).map_err(usage)?,
            })
        }
    };
    let store = if record.is_some() {
        stores::create(&store_url, env, &cfg.ca_files)
    } else {
        stores::open(&store_url, env, &cfg.ca_files)
    }
    .with_context(|| format!("opening store {store_url}"))?;
    let d = Settings::default();
    Ok(Judge {
        store: Arc::new(store),
        trusted_keys,
        policies,
        record,
        settings: Settings {
            subject_stages: cfg.subject_stages.clone(),
            attempts: cfg.attempts.unwrap_or(d.attempts),
            backoff: cfg
                .backoff_seconds
                .map_or(d.backoff, |s| Duration::from_secs_f64(s.max(0.0))),
            await_approvals: cfg
                .await_approvals_seconds
                .map_or(d.await_approvals, Duration::from_secs),
            recheck: cfg
                .recheck_seconds
                .map_or(d.recheck, |s| Duration::from_secs(s.max(1))),
            report_url: cfg.report_url.clone(),
        },
    })
}

fn github(cfg: &Config, path: &Path, env: &dyn Env) -> anyhow::Result<Option<App>> {
    let Some(gh) = &cfg.github else {
        return Ok(None);
    };
    let key = match (env.var(gate_env::GITHUB_PRIVATE_KEY), &gh.private_key_file) {
        (Some(pem), _) => Secret::new(pem),
        (None, Some(file)) => Secret::new(std::fs::read_to_string(file).map_err(|e| {
            usage(format!(
                "{}: cannot read the GitHub App's private key: {e}",
                file.display()
            ))
        })?),
        (None, None) => {
            return Err(usage(format!(
                "{}: the GitHub App needs its private key: `github.privateKeyFile` or {}",
                path.display(),
                gate_env::GITHUB_PRIVATE_KEY
            )));
        }
    };
    let secret = env
        .var(gate_env::GITHUB_WEBHOOK_SECRET)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            usage(format!(
                "{} is not set: the App's webhook secret, which every delivery is checked against",
                gate_env::GITHUB_WEBHOOK_SECRET
            ))
        })?;
    let net = stores::net(env, &cfg.ca_files).map_err(|e| usage(e.to_string()))?;
    let mut app = App::new(
        gh.api_url.as_deref().unwrap_or("https://api.github.com"),
        gh.app_id,
        &key,
        Secret::new(secret),
        net,
    )
    .map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let d = Settings::default();
    app.attempts = cfg.attempts.unwrap_or(d.attempts);
    app.backoff = cfg
        .backoff_seconds
        .map_or(d.backoff, |s| Duration::from_secs_f64(s.max(0.0)));
    Ok(Some(app))
}

fn gitlab(cfg: &Config, env: &dyn Env) -> anyhow::Result<Option<GitLab>> {
    let Some(gl) = &cfg.gitlab else {
        return Ok(None);
    };
    let token = env
        .var(gate_env::GITLAB_TOKEN)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            usage(format!(
                "{} is not set: the service account's token (scope `api`)",
                gate_env::GITLAB_TOKEN
            ))
        })?;
    let d = Settings::default();
    Ok(Some(GitLab {
        api_url: gl.api_url.clone(),
        token: Secret::new(token),
        webhook_token: env
            .var(gate_env::GITLAB_WEBHOOK_TOKEN)
            .filter(|s| !s.is_empty())
            .map(Secret::new),
        represented_as: gl.represented_as.clone(),
        net: stores::net(env, &cfg.ca_files).map_err(|e| usage(e.to_string()))?,
        attempts: cfg.attempts.unwrap_or(d.attempts),
        backoff: cfg
            .backoff_seconds
            .map_or(d.backoff, |s| Duration::from_secs_f64(s.max(0.0))),
    }))
}

async fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let env = ProcessEnv;
    let cfg = read_config(&args.config)?;
    let judge = judge(&cfg, &args.config, &env)?;
    let github = github(&cfg, &args.config, &env)?;
    let gitlab = gitlab(&cfg, &env)?;
    if github.is_none() && gitlab.is_none() {
        return Err(usage(format!(
            "{}: configure `github` (the App) or `gitlab` (the service account), or both",
            args.config.display()
        )));
    }
    let listen = args
        .listen
        .or_else(|| env.var(gate_env::LISTEN))
        .or_else(|| cfg.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| usage(format!("cannot listen on {listen}: {e}")))?;
    let d = Limits::default();
    let limits = Limits {
        concurrency: cfg.concurrency.unwrap_or(d.concurrency),
        max_pending: cfg.max_pending.unwrap_or(d.max_pending),
        drain: cfg.drain_seconds.map_or(d.drain, Duration::from_secs),
    };
    // the bound address on stderr, for whoever started the service on port 0
    errln!(
        "custody gate: listening on {}",
        listener
            .local_addr()
            .map_or(listen.clone(), |a| a.to_string())
    );
    let service = Service::new(judge, github, gitlab, limits);
    service.run(listener, shutdown_signal()).await?;
    Ok(Exit::Ok)
}

/// SIGTERM (a container's stop) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn gitlab_approve(args: GitLabApproveArgs) -> anyhow::Result<Exit> {
    let env = ProcessEnv;
    let cfg = read_config(&args.config)?;
    let judge = judge(&cfg, &args.config, &env)?;
    let gl = gitlab(&cfg, &env)?.ok_or_else(|| {
        usage(format!(
            "{}: no `gitlab` section: where is GitLab?",
            args.config.display()
        ))
    })?;
    let dep = gl
        .deployment(&args.project, args.deployment)
        .await
        .map_err(|e| fail(Exit::Platform, e))?;
    let (approve, comment) = match custody_gate::serve::gitlab_deployment(&gl, &args.project, &dep)
    {
        Ok(d) => {
            // the judgment's store reads are not Send: judge on this thread
            let j = judge.judge(&d).await;
            (j.approve, j.comment)
        }
        Err(comment) => {
            // not blocked: nothing to approve or reject
            return Err(fail(Exit::Usage, comment));
        }
    };
    gl.approve(&args.project, dep.id, approve, &comment)
        .await
        .map_err(|e| fail(Exit::Platform, e))?;
    out!("{comment}");
    errln!(
        "custody gate: deployment {} {} as the service account",
        dep.id,
        if approve { "approved" } else { "rejected" }
    );
    Ok(if approve { Exit::Ok } else { Exit::Verify })
}
