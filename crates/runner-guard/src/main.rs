//! `runner-guard` command line: flags and environment resolved into a [`Config`], then
//! [`run`], then the verdict on stdout (`--format table|json`), the CI platform's outputs
//! (GitHub step outputs, step summary and `::error` annotations; a GitLab dotenv report) and
//! the documented exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every check passed (warnings allowed) |
//! | 1 | a check failed |
//! | 2 | configuration or usage error (tier model invalid, bad arguments) |
//! | 3 | the trusted signals the tier requires could not be obtained, and nothing failed outright |
//! | 4 | a store and key were configured, and the record could not be stored (the verdict is still printed) |
//!
//! Workflow commands (`::error`, `::add-mask::`) go to stderr, which the GitHub runner reads
//! as well as stdout, so stdout carries only the verdict.

/// `out!` and `errln!`: Custody's neutralizing `println!`/`eprintln!`.
#[macro_use]
extern crate custody_platform;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use custody_guard::{Environment, Platform, Request};
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::env_vars;
use custody_platform::step::{self, Outputs};
use runner_guard::{Config, GuardError, evidence_config, report, run};

/// Fail a job whose runner is not isolated for its tier; record the verdict as evidence.
#[derive(Debug, Parser)]
#[command(name = "runner-guard", version)]
struct Args {
    /// The tier model (YAML; schema in custody-guard's TIER-MODEL.md). Keep it on the
    /// protected default branch: its digest is in every verdict.
    #[arg(long, env = env_vars::CUSTODY_TIER_MODEL, default_value = ".custody/tiers.yaml")]
    tier_model: PathBuf,
    /// The environment this job deploys to. A verified token's `environment` claim wins, and
    /// a different value here fails the job.
    #[arg(long)]
    environment: Option<String>,
    /// The tier this job expects (for jobs without an environment; must agree otherwise).
    #[arg(long)]
    tier: Option<String>,
    /// The environment this job gates without deploying to it (a policy gate before the
    /// deployment's approval): judge it against the tier ENV belongs to in the tier model. A
    /// verified token naming another environment fails the job.
    #[arg(long, value_name = "ENV", conflicts_with_all = ["environment", "tier"])]
    for_environment: Option<String>,
    /// Fail every check that rests only on a CI variable, whatever the tier says.
    /// Production tiers (and tiers with `require_verified`) always do.
    #[arg(long)]
    require_verified: bool,
    /// The CI platform (default: detected from GITHUB_ACTIONS / GITLAB_CI).
    #[arg(long, value_enum)]
    platform: Option<PlatformArg>,
    /// Probe this address for instance metadata instead of the tier model's (tests point it
    /// at loopback). A flag only: an earlier step could change an environment variable.
    #[arg(long, value_name = "IP:PORT")]
    metadata_endpoint: Option<SocketAddr>,
    /// Read local facts below this directory instead of `/` (tests: a fake root).
    #[arg(long, default_value = "/", hide = true)]
    root: PathBuf,
    /// Output on stdout.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Evidence store URL. With a signing key, the verdict is stored as a signed record.
    #[arg(long, env = env_vars::CUSTODY_STORE)]
    store: Option<String>,
    #[command(flatten)]
    tls: step::CaFileArg,
    #[command(flatten)]
    sign: step::SignArgs,
    /// Commit the record is about, when the verified token names none.
    #[arg(long)]
    commit: Option<String>,
    /// Write a GitLab dotenv report here (default on GitLab: runner-guard.env).
    #[arg(long)]
    dotenv: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlatformArg {
    Github,
    Gitlab,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Format {
    #[default]
    Table,
    Json,
}

fn main() -> ExitCode {
    custody_platform::console::exit_status("runner-guard", run_main())
}

fn run_main() -> ExitCode {
    let args = Args::parse();
    let env = ProcessEnv;
    let cfg = match config(&env, &args) {
        Ok(c) => c,
        Err(e) => return fail(&env, &e),
    };
    let json = args.format == Format::Json;
    match run(&cfg) {
        Ok(outcome) => {
            Outputs::new(&env, "", args.dotenv.as_deref(), "runner-guard.env")
                .emit(&report(&outcome, json));
            ExitCode::from(u8::try_from(outcome.exit_code()).unwrap_or(1))
        }
        Err(e) => fail(&env, &e),
    }
}

fn fail(env: &dyn Env, err: &GuardError) -> ExitCode {
    let message = err.to_string();
    step::annotate_error(env, err.file().as_deref(), &message);
    errln!("error: {message}");
    ExitCode::from(2)
}

fn config(env: &dyn Env, args: &Args) -> Result<Config, GuardError> {
    let job = Environment::from_process();
    let platform = match args.platform {
        Some(PlatformArg::Github) => Platform::GitHub,
        Some(PlatformArg::Gitlab) => Platform::GitLab,
        None => Platform::detect(&job).ok_or_else(|| {
            GuardError::Usage("not running in GitHub Actions or GitLab CI (neither GITHUB_ACTIONS nor GITLAB_CI is `true`): pass --platform github or --platform gitlab".into())
        })?,
    };
    let evidence = evidence_config(
        env,
        args.store.as_deref(),
        args.sign.key.as_deref(),
        &args.sign.tsa.tsa,
        &args.tls.ca_file,
        &args.sign.record,
        args.commit.clone(),
    )?;
    Ok(Config {
        tier_model: args.tier_model.clone(),
        request: Request {
            platform,
            environment: args.environment.clone(),
            tier: args.tier.clone(),
            for_environment: args.for_environment.clone(),
            require_verified: args.require_verified,
        },
        root: args.root.clone(),
        metadata_endpoint: args.metadata_endpoint,
        ca_files: args.tls.ca_file.clone(),
        evidence,
        env: job,
    })
}
