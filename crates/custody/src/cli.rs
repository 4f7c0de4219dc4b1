//! Command-line arguments, resolved once into the settings each command needs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use custody_platform::env_vars;

use crate::exit::Exit;

#[derive(Debug, Parser)]
#[command(
    name = "custody",
    version,
    about = "Signed, retention-locked, queryable evidence for regulated CI/CD pipelines"
)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a P-256 signing key (mode 0600) and its public key (`<path>.pub`).
    Keygen(KeygenArgs),
    /// Print the public key of a signing key (a PEM file, or a key URI such as
    /// `awskms:///alias/NAME`, fetched from the KMS) for the trusted-keys set.
    PublicKey(PublicKeyArgs),
    /// Wrap a file as a signed in-toto statement about a subject and store it.
    Attest(AttestArgs),
    /// Verify an envelope (a file or a stored record) against trusted public keys.
    Verify(VerifyArgs),
    /// Find records by commit, subject, pipeline, day, environment, stage, control or time.
    Query(QueryArgs),
    /// Print the SHA-256 of files (streamed, constant memory), as subjects are named.
    Digest(DigestArgs),
    /// Look for secrets and PHI in files, as evidence-upload does before it stores
    /// anything (exit 1 on a finding; values are never printed).
    Scan(ScanArgs),
    /// Resend records an upload kept in its spool because the store was unreachable.
    Push(PushArgs),
    /// Write a self-contained audit bundle (.tar.gz) for a query: evidence, keys,
    /// verification and the report.
    Export(ExportArgs),
    /// Verify an audit bundle offline, with no access to the store.
    VerifyBundle(VerifyBundleArgs),
    /// List what expires when; missing or short locks are findings.
    Retention(RetentionArgs),
    /// Policy tools: run Rego unit tests (`custody policy test`).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Self-hosted runners held against the tier model (`custody runners audit`).
    Runners(crate::commands::runners::RunnersArgs),
    /// The transparency log under the store: keys, checkpoints, verification, repair.
    #[command(subcommand)]
    Log(LogCommand),
    /// The deploy gate outside the pipeline: a GitHub App for deployment protection
    /// rules and a GitLab deployment approver (`serve`, `gitlab-approve`). Runs the
    /// `custody-gate` binary (beside this one, on PATH, or CUSTODY_GATE_BIN) with these
    /// arguments.
    #[command(disable_help_flag = true)]
    Gate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Generate a log signing key (signed-note Ed25519, mode 0600) and its verifier
    /// key (`<path>.pub`, printed too): the key of `custody log checkpoint`.
    Keygen(LogKeygenArgs),
    /// Extend the log's tiles to every sequenced record and sign a checkpoint.
    Checkpoint(LogCheckpointArgs),
    /// Verify the whole log: entries, tiles, every checkpoint (append-only, no fork),
    /// checkpoints you kept, and that every stored record is in the log.
    Verify(LogVerifyArgs),
    /// Sequence records whose writer stopped before it gave them a log index.
    Sequence(LogSequenceArgs),
    /// Generate a witness key (C2SP tlog-cosignature, Ed25519 cosignature/v1, mode
    /// 0600) and its verifier key (`<path>.pub`, printed too).
    WitnessKeygen(WitnessKeygenArgs),
    /// As a witness: check that the store's latest checkpoint extends the last one this
    /// witness cosigned (its --state file), then cosign it and store the cosignature.
    Witness(LogWitnessArgs),
}

#[derive(Debug, Args)]
pub struct WitnessKeygenArgs {
    /// The witness's name (its key name in every cosignature), e.g. `witness.example.org/audit`.
    #[arg(long)]
    pub name: String,
    /// Where to write the private key; the verifier key goes to `<path>.pub`.
    #[arg(long, short, default_value = "custody-witness.key")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct LogWitnessArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The log's verifier key. Repeatable (a rotated key).
    #[arg(long = "log-key", env = custody_platform::env_vars::CUSTODY_LOG_KEY, required = true)]
    pub log_keys: Vec<PathBuf>,
    /// The witness signing key (from `custody log witness-keygen`).
    #[arg(long, env = custody_platform::env_vars::CUSTODY_WITNESS_SIGNING_KEY)]
    pub witness_signing_key: PathBuf,
    /// The witness's memory: the last checkpoint it cosigned for this log. Read if it
    /// exists (the new checkpoint must extend it), replaced after cosigning. Keep it
    /// where the store's operator cannot write.
    #[arg(long)]
    pub state: PathBuf,
    /// Retention of the stored cosignature, in years.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i16).range(1..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
    pub retention_years: i16,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Witness cosignatures an auditor requires on a checkpoint.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// A witness's verifier key (from `custody log witness-keygen`): its cosignatures
    /// on the checkpoint count. Repeatable.
    #[arg(long = "witness-key")]
    pub witness_keys: Vec<PathBuf>,
    /// Valid cosignatures required from those witnesses (default: all of them).
    #[arg(long, requires = "witness_keys")]
    pub min_witnesses: Option<usize>,
}

#[derive(Debug, Args)]
pub struct LogKeygenArgs {
    /// The log's name (its origin in every checkpoint), e.g. `custody.example.org/evidence`.
    #[arg(long)]
    pub origin: String,
    /// Where to write the private key; the verifier key goes to `<path>.pub`.
    #[arg(long, short, default_value = "custody-log.key")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct LogCheckpointArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The log signing key (from `custody log keygen`).
    #[arg(long, env = custody_platform::env_vars::CUSTODY_LOG_SIGNING_KEY)]
    pub log_signing_key: PathBuf,
    /// Retention of the tiles and the checkpoint, in years.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i16).range(1..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
    pub retention_years: i16,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LogVerifyArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The log's verifier key (`<origin>+<id>+<key>`, a `.pub` from `custody log
    /// keygen`). Repeatable (a rotated key).
    #[arg(long = "log-key", env = custody_platform::env_vars::CUSTODY_LOG_KEY, required = true)]
    pub log_keys: Vec<PathBuf>,
    /// A checkpoint you kept from an earlier look: the log must still extend it.
    /// Repeatable.
    #[arg(long = "checkpoint")]
    pub checkpoints: Vec<PathBuf>,
    /// Cosignatures required on the latest checkpoint.
    #[command(flatten)]
    pub witnesses: WitnessArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LogSequenceArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Retention of the log files written, in years.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i16).range(1..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
    pub retention_years: i16,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run `test_*` rules like `opa test`: the built-in policies' own tests, plus the
    /// policies and tests in DIR (files named like a built-in replace it).
    Test(PolicyTestArgs),
}

#[derive(Debug, Args)]
pub struct PolicyTestArgs {
    /// Directories of .rego files (user policies and their tests), whose tests run
    /// against the built-in rules plus theirs. None: the built-in tests.
    pub dirs: Vec<PathBuf>,
    /// Data files (YAML or JSON) merged over the built-in thresholds.
    #[arg(long = "data")]
    pub data: Vec<PathBuf>,
    /// Only tests whose `data.<package>.<name>` contains this text.
    #[arg(long)]
    pub run: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The spool directory (evidence-upload's --spool).
    #[arg(long, env = env_vars::CUSTODY_SPOOL, default_value = ".custody-spool")]
    pub spool: PathBuf,
    #[command(flatten)]
    pub store: StoreArg,
    /// Keep the spool after a successful push.
    #[arg(long)]
    pub keep: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// Files to hash.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files to scan (streamed, constant memory).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The scan configuration (MRN patterns, rules turned off, allow-list), as
    /// evidence-upload's `--scan-config`.
    #[arg(long, env = "CUSTODY_SCAN_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct StoreArg {
    /// Evidence store URL: `file://PATH` or a path.
    #[arg(long, env = env_vars::CUSTODY_STORE, default_value = "custody-store")]
    pub store: String,
    #[command(flatten)]
    pub tls: CaFileArg,
}

pub use custody_platform::step::CaFileArg;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key; the public key goes to `<path>.pub`.
    #[arg(long, short, default_value = "custody.key")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PublicKeyArgs {
    /// The signing key: a private key file (PEM) or a key URI.
    #[arg(long, env = env_vars::CUSTODY_SIGNING_KEY, value_name = "FILE|URI")]
    pub key: String,
    /// Also write the public key (PEM) to this file.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub tls: CaFileArg,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ContextArgs {
    /// `--commit`, `--pipeline`, `--job`, as on every step.
    #[command(flatten)]
    pub run: custody_platform::step::ContextArgs,
    /// Repository (default: from the CI platform).
    #[arg(long)]
    pub repository: Option<String>,
    /// Deployment environment, e.g. `production`.
    #[arg(long)]
    pub environment: Option<String>,
    /// The service the evidence belongs to (recorded as `pipeline.service`).
    #[arg(long)]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The file to attest; stored byte for byte as a material.
    pub file: PathBuf,
    /// What the evidence is about: `name@sha256:…`, `sha256:…`, `git:<commit>`, or a file to hash.
    #[arg(long)]
    pub subject: String,
    /// Signing key: a private key file (PKCS#8 or SEC1 PEM) or a key URI
    /// (`awskms:///alias/NAME`); CUSTODY_SIGNING_KEY_PEM, when set, wins.
    #[arg(long, env = env_vars::CUSTODY_SIGNING_KEY, value_name = "FILE|URI")]
    pub key: String,
    #[command(flatten)]
    pub tsa: custody_platform::step::TsaArg,
    #[command(flatten)]
    pub store: StoreArg,
    /// Pipeline stage: build, test, scan, sign, deploy or a custom name.
    #[arg(long, default_value = "build")]
    pub stage: String,
    /// predicateType of the statement.
    #[arg(long, default_value = "https://custody.dev/evidence/v1")]
    pub predicate_type: String,
    /// How the DSSE keyid is computed: empty, sslib, witness, ssh or hint.
    #[arg(long, default_value = "empty")]
    pub keyid_scheme: String,
    /// Extra HIPAA controls the record supports, e.g. `164.308(a)(1)(ii)(A)`.
    #[arg(long = "control")]
    pub controls: Vec<String>,
    /// Retention in years (never less than the HIPAA six by default).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i16).range(1..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
    pub retention_years: i16,
    #[command(flatten)]
    pub context: ContextArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An envelope file (DSSE JSON). Omit it to verify stored records: one with
    /// `--record`, or every record a query names (with their chains, pipelines and locks).
    pub envelope: Option<PathBuf>,
    /// A stored record by digest (`sha256:…`).
    #[arg(long, conflicts_with = "envelope")]
    pub record: Option<String>,
    /// Trusted public key: a PEM file (one or more keys), a trusted-keys file, or a
    /// directory of them. Repeatable.
    #[arg(long = "key", required_unless_present = "trusted_root")]
    pub keys: Vec<PathBuf>,
    /// A Sigstore trusted root (`trusted_root.json`, as `gh attestation trusted-root`
    /// prints it): verify the file as a keyless Sigstore bundle (a Fulcio certificate),
    /// offline, against it. Needs `--certificate-oidc-issuer` and an identity.
    #[arg(long, value_name = "FILE", requires = "envelope", conflicts_with_all = ["record", "keys"])]
    pub trusted_root: Option<PathBuf>,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub store: StoreArg,
    /// With an envelope or `--record`, `--subject` requires the statement to be about
    /// that digest (refuses replayed envelopes); otherwise the flags select records.
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub audit: AuditArgs,
    /// Require the stages of every service named (repeatable), each from verified records
    /// naming that service (`--service` of evidence-upload), instead of per pipeline.
    #[arg(
        long = "service",
        value_name = "NAME",
        conflicts_with_all = ["envelope", "record"]
    )]
    pub services: Vec<String>,
    /// The log's verifier key: the store's transparency log then decides completeness
    /// (every record that answers the query, up to the log's end, must be in the
    /// answer; every record in the answer must be in the log). Repeatable.
    #[arg(long = "log-key", conflicts_with_all = ["envelope", "record"])]
    pub log_keys: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Who must have signed a keyless Sigstore bundle (cosign's flag names).
#[derive(Debug, Clone, Default, Args)]
pub struct IdentityArgs {
    /// The OIDC issuer the signing certificate names, e.g.
    /// `https://token.actions.githubusercontent.com`.
    #[arg(long, requires = "trusted_root")]
    pub certificate_oidc_issuer: Option<String>,
    /// The certificate's subject alternative name, exactly: a workflow
    /// (`https://github.com/ORG/REPO/.github/workflows/release.yml@refs/tags/v1.2.3`) or
    /// an e-mail address.
    #[arg(
        long,
        requires = "trusted_root",
        conflicts_with = "certificate_identity_prefix"
    )]
    pub certificate_identity: Option<String>,
    /// The start of the subject alternative name, e.g. a workflow at any ref
    /// (`https://github.com/ORG/REPO/.github/workflows/release.yml@`).
    #[arg(long, requires = "trusted_root")]
    pub certificate_identity_prefix: Option<String>,
}

/// What evidence a command is about. Criteria combine with AND.
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Records for a commit (full or as recorded).
    #[arg(long)]
    pub commit: Option<String>,
    /// Records about a subject digest (`sha256:…` or `name@sha256:…`).
    #[arg(long)]
    pub subject: Option<String>,
    /// Records of a pipeline, as `platform:repository:run` (e.g. `github:acme/app:42`).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Records made on a UTC day (`YYYY-MM-DD`).
    #[arg(long)]
    pub day: Option<String>,
    /// Records for a deployment environment.
    #[arg(long)]
    pub environment: Option<String>,
    /// Records of a stage.
    #[arg(long)]
    pub stage: Option<String>,
    /// Records supporting a HIPAA control, e.g. `164.312(b)`.
    #[arg(long)]
    pub control: Option<String>,
    /// Records made at or after this time (RFC 3339 or `YYYY-MM-DD`).
    #[arg(long)]
    pub since: Option<String>,
    /// Records made before this time (RFC 3339 or `YYYY-MM-DD`).
    #[arg(long)]
    pub until: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.commit.is_none()
            && self.subject.is_none()
            && self.pipeline.is_none()
            && self.day.is_none()
            && self.environment.is_none()
            && self.stage.is_none()
            && self.control.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// The criteria that are set, as (flag, value).
    fn criteria(&self) -> Vec<(&'static str, &str)> {
        [
            ("commit", &self.commit),
            ("subject", &self.subject),
            ("pipeline", &self.pipeline),
            ("day", &self.day),
            ("environment", &self.environment),
            ("stage", &self.stage),
            ("control", &self.control),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.as_deref().map(|v| (flag, v)))
        .collect()
    }

    /// The filter as a user would type it, for reports.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .criteria()
            .into_iter()
            .map(|(flag, v)| format!("--{flag} {v}"))
            .collect();
        if parts.is_empty() {
            "(all records)".into()
        } else {
            parts.join(" ")
        }
    }

    /// The filter as findings name what was searched: `commit 3f2a…`,
    /// `environment production, since 2026-01-01`.
    pub fn scope(&self) -> String {
        let parts: Vec<String> = self
            .criteria()
            .into_iter()
            .map(|(flag, v)| format!("{flag} {v}"))
            .collect();
        if parts.is_empty() {
            "all records".into()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub filter: Filter,
    /// The log's verifier key: the answer then comes from the store's transparency log
    /// (proven against its latest checkpoint, to the log's end), so a record whose
    /// index pointers were removed is still found, and a record outside the log is a
    /// finding. Repeatable.
    #[arg(long = "log-key")]
    pub log_keys: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// How strictly a set of records is judged.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Stages every pipeline in the answer must have recorded (comma-separated, or
    /// `none`); with `verify --service`, every service named must have them instead.
    #[arg(long, default_value = "build,test,scan", value_name = "STAGES")]
    pub require_stages: String,
    /// The shortest retention lock accepted, in years after each record.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i16).range(0..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
    pub min_retention_years: i16,
}

impl AuditArgs {
    pub fn stages(&self) -> Vec<String> {
        stage_list(&self.require_stages)
    }
}

/// A `--require-stages` value: comma-separated stages, or `none`.
pub fn stage_list(value: &str) -> Vec<String> {
    if value.trim() == "none" {
        return Vec::new();
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub filter: Filter,
    /// Trusted public key: a PEM file (one or more keys) or a directory of them. Repeatable.
    #[arg(long = "key", required = true)]
    pub keys: Vec<PathBuf>,
    #[command(flatten)]
    pub audit: AuditArgs,
    /// Where to write the bundle (`.tar.gz`); refused when it exists.
    #[arg(long, short)]
    pub out: PathBuf,
    /// The log's verifier key: the bundle then carries the latest checkpoint it accepts
    /// and the log range that proves no record answering the query is missing.
    /// Repeatable (a rotated key).
    #[arg(long = "log-key")]
    pub log_keys: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// The bundle (`.tar.gz`) written by `custody export`.
    pub bundle: PathBuf,
    /// Public keys you hold, obtained independently of the bundle. Repeatable.
    #[arg(long = "key", required_unless_present = "bundle_keys")]
    pub keys: Vec<PathBuf>,
    /// Trust the keys inside the bundle: proves the bundle is intact, not who made it.
    #[arg(long, conflicts_with = "keys")]
    pub bundle_keys: bool,
    /// Stages every pipeline must have recorded (comma-separated, or `none`), replacing
    /// the ones the bundle's maker chose (default: the bundle's, from BUNDLE.json).
    #[arg(long, value_name = "STAGES")]
    pub require_stages: Option<String>,
    /// The shortest retention lock accepted, in years after each record, replacing the
    /// bundle's (default: the bundle's, from BUNDLE.json).
    #[arg(long, value_parser = clap::value_parser!(i16).range(0..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
    pub min_retention_years: Option<i16>,
    /// The log's verifier key, held independently of the bundle: the bundle must then
    /// prove that no record answering its query is missing. Repeatable.
    #[arg(long = "log-key")]
    pub log_keys: Vec<PathBuf>,
    /// The oldest checkpoint accepted, e.g. `24h` or `7d` (with --log-key).
    #[arg(long, requires = "log_keys", value_parser = parse_age)]
    pub max_checkpoint_age: Option<jiff::SignedDuration>,
    /// Cosignatures required on the bundle's checkpoint (with --log-key).
    #[command(flatten)]
    pub witnesses: WitnessArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

fn parse_age(s: &str) -> Result<jiff::SignedDuration, String> {
    let span: jiff::Span = s
        .parse()
        .map_err(|e| format!("`{s}` is not a duration like 24h or 7d: {e}"))?;
    let d = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("`{s}`: {e}"))?;
    if d.is_negative() {
        return Err(format!("`{s}`: an age is not negative"));
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub filter: Filter,
    /// The shortest retention lock accepted, in years after each record.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i16).range(0..=i64::from(custody_store::MAX_RETENTION_YEARS)))]
    pub min_retention_years: i16,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    // the gate is a binary of its own
    let command = match cli.command {
        Command::Gate { args } => return gate(&args),
        other => other,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            Command::Keygen(a) => crate::commands::keygen::run(a),
            Command::PublicKey(a) => crate::commands::keygen::public_key(&a),
            Command::Attest(a) => crate::commands::attest::run(a).await,
            Command::Verify(a) => crate::commands::verify::run(a).await,
            Command::Query(a) => crate::commands::query::run(a).await,
            Command::Digest(a) => crate::commands::digest::run(&a),
            Command::Scan(a) => crate::commands::scan::run(&a),
            Command::Push(a) => crate::commands::push::run(a).await,
            Command::Policy(PolicyCommand::Test(a)) => crate::commands::policy::test(&a),
            Command::Export(a) => crate::commands::export::run(a).await,
            Command::VerifyBundle(a) => crate::commands::verify_bundle::run(a).await,
            Command::Retention(a) => crate::commands::retention::run(a).await,
            Command::Runners(a) => crate::commands::runners::run(a).await,
            Command::Log(c) => crate::commands::log::run(c).await,
            Command::Gate { .. } => Ok(Exit::Usage),
        }
    })
}

/// `custody gate …`: runs `custody-gate …` in this process's place (its exit status
/// and signals are the gate's own). Found as CUSTODY_GATE_BIN, beside this binary, or
/// on PATH.
fn gate(args: &[std::ffi::OsString]) -> anyhow::Result<Exit> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("custody-gate")))
        .filter(|p| p.is_file());
    let bin = std::env::var_os("CUSTODY_GATE_BIN")
        .map(PathBuf::from)
        .or(beside)
        .unwrap_or_else(|| "custody-gate".into());
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(args);
    let err = {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            cmd.exec()
        }
        #[cfg(not(unix))]
        {
            match cmd.status() {
                Ok(s) => std::process::exit(s.code().unwrap_or(2)),
                Err(e) => e,
            }
        }
    };
    Err(crate::exit::fail(
        Exit::Usage,
        format!(
            "custody gate runs the custody-gate binary ({}): {err}; install it beside custody (cargo build --release -p custody-gate) or run the container (crates/custody-gate/Dockerfile)",
            bin.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    /// clap checks a command's definition (unique argument and group names, …) only
    /// when it runs: check every subcommand here, not in a user's job.
    #[test]
    fn every_command_is_well_formed() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
