//! The step shell: what every step binary (`evidence-upload`, `policy-check`,
//! `runner-guard`) and `custody` do the same way around their own work. Logging, the
//! signing key (a file, or the PEM itself in `CUSTODY_SIGNING_KEY_PEM`, masked in the
//! job log), the keyid scheme and retention flags, and the platform outputs: GitHub
//! step outputs, the step summary and `::error` annotations, and the GitLab dotenv
//! report. Each binary keeps only its own flags and its own work.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use custody_evidence::{KeyIdScheme, PipelineContext, Signer, SigningKey};
use custody_sign::awskms::KmsOptions;
use custody_sign::pkcs11::Pkcs11Options;
use custody_sign::{KeyRef, RemoteOptions};
use custody_store::Retention;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::context::Env;
use crate::{ci, console, env_vars, keyfiles, stores};

/// Logs on stderr, every line neutralized ([`console::NeutralWriter`]), filtered by
/// `CUSTODY_LOG` (`level` or `target=level,…`: tracing's `Targets`, no regex engine);
/// an unset or unparsable filter means `warn`. No colour with `NO_COLOR`.
pub fn init_logging(env: &dyn Env) {
    let filter: Targets = env
        .var(env_vars::CUSTODY_LOG)
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| console::NeutralWriter(std::io::stderr()))
                .with_ansi(env.var(env_vars::NO_COLOR).is_none())
                .without_time(),
        )
        .with(filter)
        .try_init();
}

/// The signer: the PEM in `CUSTODY_SIGNING_KEY_PEM` (masked in the job log first, so
/// it never shows) wins over `key`, which names a PEM file or a key held elsewhere
/// (`awskms://…`, `pkcs11:…`: [`custody_sign`]); `None` when neither is given. A KMS key is
/// reached under the step's network policy (`ca_files`) and checked before any work:
/// a missing, disabled, denied or unreachable key fails here.
///
/// With `tsa` URLs, every signature is also timestamped by each of those RFC 3161 TSAs
/// (custody-sign's `Timestamped`), reached under the same network policy.
pub fn signer(
    env: &dyn Env,
    key: Option<&str>,
    tsa: &[String],
    ca_files: &[PathBuf],
) -> Result<Option<Arc<dyn Signer>>, String> {
    let Some(signer) = key_signer(env, key, ca_files)? else {
        return Ok(None);
    };
    if tsa.is_empty() {
        return Ok(Some(signer));
    }
    let net = stores::net(env, ca_files).map_err(|e| e.to_string())?;
    custody_sign::tsa::Timestamped::new(signer, tsa, &net)
        .map(|t| Some(Arc::new(t) as Arc<dyn Signer>))
        .map_err(|e| e.to_string())
}

fn key_signer(
    env: &dyn Env,
    key: Option<&str>,
    ca_files: &[PathBuf],
) -> Result<Option<Arc<dyn Signer>>, String> {
    if let Some(pem) = env.var(env_vars::CUSTODY_SIGNING_KEY_PEM) {
        for line in ci::add_mask(env, &pem) {
            // on stderr like every workflow command: stdout carries data only
            console::command(&line);
        }
        return SigningKey::from_pem(&pem)
            .map(|k| Some(Arc::new(k) as Arc<dyn Signer>))
            .map_err(|e| format!("{}: {e}", env_vars::CUSTODY_SIGNING_KEY_PEM));
    }
    let Some(key) = key else { return Ok(None) };
    match KeyRef::parse(key).map_err(|e| e.to_string())? {
        KeyRef::File(path) => keyfiles::read_signing_key(Path::new(&path))
            .map(|k| Some(Arc::new(k) as Arc<dyn Signer>))
            .map_err(|e| e.to_string()),
        remote => {
            let pin = env.var(env_vars::CUSTODY_PKCS11_PIN);
            if let Some(pin) = &pin {
                for line in ci::add_mask(env, pin) {
                    console::command(&line);
                }
            }
            let opts = RemoteOptions {
                kms: KmsOptions {
                    net: stores::net(env, ca_files).map_err(|e| e.to_string())?,
                    endpoint_url: env
                        .var(env_vars::AWS_ENDPOINT_URL_KMS)
                        .or_else(|| env.var(env_vars::AWS_ENDPOINT_URL)),
                    ..KmsOptions::default()
                },
                pkcs11: Pkcs11Options {
                    module: env.var(env_vars::CUSTODY_PKCS11_MODULE).map(PathBuf::from),
                    pin,
                },
            };
            custody_sign::open_remote(remote, &opts)
                .map(Some)
                .map_err(|e| e.to_string())
        }
    }
}

/// `--keyid-scheme` as clap parses it (`value_parser = step::keyid_scheme`).
pub fn keyid_scheme(value: &str) -> Result<KeyIdScheme, String> {
    value
        .parse()
        .map_err(|e: custody_evidence::KeyError| e.to_string())
}

/// `--retention-years` as clap parses it: 1 to [`custody_store::MAX_RETENTION_YEARS`].
pub fn retention_years(value: &str) -> Result<i16, String> {
    let max = custody_store::MAX_RETENTION_YEARS;
    match value.parse::<i16>() {
        Ok(y) if (1..=max).contains(&y) => Ok(y),
        _ => Err(format!("{value} is not a number of years from 1 to {max}")),
    }
}

/// A retention of `years` (already checked by [`retention_years`]) from now.
pub fn retention(years: i16) -> Result<Retention, String> {
    Retention::years_from(jiff::Timestamp::now(), years).map_err(|e| e.to_string())
}

/// The single-threaded runtime a step runs its store and platform calls on.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

/// The directory a step reads its files under: the flag, else the CI workspace
/// (`GITHUB_WORKSPACE`, `CI_PROJECT_DIR`), else the current directory.
pub fn workspace(env: &dyn Env, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| env.var(env_vars::GITHUB_WORKSPACE).map(PathBuf::from))
        .or_else(|| env.var(env_vars::CI_PROJECT_DIR).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where a step's results go besides stdout. Each write that fails is a warning on
/// stderr, never a failure of the step: the evidence is stored either way.
pub struct Outputs<'a> {
    env: &'a dyn Env,
    /// `binary: ` before every warning.
    prefix: &'static str,
    dotenv: Option<PathBuf>,
}

impl std::fmt::Debug for Outputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("prefix", &self.prefix)
            .field("dotenv", &self.dotenv)
            .finish_non_exhaustive()
    }
}

impl<'a> Outputs<'a> {
    /// `dotenv`: the `--dotenv` flag; on GitLab without it, `default_dotenv` in the
    /// current directory.
    pub fn new(
        env: &'a dyn Env,
        prefix: &'static str,
        dotenv: Option<&Path>,
        default_dotenv: &str,
    ) -> Self {
        let dotenv = dotenv.map(Path::to_path_buf).or_else(|| {
            (env.var(env_vars::GITLAB_CI).as_deref() == Some("true"))
                .then(|| PathBuf::from(default_dotenv))
        });
        Self {
            env,
            prefix,
            dotenv,
        }
    }

    /// GitHub step outputs (`GITHUB_OUTPUT`).
    pub fn github(&self, pairs: &[(&str, String)]) {
        if let Err(e) = ci::github_outputs(self.env, pairs) {
            self.warn(&format!("could not write step outputs: {e}"));
        }
    }

    /// The GitHub step summary (Markdown).
    pub fn summary(&self, markdown: &str) {
        if let Err(e) = ci::github_summary(self.env, markdown) {
            self.warn(&format!("could not write the step summary: {e}"));
        }
    }

    /// The GitLab dotenv report, when there is one.
    pub fn dotenv(&self, pairs: &[(&str, String)]) {
        if let Some(path) = &self.dotenv
            && let Err(e) = ci::gitlab_dotenv(path, pairs)
        {
            self.warn(&format!("could not write {}: {e}", path.display()));
        }
    }

    /// An `::error` annotation (on GitHub; nothing elsewhere), about `file` when given.
    pub fn annotate_error(&self, file: Option<&str>, message: &str) {
        annotate_error(self.env, file, message);
    }

    /// Writes everything `report` says, in its order: stdout, annotations, stderr
    /// lines, step outputs, summary, dotenv.
    pub fn emit(&self, report: &Report) {
        if !report.stdout.is_empty() {
            console::out_bytes(console::neutralize(&report.stdout).as_bytes());
        }
        for (file, message) in &report.errors {
            self.annotate_error(file.as_deref(), message);
        }
        for line in &report.stderr {
            console::err_line(line);
        }
        if !report.github.is_empty() {
            self.github(&report.github);
        }
        if !report.summary.is_empty() {
            self.summary(&report.summary);
        }
        if !report.dotenv.is_empty() {
            self.dotenv(&report.dotenv);
        }
    }

    fn warn(&self, message: &str) {
        console::err_line(&format!("{}warning: {message}", self.prefix));
    }
}

/// An `::error` annotation (on GitHub; nothing elsewhere), about `file` when given.
pub fn annotate_error(env: &dyn Env, file: Option<&str>, message: &str) {
    if let Some(line) = ci::error_annotation(env, file, message) {
        // workflow commands go to stderr (the runner reads both): stdout is data
        console::command(&line);
    }
}

/// `--ca-file`, the same in every step and command that talks HTTPS.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CaFileArg {
    /// Extra trusted CA certificate(s), PEM (repeatable, or comma-separated in
    /// CUSTODY_CA_FILE): a private CA, such as a TLS-inspection proxy's. Added to the
    /// built-in and system roots (SSL_CERT_FILE/SSL_CERT_DIR) for every HTTPS call.
    #[arg(long = "ca-file", env = env_vars::CUSTODY_CA_FILE, value_delimiter = ',', value_name = "PEM")]
    pub ca_file: Vec<PathBuf>,
}

/// The key a step signs its record with, and how (evidence-upload, runner-guard).
#[derive(Debug, Clone, clap::Args)]
pub struct SignArgs {
    /// Signing key: a PEM private key file, or a key URI (`awskms:///alias/NAME`); or
    /// set CUSTODY_SIGNING_KEY_PEM to the PEM itself.
    #[arg(long, env = env_vars::CUSTODY_SIGNING_KEY, value_name = "FILE|URI")]
    pub key: Option<String>,
    #[command(flatten)]
    pub tsa: TsaArg,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// `--tsa`: the RFC 3161 timestamp authorities every signature is sent to.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TsaArg {
    /// RFC 3161 timestamp authority URL (repeatable, or comma-separated in CUSTODY_TSA):
    /// every signature is timestamped by each, and the tokens are stored in the record.
    #[arg(long = "tsa", env = env_vars::CUSTODY_TSA, value_delimiter = ',', value_name = "URL")]
    pub tsa: Vec<String>,
}

/// How a step's record is signed and kept: the same two flags on every step that
/// stores one.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// How the DSSE keyid of the record is computed: empty, sslib, witness, ssh or hint.
    #[arg(long, default_value = "empty", value_parser = keyid_scheme)]
    pub keyid_scheme: KeyIdScheme,
    /// Retention of the record in years (HIPAA: six; 1 to 100).
    #[arg(long, default_value_t = 6, value_parser = retention_years)]
    pub retention_years: i16,
}

impl RecordArgs {
    /// The retention the flag asks for, from now.
    pub fn retention(&self) -> Result<Retention, String> {
        retention(self.retention_years)
    }
}

/// The pipeline a record is about, when the platform's variables do not say (or say
/// something else): flags that win over the detected context.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(id = "pipeline-flags")]
pub struct ContextArgs {
    /// Commit (default: from the CI platform).
    #[arg(long)]
    pub commit: Option<String>,
    /// Pipeline run id (default: from the CI platform).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Job name (default: from the CI platform).
    #[arg(long)]
    pub job: Option<String>,
}

/// The pipeline context of this job ([`crate::detect_context`]) with what the flags
/// (`ContextArgs`, and the step's own `--service` and `--environment`) set instead;
/// `source` then ends in `flags`, so a record says its context was given by hand.
pub fn context(
    env: &dyn Env,
    flags: &ContextArgs,
    service: Option<&str>,
    environment: Option<&str>,
) -> PipelineContext {
    let mut context = crate::detect_context(env);
    let mut flagged = false;
    for (slot, value) in [
        (&mut context.commit, flags.commit.as_deref()),
        (&mut context.pipeline_id, flags.pipeline.as_deref()),
        (&mut context.job, flags.job.as_deref()),
        (&mut context.service, service),
        (&mut context.environment, environment),
    ] {
        if let Some(v) = value {
            *slot = Some(v.to_owned());
            flagged = true;
        }
    }
    if flagged {
        mark_flagged(&mut context);
    }
    context
}

/// Says in `context.source` that flags set some of it (once).
pub fn mark_flagged(context: &mut PipelineContext) {
    context.source = match context.source.take() {
        None => Some("flags".into()),
        Some(s) if s == "flags" || s.ends_with("+flags") => Some(s),
        Some(s) => Some(format!("{s}+flags")),
    };
}

/// What a step says when it is done. The step's library makes it (so it is tested
/// without a process) and [`Outputs::emit`] writes it: data on stdout, lines for people
/// and `::error` annotations on stderr, GitHub step outputs, the step summary and the
/// GitLab dotenv report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Written to stdout as is (neutralized); ends in a newline when not empty.
    pub stdout: String,
    /// `::error` annotations (on GitHub): the file they are about, and the message.
    pub errors: Vec<(Option<String>, String)>,
    /// Lines on stderr, after the annotations.
    pub stderr: Vec<String>,
    /// GitHub step outputs.
    pub github: Vec<(&'static str, String)>,
    /// The step summary (Markdown); none when empty.
    pub summary: String,
    /// The GitLab dotenv report's variables.
    pub dotenv: Vec<(&'static str, String)>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::context::tests::env;

    #[test]
    fn flags_parse_with_clear_errors() {
        assert_eq!(keyid_scheme("sslib").unwrap(), KeyIdScheme::Sslib);
        assert!(keyid_scheme("nope").is_err());
        assert_eq!(retention_years("6").unwrap(), 6);
        for bad in ["0", "-1", "20000", "six"] {
            let e = retention_years(bad).unwrap_err();
            assert!(e.contains("from 1 to"), "{e}");
        }
    }

    #[test]
    fn the_pem_in_the_environment_wins_and_a_missing_key_is_none() {
        let key = SigningKey::generate();
        let pem = key.to_pkcs8_pem().unwrap();
        let with_pem = env(&[(env_vars::CUSTODY_SIGNING_KEY_PEM, pem.as_str())]);
        let got = signer(&with_pem, Some("/nonexistent"), &[], &[]).unwrap();
        assert_eq!(got.unwrap().public().pem(), key.public().pem());
        let none = env(&[]);
        assert!(signer(&none, None, &[], &[]).unwrap().is_none());
        let e = signer(&none, Some("/nonexistent/key"), &[], &[]).unwrap_err();
        assert!(e.contains("/nonexistent/key"), "{e}");
        let e = signer(&none, Some("vault://transit/key"), &[], &[]).unwrap_err();
        assert!(e.contains("unknown key scheme"), "{e}");
        let bad = env(&[(env_vars::CUSTODY_SIGNING_KEY_PEM, "junk")]);
        let e = signer(&bad, None, &[], &[]).unwrap_err();
        assert!(e.contains("CUSTODY_SIGNING_KEY_PEM"), "{e}");
        assert!(
            !e.contains("junk"),
            "the secret stays out of the message: {e}"
        );
    }

    #[test]
    fn flags_win_over_the_detected_context_and_say_so() {
        let gh = env(&[
            (env_vars::GITHUB_ACTIONS, "true"),
            (env_vars::GITHUB_SHA, "aaaa"),
            (env_vars::GITHUB_RUN_ID, "7"),
        ]);
        let detected = context(&gh, &ContextArgs::default(), None, None);
        assert_eq!(detected.commit.as_deref(), Some("aaaa"));
        assert!(!detected.source.unwrap_or_default().contains("flags"));
        let flags = ContextArgs {
            commit: Some("bbbb".into()),
            ..ContextArgs::default()
        };
        let c = context(&gh, &flags, Some("api"), Some("production"));
        assert_eq!(c.commit.as_deref(), Some("bbbb"));
        assert_eq!(c.pipeline_id.as_deref(), Some("7"), "unflagged values stay");
        assert_eq!(c.service.as_deref(), Some("api"));
        assert_eq!(c.environment.as_deref(), Some("production"));
        assert!(c.source.unwrap().ends_with("+flags"));
        let bare = context(&env(&[]), &flags, None, None);
        assert_eq!(bare.source.as_deref(), Some("flags"));
    }

    #[test]
    fn the_workspace_comes_from_the_flag_then_the_platform() {
        let gh = env(&[(env_vars::GITHUB_WORKSPACE, "/gh")]);
        assert_eq!(
            workspace(&gh, Some(Path::new("/flag"))),
            PathBuf::from("/flag")
        );
        assert_eq!(workspace(&gh, None), PathBuf::from("/gh"));
        let gl = env(&[(env_vars::CI_PROJECT_DIR, "/gl")]);
        assert_eq!(workspace(&gl, None), PathBuf::from("/gl"));
        assert_eq!(workspace(&env(&[]), None), PathBuf::from("."));
    }
}
