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

/// `println!` that never panics on a closed stdout.
macro_rules! out {
    ($($t:tt)*) => {{
        custody_platform::console::out_line(&format!($($t)*));
    }};
}

/// `eprintln!` for Custody: every line neutralized, so text from evidence cannot be a
/// workflow command (`custody_platform::console`).
macro_rules! errln {
    ($($t:tt)*) => {{
        custody_platform::console::err_line(&format!($($t)*));
    }};
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use custody_evidence::{KeyIdScheme, SigningKey};
use custody_guard::{Environment, Platform, Request};
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::{ci, env_vars, keyfiles};
use custody_store::Retention;
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
    /// Private signing key (PEM); or set CUSTODY_SIGNING_KEY_PEM to the key itself.
    #[arg(long, env = env_vars::CUSTODY_SIGNING_KEY)]
    key: Option<PathBuf>,
    /// How the DSSE keyid is computed: empty, sslib, witness, ssh or hint.
    #[arg(long, default_value = "empty")]
    keyid_scheme: String,
    /// Retention of the record in years (HIPAA: six).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i16).range(1..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
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
    if let Some(line) = ci::error_annotation(env, err.file().as_deref(), &message) {
        custody_platform::console::command(&line);
    }
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
    let key = match pem {
        Some(pem) => {
            for line in ci::add_mask(env, &pem) {
                custody_platform::console::command(&line);
            }
            SigningKey::from_pem(&pem)
                .map_err(|e| usage(format!("{}: {e}", env_vars::CUSTODY_SIGNING_KEY_PEM)))?
        }
        None => match &args.key {
            Some(path) => keyfiles::read_signing_key(path).map_err(|e| usage(e.to_string()))?,
            None => return Err(usage("no signing key")),
        },
    };
    let keyid_scheme: KeyIdScheme = args
        .keyid_scheme
        .parse()
        .map_err(|e: custody_evidence::KeyError| usage(e.to_string()))?;
    if args.retention_years < 1 {
        return Err(usage("--retention-years must be at least 1"));
    }
    let retention = Retention::years_from(jiff::Timestamp::now(), args.retention_years)
        .map_err(|e| usage(e.to_string()))?;
    Ok(Some(EvidenceConfig {
        store,
        key,
        keyid_scheme,
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
    for c in r.failed() {
        let message = format!("runner-guard {}: {}", c.id, c.reason);
        if let Some(line) = ci::error_annotation(env, None, &message) {
            custody_platform::console::command(&line);
        }
    }
    let (record, store) = match &outcome.evidence {
        Evidence::Stored(s) => (s.record.to_string(), s.store.clone()),
        Evidence::Failed { store, error } => {
            let message = format!(
                "runner-guard: the verdict was not stored as evidence ({error}); exit code 4"
            );
            if let Some(line) = ci::error_annotation(env, None, &message) {
                custody_platform::console::command(&line);
            }
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
    let pairs = [
        ("tier", tier.clone()),
        ("outcome", outcome_name.clone()),
        ("exit-code", outcome.exit_code().to_string()),
        ("record", record.clone()),
        ("store", store.clone()),
    ];
    if let Err(e) = ci::github_outputs(env, &pairs) {
        errln!("warning: could not write step outputs: {e}");
    }
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
    if let Err(e) = ci::github_summary(env, &md) {
        errln!("warning: could not write the step summary: {e}");
    }
    let dotenv = args.dotenv.clone().or_else(|| {
        (env.var(env_vars::GITLAB_CI).as_deref() == Some("true"))
            .then(|| PathBuf::from("runner-guard.env"))
    });
    if let Some(path) = dotenv {
        let pairs = [
            ("CUSTODY_RUNNER_TIER", tier),
            ("CUSTODY_RUNNER_OUTCOME", outcome_name),
            ("CUSTODY_RUNNER_RECORD", record),
        ];
        if let Err(e) = ci::gitlab_dotenv(&path, &pairs) {
            errln!("warning: could not write {}: {e}", path.display());
        }
    }
}
