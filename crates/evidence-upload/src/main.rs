//! `evidence-upload` command line: flags and environment resolved into a `Config`,
//! then `run`, then outputs for people (stdout), machines (`--format json`) and the
//! CI platform (step outputs, job summary, annotations, dotenv report).

/// `out!` and `errln!`: Custody's neutralizing `println!`/`eprintln!`.
#[macro_use]
extern crate custody_platform;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use custody_evidence::{KeyIdScheme, SigningKey, check_service_name};
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::step::{self, Outputs};
use custody_platform::{detect_context, env_vars};
use evidence_upload::{Config, Outcome, Stage, UploadError, run};

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
    #[command(flatten)]
    tls: step::CaFileArg,
    /// Private signing key (PEM); or set CUSTODY_SIGNING_KEY_PEM to the key itself.
    #[arg(long, env = env_vars::CUSTODY_SIGNING_KEY)]
    key: Option<PathBuf>,
    /// How the DSSE keyid is computed: empty, sslib, witness, ssh or hint.
    #[arg(long, default_value = "empty", value_parser = step::keyid_scheme)]
    keyid_scheme: KeyIdScheme,
    /// Retention in years (HIPAA: six; 1 to 100).
    #[arg(long, default_value_t = 6, value_parser = step::retention_years)]
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
    step::annotate_error(env, err.file().as_deref(), &err.to_string());
    errln!("error: {err}");
    ExitCode::from(err.exit_code())
}

fn usage(env: &dyn Env, message: String) -> ExitCode {
    fail(env, &UploadError::Usage(message))
}

fn load_key(env: &dyn Env, args: &Args) -> Result<SigningKey, UploadError> {
    step::signing_key(env, args.key.as_deref())
        .map_err(UploadError::Usage)?
        .ok_or_else(|| {
            UploadError::Usage(
                "no signing key: pass --key PATH or set CUSTODY_SIGNING_KEY (a path) or CUSTODY_SIGNING_KEY_PEM".into(),
            )
        })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let env = ProcessEnv;
    step::init_logging(&env);

    let key = match load_key(&env, &args) {
        Ok(k) => k,
        Err(e) => return fail(&env, &e),
    };
    let stage = match Stage::parse(&args.stage) {
        Ok(s) => s,
        Err(m) => return usage(&env, m),
    };
    let retention = match step::retention(args.retention_years) {
        Ok(r) => r,
        Err(e) => return usage(&env, e),
    };
    let workspace = step::workspace(&env, args.workspace.as_deref());
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
        ca_files: args.tls.ca_file.clone(),
        spool: args.spool.clone(),
        keyid_scheme: args.keyid_scheme,
        retention,
        context,
        signing_key_id: args.signing_key_id.clone(),
        max_parse_bytes: args.max_parse_size.saturating_mul(1 << 20),
        inline_bytes: args.inline_size.saturating_mul(1 << 20),
    };
    let rt = match step::runtime() {
        Ok(rt) => rt,
        Err(e) => return usage(&env, e),
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
    let outputs = Outputs::new(env, "", args.dotenv.as_deref(), "custody.env");
    outputs.github(&[
        ("record", last.clone()),
        ("records", serde_json::to_string(&all).unwrap_or_default()),
        ("store", outcome.store.clone()),
    ]);
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
    outputs.summary(&md);
    outputs.dotenv(&[
        ("CUSTODY_RECORD", last),
        ("CUSTODY_RECORDS", all.join(",")),
        ("CUSTODY_STORE_URI", outcome.store.clone()),
    ]);
}
