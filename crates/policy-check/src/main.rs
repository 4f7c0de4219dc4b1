//! `policy-check`: Rego policy gates over verified evidence, before the human approval
//! (`--gate pre-approval`) and before the deploy (`--gate pre-deploy`).
//!
//! Flags and environment resolve into a [`custody_policy::check::CheckConfig`]; the
//! library gathers facts, evaluates and stores the signed decision; this binary prints
//! the decision on stdout (`--format json`, the whole document, or `--format table`, a
//! short plain-text table for a job log), writes the document to `--output FILE` when
//! asked, and tells the CI platform (step summary, annotations, outputs, dotenv report).
//!
//! Exit codes: 0 allow, 1 deny, 2 error (bad flags, unreadable policy or input, an
//! unreachable store or platform API) — distinct, so a pipeline can tell a policy
//! denial from a broken gate.

/// `out!` and `errln!`: Custody's neutralizing `println!`/`eprintln!`.
#[macro_use]
extern crate custody_platform;

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use custody_evidence::{KeyIdScheme, SigningKey};
use custody_platform::context::{Env, ProcessEnv};
use custody_platform::step::{self, Outputs};
use custody_platform::{detect_context, env_vars as v, keyfiles, stores};
use custody_policy::check::{self, CheckConfig, PlatformSource, RecordSettings};
use custody_policy::facts::Secret;
use custody_policy::facts::cosign::CosignConfig;
use custody_policy::facts::github::GitHubConfig;
use custody_policy::facts::gitlab::{GitLabConfig, TokenKind};
use custody_policy::{Decision, Gate, PolicyInput, PolicySet, Verdict, schema};

const EXIT_ALLOW: u8 = 0;
const EXIT_DENY: u8 = 1;
const EXIT_ERROR: u8 = 2;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlatformArg {
    /// GitHub on GitHub Actions, GitLab on GitLab CI, none elsewhere.
    Auto,
    Github,
    Gitlab,
    /// No platform facts (approval rules deny unless --approvals gives them).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// The whole decision document, pretty-printed JSON.
    Json,
    /// A short plain-text table: the verdict, one line per rule (failures first), the record.
    Table,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SchemaArg {
    Input,
    Decision,
}

/// Rego policy gates over verified evidence.
#[derive(Debug, Parser)]
#[command(name = "policy-check", version)]
struct Args {
    /// pre-approval (everything but approvals) or pre-deploy (everything).
    #[arg(long, required_unless_present = "print_schema")]
    gate: Option<String>,
    /// The image to deploy, by manifest digest: `registry/name@sha256:…`.
    #[arg(long, required_unless_present = "print_schema")]
    subject: Option<String>,
    /// Target environment (default: the job's environment on GitLab).
    #[arg(long)]
    environment: Option<String>,
    /// Evidence store URL.
    #[arg(long, env = v::CUSTODY_STORE, default_value = "custody-store")]
    store: String,
    /// Public key(s) evidence records must verify with: a PEM file or a directory. Repeatable.
    #[arg(long = "trusted-key")]
    trusted_keys: Vec<PathBuf>,
    /// A directory of .rego files that add rules or replace built-in files of the same name. Repeatable.
    #[arg(long = "policy")]
    policies: Vec<PathBuf>,
    /// A YAML or JSON file merged over the built-in thresholds and lists. Repeatable.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// Approvals, authorship and protection facts from a JSON file instead of the
    /// platform API; marked unverified in the decision.
    #[arg(long)]
    approvals: Option<PathBuf>,
    /// Where approvals and authorship come from.
    #[arg(long, value_enum, default_value = "auto")]
    platform: PlatformArg,
    /// GitHub API root.
    #[arg(long, env = v::GITHUB_API_URL, default_value = "https://api.github.com")]
    github_api_url: String,
    /// GitHub `owner/repo` (default: GITHUB_REPOSITORY).
    #[arg(long)]
    repository: Option<String>,
    /// GitHub workflow run id (default: GITHUB_RUN_ID).
    #[arg(long)]
    run_id: Option<u64>,
    /// GitLab API root (default: CI_API_V4_URL).
    #[arg(long, env = v::CI_API_V4_URL)]
    gitlab_api_url: Option<String>,
    /// GitLab project path or id (default: CI_PROJECT_ID, else CI_PROJECT_PATH).
    #[arg(long)]
    gitlab_project: Option<String>,
    /// GitLab deployment id (default: the deployment of this job, CI_JOB_ID).
    #[arg(long)]
    gitlab_deployment: Option<u64>,
    /// cosign public key(s) for the image's signatures in the registry. Repeatable.
    #[arg(long = "cosign-key")]
    cosign_keys: Vec<PathBuf>,
    /// Registry base URL instead of https://<registry host> (e.g. a mirror).
    #[arg(long, env = v::CUSTODY_REGISTRY_URL)]
    registry_url: Option<String>,
    #[command(flatten)]
    tls: step::CaFileArg,
    /// Commit the artifact was built from (default: from the CI platform).
    #[arg(long)]
    commit: Option<String>,
    /// Pipeline run id (default: from the CI platform).
    #[arg(long)]
    pipeline: Option<String>,
    /// Job name (default: from the CI platform).
    #[arg(long)]
    job: Option<String>,
    /// Key that signs the decision record; or set CUSTODY_SIGNING_KEY_PEM.
    #[arg(long, env = v::CUSTODY_SIGNING_KEY)]
    signing_key: Option<PathBuf>,
    /// The store's log signing key (`custody log keygen`): sign a checkpoint of the log
    /// before gathering, so every record the gate relies on is in it (policy data
    /// `log.require_checkpoint`).
    #[arg(long, env = v::CUSTODY_LOG_SIGNING_KEY, conflicts_with = "input")]
    log_signing_key: Option<PathBuf>,
    /// Evaluate and print, store nothing.
    #[arg(long)]
    no_record: bool,
    /// How the DSSE keyid of the decision record is computed: empty, sslib, witness, ssh or hint.
    #[arg(long, default_value = "empty", value_parser = step::keyid_scheme)]
    keyid_scheme: KeyIdScheme,
    /// Retention of the decision record, in years (1 to 100).
    #[arg(long, default_value_t = 6, value_parser = step::retention_years)]
    retention_years: i16,
    /// Evaluate this policy input document (JSON) instead of gathering facts.
    #[arg(long, conflicts_with_all = ["approvals", "cosign_keys"])]
    input: Option<PathBuf>,
    /// Print the gathered policy input (JSON) instead of the decision; stores nothing.
    #[arg(long)]
    print_input: bool,
    /// Print a JSON Schema and exit.
    #[arg(long, value_enum)]
    print_schema: Option<SchemaArg>,
    /// Write a GitLab dotenv report here (default on GitLab: custody-policy.env).
    #[arg(long)]
    dotenv: Option<PathBuf>,
    /// How the decision is printed on stdout.
    #[arg(long, value_enum, default_value = "json", conflicts_with_all = ["print_input", "print_schema"])]
    format: FormatArg,
    /// Also write the decision document (the JSON `--format json` prints) to this file,
    /// atomically, whatever the format.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["print_input", "print_schema"])]
    output: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let env = ProcessEnv;
    step::init_logging(&env);
    match run(&args, &env) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let message = format!("{err:#}");
            step::annotate_error(&env, None, &message);
            errln!("policy-check: error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(args: &Args, env: &dyn Env) -> anyhow::Result<u8> {
    if let Some(which) = args.print_schema {
        out!(
            "{}",
            match which {
                SchemaArg::Input => schema::input_schema(),
                SchemaArg::Decision => schema::decision_schema(),
            }
        );
        return Ok(EXIT_ALLOW);
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
        return Ok(report(env, args, &decision));
    }

    let mut context = detect_context(env);
    for (slot, value) in [
        (&mut context.commit, &args.commit),
        (&mut context.pipeline_id, &args.pipeline),
        (&mut context.job, &args.job),
        (&mut context.environment, &args.environment),
    ] {
        if value.is_some() {
            slot.clone_from(value);
        }
    }
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
    let platform = platform(args, env, &context, environment.as_deref(), &net)?;
    let record = if args.no_record || args.print_input {
        None
    } else {
        Some(RecordSettings {
            key: signing_key(env, args)?,
            keyid_scheme: args.keyid_scheme,
            retention: step::retention(args.retention_years).map_err(anyhow::Error::msg)?,
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
    rt.block_on(async {
        let store = if cfg.record.is_some() || log_signer.is_some() {
            stores::create(&args.store, &ProcessEnv, &args.tls.ca_file)
        } else {
            stores::open(&args.store, &ProcessEnv, &args.tls.ca_file)
        }
        .with_context(|| format!("opening store {}", args.store))?;
        if let Some(signer) = &log_signer {
            use custody_store::EvidenceStore as _;
            let retention = step::retention(args.retention_years).map_err(anyhow::Error::msg)?;
            let outcome = custody_store::log::checkpoint(&store, signer, &retention)
                .await
                .with_context(|| format!("checkpointing the log of {}", store.uri()))?;
            errln!(
                "policy-check: log checkpoint of {} entries ({} new) signed for {}",
                outcome.checkpoint.size,
                outcome.checkpoint.size - outcome.previous,
                store.uri()
            );
        }
        if args.print_input {
            let (input, problems) = check::gather_input(&cfg, &store).await?;
            for p in problems {
                errln!("policy-check: {p}");
            }
            out!("{}", serde_json::to_string_pretty(&input)?);
            return Ok(EXIT_ALLOW);
        }
        let outcome = check::run(&cfg, &store).await?;
        for p in &outcome.problems {
            errln!("policy-check: {p}");
        }
        Ok(report(env, args, &outcome.decision))
    })
}

fn signing_key(env: &dyn Env, args: &Args) -> anyhow::Result<SigningKey> {
    step::signing_key(env, args.signing_key.as_deref())
        .map_err(anyhow::Error::msg)?
        .context(
            "no key to sign the decision record: pass --signing-key PATH, set CUSTODY_SIGNING_KEY or CUSTODY_SIGNING_KEY_PEM, or --no-record",
        )
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
                token: env
                    .var(v::CUSTODY_GITHUB_TOKEN)
                    .or_else(|| env.var(v::GITHUB_TOKEN))
                    .map(Secret::new),
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

/// Prints the decision, writes `--output` and tells the platform; returns the exit code.
///
/// The decision is made (and maybe stored) by now, so a `--output` that cannot be
/// written does not hide it: the decision is still printed and reported to the
/// platform, and only then does the step fail with the error.
fn report(env: &dyn Env, args: &Args, decision: &Decision) -> u8 {
    let json = match serde_json::to_string_pretty(decision) {
        Ok(s) => format!("{s}\n"),
        Err(e) => {
            errln!("policy-check: error: {e}");
            return EXIT_ERROR;
        }
    };
    let written = args.output.as_deref().map(|path| {
        write_atomically(path, json.as_bytes())
            .map(|()| path)
            .map_err(|e| (path, e))
    });
    match args.format {
        FormatArg::Json => {
            let _ = std::io::stdout()
                .lock()
                .write_all(custody_platform::console::neutralize(&json).as_bytes());
        }
        FormatArg::Table => {
            let mut text = decision.to_text();
            if let Some(Ok(path)) = &written {
                text.push_str(&format!("decision document (JSON) in {}\n", path.display()));
            }
            let _ = std::io::stdout()
                .lock()
                .write_all(custody_platform::console::neutralize(&text).as_bytes());
        }
    }
    let outputs = Outputs::new(
        env,
        "policy-check: ",
        args.dotenv.as_deref(),
        "custody-policy.env",
    );
    for r in decision.failures() {
        outputs.annotate_error(
            None,
            &format!(
                "policy {} failed (HIPAA §{}): {}",
                r.id, r.control, r.message
            ),
        );
    }
    outputs.summary(&decision.to_markdown());
    let pairs: Vec<(&str, String)> = decision.outputs();
    let gh: Vec<(&str, String)> = pairs
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
    outputs.github(&gh);
    outputs.dotenv(&pairs);
    // the table's first line says the same on stdout: once is enough in a job log
    if args.format == FormatArg::Json {
        let failed = decision.failures().count();
        errln!(
            "policy-check {}: {} ({} rules, {failed} failed){}",
            decision.gate,
            decision.decision.as_str(),
            decision.rules.len(),
            decision
                .record
                .as_deref()
                .map_or_else(String::new, |r| format!("; decision record {r}"))
        );
    }
    if let Some(Err((path, e))) = written {
        let message = format!(
            "writing --output {}: {e}; the decision above ({}) stands, but the step fails: fix the path or drop --output",
            path.display(),
            decision.decision.as_str()
        );
        outputs.annotate_error(None, &message);
        errln!("policy-check: error: {message}");
        return EXIT_ERROR;
    }
    match decision.decision {
        Verdict::Allow => EXIT_ALLOW,
        Verdict::Deny => EXIT_DENY,
    }
}

/// Writes `bytes` to `path` as a whole or not at all: into a new file beside it, synced,
/// then renamed over `path`, so a reader (or a killed job) never sees half a document.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    // create_new: never follows a planted symlink nor reuses someone else's file
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let done = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return done;
    }
    // the rename itself survives a crash once the directory is synced; best effort
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}
