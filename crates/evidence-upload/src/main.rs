//! `evidence-upload` command line: flags and environment resolved into a `Config`,
//! then `run`, then outputs for people (stdout), machines (`--format json`) and the
//! CI platform (step outputs, job summary, annotations, dotenv report).

/// `out!` and `errln!`: Custody's neutralizing `println!`/`eprintln!`.
#[macro_use]
extern crate custody_platform;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use std::sync::Arc;

use custody_evidence::{Signer, check_service_name};
use custody_http::oci::Credentials;
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::step::{self, Outputs};
use custody_platform::{env_vars, stores};
use evidence_upload::attach::{AttachOptions, attach};
use evidence_upload::{Config, Stage, UploadError, report, run, write_bundles};

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
    #[command(flatten)]
    sign: step::SignArgs,
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
    /// The secrets and PHI scan's configuration (policy per stage, MRN patterns,
    /// allow-list); default `.custody/scan.yaml` in the workspace if it exists, else
    /// every stage refuses on any finding.
    #[arg(long, env = "CUSTODY_SCAN_CONFIG")]
    scan_config: Option<PathBuf>,
    /// Largest evidence file parsed, in MiB.
    #[arg(long, default_value_t = 1024)]
    max_parse_size: u64,
    /// JSON SBOMs up to this size (MiB) are inlined as the standard predicate.
    #[arg(long, default_value_t = 4)]
    inline_size: u64,
    #[command(flatten)]
    context: step::ContextArgs,
    /// The service this evidence belongs to (recorded as `pipeline.service`), so an
    /// audit can require every stage of every service (`custody verify --service`).
    #[arg(long)]
    service: Option<String>,
    /// Also write each record as a Sigstore bundle v0.3 (`DIR/<record>.sigstore.json`,
    /// public-key hint) for Sigstore verifiers: `@sigstore/verify`, cosign.
    #[arg(long, env = env_vars::CUSTODY_SIGSTORE_BUNDLES, value_name = "DIR")]
    sigstore_bundles: Option<PathBuf>,
    /// Also attach each record, as a Sigstore bundle v0.3, to the image (`--subject
    /// registry/repo@sha256:…`) as an OCI 1.1 referrer, as cosign v3 attaches its own;
    /// registry credentials from CUSTODY_REGISTRY_USERNAME/CUSTODY_REGISTRY_PASSWORD.
    #[arg(long, env = env_vars::CUSTODY_OCI_ATTACH)]
    oci_attach: bool,
    /// Registry base URL instead of https://<registry host> (with --oci-attach).
    #[arg(long, env = env_vars::CUSTODY_REGISTRY_URL)]
    registry_url: Option<String>,
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

fn load_key(env: &dyn Env, args: &Args) -> Result<Arc<dyn Signer>, UploadError> {
    step::signer(
        env,
        args.sign.key.as_deref(),
        &args.sign.tsa.tsa,
        &args.tls.ca_file,
    )
        .map_err(UploadError::Usage)?
        .ok_or_else(|| {
            UploadError::Usage(
                "no signing key: pass --key FILE|URI or set CUSTODY_SIGNING_KEY (a path) or CUSTODY_SIGNING_KEY_PEM".into(),
            )
        })
}

/// The run's configuration from the flags and the platform's variables.
fn config(env: &dyn Env, args: &Args) -> Result<Config, UploadError> {
    let stage = Stage::parse(&args.stage).map_err(UploadError::Usage)?;
    let retention = args.sign.record.retention().map_err(UploadError::Usage)?;
    if let Some(service) = &args.service {
        check_service_name(service)
            .map_err(|e| UploadError::Usage(format!("--service {service:?}: {e}")))?;
    }
    let context = step::context(
        env,
        &args.context,
        args.service.as_deref(),
        args.environment.as_deref(),
    );
    Ok(Config {
        stage,
        subject: args.subject.clone(),
        files: args.files.clone(),
        workspace: step::workspace(env, args.workspace.as_deref()),
        store: args.store.clone(),
        spool: args.spool.clone(),
        keyid_scheme: args.sign.record.keyid_scheme,
        retention,
        context,
        signing_key_id: args.signing_key_id.clone(),
        max_parse_bytes: args.max_parse_size.saturating_mul(1 << 20),
        inline_bytes: args.inline_size.saturating_mul(1 << 20),
        scan: scanner(env, args)?,
    })
}

/// The scan for this stage: the configuration file's policy, or refuse everywhere.
fn scanner(env: &dyn Env, args: &Args) -> Result<Option<Arc<custody_scan::Scanner>>, UploadError> {
    let default = step::workspace(env, args.workspace.as_deref()).join(".custody/scan.yaml");
    let path = args
        .scan_config
        .clone()
        .or_else(|| default.is_file().then_some(default));
    let cfg = match &path {
        Some(p) => custody_scan::Config::read(p).map_err(|e| UploadError::Usage(e.to_string()))?,
        None => custody_scan::Config::default(),
    };
    if cfg.policy(&args.stage) == custody_scan::Policy::Off {
        return Ok(None);
    }
    custody_scan::Scanner::new(&cfg)
        .map(|s| Some(Arc::new(s)))
        .map_err(|e| {
            UploadError::Usage(format!(
                "{}: {e}",
                path.map_or_else(
                    || "the built-in scan rules".into(),
                    |p| p.display().to_string()
                )
            ))
        })
}

/// `--oci-attach`: the records as OCI referrers of the image.
fn attach_to_image(
    env: &dyn Env,
    args: &Args,
    outcome: &evidence_upload::Outcome,
    key: &custody_evidence::PublicKey,
) -> Result<(), String> {
    let opts = AttachOptions {
        net: stores::net(env, &args.tls.ca_file).map_err(|e| e.to_string())?,
        registry_url: args.registry_url.clone(),
        creds: Credentials {
            username: env.var(env_vars::CUSTODY_REGISTRY_USERNAME),
            password: env
                .var(env_vars::CUSTODY_REGISTRY_PASSWORD)
                .map(custody_http::Secret::new),
        },
    };
    let rt = step::runtime()?;
    let referrers = rt.block_on(attach(outcome, &args.subject, key, &opts))?;
    tracing::info!(
        "attached {} record(s) to {} as OCI referrers: {}",
        referrers.len(),
        args.subject,
        referrers.join(", ")
    );
    Ok(())
}

fn main() -> ExitCode {
    custody_platform::console::exit_status("evidence-upload", run_main())
}

fn run_main() -> ExitCode {
    let args = Args::parse();
    let env = ProcessEnv;
    step::init_logging(&env);
    let key = match load_key(&env, &args) {
        Ok(key) => key,
        Err(e) => return fail(&env, &e),
    };
    let result = config(&env, &args).and_then(|cfg| {
        let rt = step::runtime().map_err(UploadError::Usage)?;
        rt.block_on(run(&cfg, key.as_ref(), || {
            stores::create(&args.store, &env, &args.tls.ca_file)
        }))
    });
    match result {
        Ok(outcome) => {
            let outputs = Outputs::new(&env, "", args.dotenv.as_deref(), "custody.env");
            outputs.emit(&report(&outcome, args.format == "json"));
            if let Some(dir) = &args.sigstore_bundles
                && let Err(e) = write_bundles(dir, &outcome, key.public())
            {
                return fail(
                    &env,
                    &UploadError::Usage(format!(
                        "the records are stored, but a Sigstore bundle could not be written: {e}"
                    )),
                );
            }
            if args.oci_attach
                && let Err(e) = attach_to_image(&env, &args, &outcome, key.public())
            {
                return fail(
                    &env,
                    &UploadError::Usage(format!(
                        "the records are stored, but attaching them to the image failed: {e}"
                    )),
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&env, &e),
    }
}
