//! `evidence-upload` command line: flags and environment resolved into a `Config`,
//! then `run`, then outputs for people (stdout), machines (`--format json`) and the
//! CI platform (step outputs, job summary, annotations, dotenv report).

/// `println!` that never panics: a closed stdout (`| head`) is not an error worth
/// dying over, and the data has nowhere to go anyway.
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

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use custody_evidence::{KeyIdScheme, SigningKey, check_service_name};
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::{ci, detect_context, env_vars, keyfiles};
use custody_store::Retention;
use evidence_upload::{Config, Outcome, Stage, UploadError, run};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Turn a stage's output into signed, retention-locked evidence.
#[derive(Debug, Parser)]
#[command(name = "evidence-upload", version)]
struct Args {
    /// build, test, scan, sign, deploy, or a custom stage name.
    #[arg(long)]
    stage: String,
    /// What the evidence is about: `name@sha256:…`, `sha256:…`, `git:<commit>`, or a file to hash.
    #[arg(long)]
    subject: String,
    /// Evidence files: SBOMs (build), JUnit and coverage (test), scan reports (scan),
    /// the signature (sign), manifests (deploy).
    #[arg(long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Evidence store URL.
    #[arg(long, env = env_vars::CUSTODY_STORE, default_value = "custody-store")]
    store: String,
    /// Private signing key (PEM); or set CUSTODY_SIGNING_KEY_PEM to the key itself.
    #[arg(long, env = env_vars::CUSTODY_SIGNING_KEY)]
    key: Option<PathBuf>,
    /// How the DSSE keyid is computed: empty, sslib, witness, ssh or hint.
    #[arg(long, default_value = "empty")]
    keyid_scheme: String,
    /// Retention in years (HIPAA: six).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i16).range(1..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
    retention_years: i16,
    /// Target environment (required for deploy; recorded for every stage).
    #[arg(long)]
    environment: Option<String>,
    /// sign: the id of the key that signed the artifact.
    #[arg(long)]
    signing_key_id: Option<String>,
    /// Only files under this directory are read (default: the CI workspace, else the current directory).
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Where records go when the store is unreachable.
    #[arg(long, env = env_vars::CUSTODY_SPOOL, default_value = ".custody-spool")]
    spool: PathBuf,
    /// Largest evidence file parsed, in MiB.
    #[arg(long, default_value_t = 1024)]
    max_parse_size: u64,
    /// JSON SBOMs up to this size (MiB) are inlined as the standard predicate.
    #[arg(long, default_value_t = 4)]
    inline_size: u64,
    /// Commit (default: from the CI platform).
    #[arg(long)]
    commit: Option<String>,
    /// Pipeline run id (default: from the CI platform).
    #[arg(long)]
    pipeline: Option<String>,
    /// Job name (default: from the CI platform).
    #[arg(long)]
    job: Option<String>,
    /// The service this evidence belongs to (recorded as `pipeline.service`), so an
    /// audit can require every stage of every service (`custody verify --service`).
    #[arg(long)]
    service: Option<String>,
    /// Write a GitLab dotenv report here (default on GitLab: custody.env).
    #[arg(long)]
    dotenv: Option<PathBuf>,
    /// Output on stdout.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    format: String,
}

fn fail(env: &dyn Env, err: &UploadError) -> ExitCode {
    if let Some(line) = ci::error_annotation(env, err.file().as_deref(), &err.to_string()) {
        custody_platform::console::command(&line);
    }
    errln!("error: {err}");
    ExitCode::from(err.exit_code())
}

fn usage(env: &dyn Env, message: String) -> ExitCode {
    fail(env, &UploadError::Usage(message))
}

fn load_key(env: &dyn Env, args: &Args) -> Result<SigningKey, UploadError> {
    if let Some(pem) = env.var(env_vars::CUSTODY_SIGNING_KEY_PEM) {
        for line in ci::add_mask(env, &pem) {
            // on stderr like every workflow command: stdout carries data only
            custody_platform::console::command(&line);
        }
        return SigningKey::from_pem(&pem).map_err(|e| {
            UploadError::Usage(format!("{}: {e}", env_vars::CUSTODY_SIGNING_KEY_PEM))
        });
    }
    match &args.key {
        Some(path) => Ok(keyfiles::read_signing_key(path)?),
        None => Err(UploadError::Usage(
            "no signing key: pass --key PATH or set CUSTODY_SIGNING_KEY (a path) or CUSTODY_SIGNING_KEY_PEM".into(),
        )),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let env = ProcessEnv;
    // `Targets` rather than `EnvFilter`: the same `level` / `target=level` syntax
    // without a regex engine in the step binary; an unparsable filter means `warn`.
    let filter: Targets = env
        .var(env_vars::CUSTODY_LOG)
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| custody_platform::console::NeutralWriter(std::io::stderr()))
                .with_ansi(env.var(env_vars::NO_COLOR).is_none())
                .without_time(),
        )
        .with(filter)
        .try_init();

    let key = match load_key(&env, &args) {
        Ok(k) => k,
        Err(e) => return fail(&env, &e),
    };
    let stage = match Stage::parse(&args.stage) {
        Ok(s) => s,
        Err(m) => return usage(&env, m),
    };
    let keyid_scheme: KeyIdScheme = match args.keyid_scheme.parse() {
        Ok(s) => s,
        Err(e) => return usage(&env, e.to_string()),
    };
    if args.retention_years < 1 {
        return usage(&env, "--retention-years must be at least 1".into());
    }
    let retention = match Retention::years_from(jiff::Timestamp::now(), args.retention_years) {
        Ok(r) => r,
        Err(e) => return usage(&env, e.to_string()),
    };
    let workspace = args
        .workspace
        .clone()
        .or_else(|| env.var(env_vars::GITHUB_WORKSPACE).map(PathBuf::from))
        .or_else(|| env.var(env_vars::CI_PROJECT_DIR).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    if let Some(service) = &args.service
        && let Err(e) = check_service_name(service)
    {
        return usage(&env, format!("--service {service:?}: {e}"));
    }
    let mut context = detect_context(&env);
    let mut flagged = false;
    for (slot, value) in [
        (&mut context.commit, &args.commit),
        (&mut context.pipeline_id, &args.pipeline),
        (&mut context.job, &args.job),
        (&mut context.service, &args.service),
        (&mut context.environment, &args.environment),
    ] {
        if value.is_some() {
            slot.clone_from(value);
            flagged = true;
        }
    }
    if flagged {
        context.source = Some(
            context
                .source
                .map_or_else(|| "flags".into(), |s| format!("{s}+flags")),
        );
    }
    let cfg = Config {
        stage,
        subject: args.subject.clone(),
        files: args.files.clone(),
        workspace,
        store: args.store.clone(),
        spool: args.spool.clone(),
        keyid_scheme,
        retention,
        context,
        signing_key_id: args.signing_key_id.clone(),
        max_parse_bytes: args.max_parse_size.saturating_mul(1 << 20),
        inline_bytes: args.inline_size.saturating_mul(1 << 20),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(&env, format!("starting the runtime: {e}")),
    };
    match rt.block_on(run(&cfg, &key)) {
        Ok(outcome) => {
            report(&env, &args, &outcome);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&env, &e),
    }
}

fn summary_cell(s: Option<&serde_json::Value>) -> String {
    let Some(s) = s else { return "-".into() };
    let g = |k: &str| s.get(k).and_then(serde_json::Value::as_u64);
    match s.get("kind").and_then(serde_json::Value::as_str) {
        Some("sbom") => format!(
            "{} components, {} licenses",
            g("componentCount").unwrap_or(0),
            g("licenseCount").unwrap_or(0)
        ),
        Some("tests") => format!(
            "{} passed, {} failed, {} errored, {} skipped",
            g("passed").unwrap_or(0),
            g("failed").unwrap_or(0),
            g("errored").unwrap_or(0),
            g("skipped").unwrap_or(0)
        ),
        Some("coverage") => match s.get("lineRate").and_then(serde_json::Value::as_f64) {
            Some(r) => format!("{:.1}% lines covered", r * 100.0),
            None => "no line data".into(),
        },
        Some("scan") => {
            let c = s.get("counts");
            let n = |k: &str| {
                c.and_then(|c| c.get(k))
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
            };
            format!(
                "{} critical, {} high, {} medium, {} low",
                n("critical"),
                n("high"),
                n("medium"),
                n("low")
            )
        }
        _ => "-".into(),
    }
}

fn report(env: &dyn Env, args: &Args, outcome: &Outcome) {
    let rows: Vec<[String; 4]> = outcome
        .records
        .iter()
        .map(|r| {
            [
                r.record.to_string(),
                r.predicate_type.clone(),
                r.material
                    .as_ref()
                    .map_or_else(|| "-".into(), |m| m.name.clone()),
                summary_cell(r.summary.as_ref()),
            ]
        })
        .collect();
    if args.format == "json" {
        match serde_json::to_string_pretty(outcome) {
            Ok(s) => out!("{s}"),
            Err(e) => errln!("error: {e}"),
        }
    } else {
        for [rec, ptype, file, summary] in &rows {
            out!("{rec}  {ptype}  {file}  {summary}");
        }
        errln!(
            "{} record(s) of stage {} stored in {}",
            rows.len(),
            outcome.stage,
            outcome.store
        );
    }
    let last = outcome
        .records
        .last()
        .map(|r| r.record.to_string())
        .unwrap_or_default();
    let all: Vec<String> = outcome
        .records
        .iter()
        .map(|r| r.record.to_string())
        .collect();
    let pairs = [
        ("record", last.clone()),
        ("records", serde_json::to_string(&all).unwrap_or_default()),
        ("store", outcome.store.clone()),
    ];
    if let Err(e) = ci::github_outputs(env, &pairs) {
        errln!("warning: could not write step outputs: {e}");
    }
    let mut md = format!(
        "### Custody evidence: stage `{}`\n\n| record | predicate | file | summary |\n|---|---|---|---|\n",
        outcome.stage
    );
    for [rec, ptype, file, summary] in &rows {
        md.push_str(&format!(
            "| `{}` | {ptype} | {file} | {summary} |\n",
            rec.get(..19).unwrap_or(rec)
        ));
    }
    md.push_str(&format!("\nStore: `{}`\n", outcome.store));
    if let Err(e) = ci::github_summary(env, &md) {
        errln!("warning: could not write the step summary: {e}");
    }
    let dotenv = args.dotenv.clone().or_else(|| {
        (env.var(env_vars::GITLAB_CI).as_deref() == Some("true"))
            .then(|| PathBuf::from("custody.env"))
    });
    if let Some(path) = dotenv {
        let pairs = [
            ("CUSTODY_RECORD", last),
            ("CUSTODY_RECORDS", all.join(",")),
            ("CUSTODY_STORE_URI", outcome.store.clone()),
        ];
        if let Err(e) = ci::gitlab_dotenv(&path, &pairs) {
            errln!("warning: could not write {}: {e}", path.display());
        }
    }
}
