//! `custody-gate` (also run as `custody gate`): the deploy gate as the platforms'
//! enforcement point.
//!
//! - `custody-gate serve --config FILE`: the GitHub App for custom deployment
//!   protection rules, and the GitLab job-event webhook, as a long-running service.
//! - `custody-gate gitlab-approve --config FILE --project P --deployment ID`: judge one
//!   blocked GitLab deployment and approve or reject it as the service account.
//!
//! Exit codes: 0 served and stopped cleanly, or approved; 1 rejected (the rejection was
//! sent); 2 bad configuration or usage; 5 the platform could not be reached.
//!
//! A binary of its own, not part of `custody`: a service, shipped as a container
//! (`Dockerfile`), whose server and platform code would otherwise weigh on every CLI
//! user (BENCHMARKS.md). This file resolves the configuration file and the environment
//! into the library's explicit settings; secrets come only from the environment or
//! files, never the command line.

/// `out!` and `errln!`: Custody's neutralizing `println!`/`eprintln!`.
#[macro_use]
extern crate custody_platform;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
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

/// Exit statuses (the same numbers as `custody`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Ok = 0,
    /// The gate rejected the deployment.
    Rejected = 1,
    Usage = 2,
    /// A platform API could not be reached or refused the request.
    Platform = 5,
}

/// An error with the exit status it maps to.
#[derive(Debug)]
struct Failure(Exit, String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Failure {}

fn fail(code: Exit, text: impl Into<String>) -> anyhow::Error {
    Failure(code, text.into()).into()
}

#[derive(Debug, Parser)]
#[command(
    name = "custody-gate",
    version,
    about = "The deploy gate outside the pipeline: a GitHub App for deployment protection rules and a GitLab deployment approver"
)]
struct Cli {
    /// More logging on stderr (-v debug); the service logs at info by default.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: GateCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let code = match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            let code = err
                .chain()
                .find_map(|c| c.downcast_ref::<Failure>().map(|f| f.0))
                .unwrap_or(Exit::Usage);
            let text = err
                .chain()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            errln!("custody-gate: error: {text}");
            code
        }
    };
    custody_platform::console::exit_status("custody-gate", ExitCode::from(code as u8))
}

/// One line per event on stderr, with its time and fields; `CUSTODY_LOG` filters
/// (`info` by default).
fn init_logging(verbose: u8) {
    let default = if verbose > 0 { "debug" } else { "info" };
    let filter = std::env::var(env_vars::CUSTODY_LOG).unwrap_or_else(|_| default.to_owned());
    let filter: tracing_subscriber::filter::Targets = filter
        .parse()
        .or_else(|_| default.parse())
        .unwrap_or_default();
    let no_color = std::env::var_os(env_vars::NO_COLOR).is_some_and(|v| !v.is_empty());
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| custody_platform::console::NeutralWriter(std::io::stderr()))
                .with_ansi(!no_color),
        )
        .try_init();
}

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

fn run(command: GateCommand) -> anyhow::Result<Exit> {
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
        "custody-gate: listening on {}",
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
        "custody-gate: deployment {} {} as the service account",
        dep.id,
        if approve { "approved" } else { "rejected" }
    );
    Ok(if approve { Exit::Ok } else { Exit::Rejected })
}
