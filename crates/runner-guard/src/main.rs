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
use custody_evidence::KeyIdScheme;
use custody_guard::{Environment, Platform, Request};
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::env_vars;
use custody_platform::step::{self, Outputs};
use runner_guard::{Config, Evidence, EvidenceConfig, GuardError, Outcome, run};

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
    /// Private signing key (PEM); or set CUSTODY_SIGNING_KEY_PEM to the key itself.
    #[arg(long, env = env_vars::CUSTODY_SIGNING_KEY)]
    key: Option<PathBuf>,
    /// How the DSSE keyid is computed: empty, sslib, witness, ssh or hint.
    #[arg(long, default_value = "empty", value_parser = step::keyid_scheme)]
    keyid_scheme: KeyIdScheme,
    /// Retention of the record in years (HIPAA: six; 1 to 100).
    #[arg(long, default_value_t = 6, value_parser = step::retention_years)]
    retention_years: i16,
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
    let args = Args::parse();
    let env = ProcessEnv;
    let cfg = match config(&env, &args) {
        Ok(c) => c,
        Err(e) => return fail(&env, &e),
    };
    match run(&cfg) {
        Ok(outcome) => {
            report(&env, &args, &outcome);
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

fn usage(message: impl Into<String>) -> GuardError {
    GuardError::Usage(message.into())
}

fn config(env: &dyn Env, args: &Args) -> Result<Config, GuardError> {
    let platform = match args.platform {
        Some(PlatformArg::Github) => Platform::GitHub,
        Some(PlatformArg::Gitlab) => Platform::GitLab,
        None => Platform::detect(&Environment::from_process()).ok_or_else(|| {
            usage("not running in GitHub Actions or GitLab CI (neither GITHUB_ACTIONS nor GITLAB_CI is `true`): pass --platform github or --platform gitlab")
        })?,
    };
    let evidence = evidence(env, args)?;
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
    })
}

fn evidence(env: &dyn Env, args: &Args) -> Result<Option<EvidenceConfig>, GuardError> {
    let pem = env.var(env_vars::CUSTODY_SIGNING_KEY_PEM);
    let have_key = pem.is_some() || args.key.is_some();
    let store = match (&args.store, have_key) {
        (None, false) => return Ok(None),
        (Some(s), true) => s.clone(),
        (Some(_), false) => {
            return Err(usage(
                "a store is configured but no signing key: pass --key PATH or set CUSTODY_SIGNING_KEY (a path) or CUSTODY_SIGNING_KEY_PEM, or unset the store to run without evidence",
            ));
        }
        (None, true) => {
            return Err(usage(
                "a signing key is configured but no store: pass --store URL or set CUSTODY_STORE, or unset the key to run without evidence",
            ));
        }
    };
    let key = step::signing_key(env, args.key.as_deref())
        .map_err(usage)?
        .ok_or_else(|| usage("no signing key"))?;
    let retention = step::retention(args.retention_years).map_err(usage)?;
    Ok(Some(EvidenceConfig {
        store,
        key,
        keyid_scheme: args.keyid_scheme,
        retention,
        commit: args.commit.clone(),
    }))
}

fn report(env: &dyn Env, args: &Args, outcome: &Outcome) {
    let r = &outcome.report;
    match args.format {
        Format::Json => match serde_json::to_string_pretty(outcome) {
            Ok(s) => out!("{s}"),
            Err(e) => errln!("error: could not render the verdict as JSON: {e}"),
        },
        Format::Table => {
            out!("{}", r.to_text().trim_end());
            if let Evidence::Stored(s) = &outcome.evidence {
                out!(
                    "record {} stored in {} (subject {}, chain {} #{})",
                    s.record,
                    s.store,
                    s.subject,
                    s.chain.id,
                    s.chain.sequence
                );
            }
        }
    }
    let outputs = Outputs::new(env, "", args.dotenv.as_deref(), "runner-guard.env");
    for c in r.failed() {
        outputs.annotate_error(None, &format!("runner-guard {}: {}", c.id, c.reason));
    }
    let (record, store) = match &outcome.evidence {
        Evidence::Stored(s) => (s.record.to_string(), s.store.clone()),
        Evidence::Failed { store, error } => {
            let message = format!(
                "runner-guard: the verdict was not stored as evidence ({error}); exit code 4"
            );
            outputs.annotate_error(None, &message);
            errln!("error: {message}");
            (String::new(), store.clone())
        }
        Evidence::NotConfigured => (String::new(), String::new()),
    };
    let outcome_name = serde_json::to_value(r.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let tier = r.tier.clone().unwrap_or_default();
    outputs.github(&[
        ("tier", tier.clone()),
        ("outcome", outcome_name.clone()),
        ("exit-code", outcome.exit_code().to_string()),
        ("record", record.clone()),
        ("store", store.clone()),
    ]);
    let mut md = r.to_markdown();
    match &outcome.evidence {
        Evidence::Stored(s) => md.push_str(&format!(
            "\nRecord: `{}` in `{}` (subject `{}`)\n",
            s.record, s.store, s.subject
        )),
        Evidence::Failed { store, .. } => md.push_str(&format!(
            "\nRecord: **not stored** in `{store}` (exit code 4)\n"
        )),
        Evidence::NotConfigured => {}
    }
    outputs.summary(&md);
    outputs.dotenv(&[
        ("CUSTODY_RUNNER_TIER", tier),
        ("CUSTODY_RUNNER_OUTCOME", outcome_name),
        ("CUSTODY_RUNNER_RECORD", record),
    ]);
}
