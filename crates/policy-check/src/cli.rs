//! `policy-check`'s flags, as clap parses them.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use custody_platform::env_vars as v;
use custody_platform::step;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlatformArg {
    /// GitHub on GitHub Actions, GitLab on GitLab CI, none elsewhere.
    Auto,
    Github,
    Gitlab,
    /// No platform facts (approval rules deny unless --approvals gives them).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The whole decision document, pretty-printed JSON.
    Json,
    /// A short plain-text table: the verdict, one line per rule (failures first), the record.
    Table,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaArg {
    Input,
    Decision,
}

/// Rego policy gates over verified evidence.
#[derive(Debug, Parser)]
#[command(name = "policy-check", version)]
pub struct Args {
    /// pre-approval (everything but approvals) or pre-deploy (everything).
    #[arg(long, required_unless_present = "print_schema")]
    pub gate: Option<String>,
    /// The image to deploy, by manifest digest: `registry/name@sha256:…`.
    #[arg(long, required_unless_present = "print_schema")]
    pub subject: Option<String>,
    /// Target environment (default: the job's environment on GitLab).
    #[arg(long)]
    pub environment: Option<String>,
    /// Evidence store URL.
    #[arg(long, env = v::CUSTODY_STORE, default_value = "custody-store")]
    pub store: String,
    /// Public key(s) evidence records must verify with: a PEM file or a directory. Repeatable.
    #[arg(long = "trusted-key")]
    pub trusted_keys: Vec<PathBuf>,
    /// A directory of .rego files that add rules or replace built-in files of the same name. Repeatable.
    #[arg(long = "policy")]
    pub policies: Vec<PathBuf>,
    /// A YAML or JSON file merged over the built-in thresholds and lists. Repeatable.
    #[arg(long = "data")]
    pub data: Vec<PathBuf>,
    /// Approvals, authorship and protection facts from a JSON file instead of the
    /// platform API; marked unverified in the decision.
    #[arg(long)]
    pub approvals: Option<PathBuf>,
    /// Where approvals and authorship come from.
    #[arg(long, value_enum, default_value = "auto")]
    pub platform: PlatformArg,
    /// GitHub API root.
    #[arg(long, env = v::GITHUB_API_URL, default_value = "https://api.github.com")]
    pub github_api_url: String,
    /// GitHub `owner/repo` (default: GITHUB_REPOSITORY).
    #[arg(long)]
    pub repository: Option<String>,
    /// GitHub workflow run id (default: GITHUB_RUN_ID).
    #[arg(long)]
    pub run_id: Option<u64>,
    /// GitLab API root (default: CI_API_V4_URL).
    #[arg(long, env = v::CI_API_V4_URL)]
    pub gitlab_api_url: Option<String>,
    /// GitLab project path or id (default: CI_PROJECT_ID, else CI_PROJECT_PATH).
    #[arg(long)]
    pub gitlab_project: Option<String>,
    /// GitLab deployment id (default: the deployment of this job, CI_JOB_ID).
    #[arg(long)]
    pub gitlab_deployment: Option<u64>,
    /// cosign public key(s) for the image's signatures in the registry. Repeatable.
    #[arg(long = "cosign-key")]
    pub cosign_keys: Vec<PathBuf>,
    /// Registry base URL instead of https://<registry host> (e.g. a mirror).
    #[arg(long, env = v::CUSTODY_REGISTRY_URL)]
    pub registry_url: Option<String>,
    /// A Sigstore trusted root (`trusted_root.json`, as `gh attestation trusted-root`
    /// prints it): read the digest's GitHub artifact attestations (from --repository or
    /// GITHUB_REPOSITORY, with GITHUB_TOKEN) and verify them keyless against it, for the
    /// `github-attestation` rule (policy data `attestations`).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    #[command(flatten)]
    pub tls: step::CaFileArg,
    #[command(flatten)]
    pub context: step::ContextArgs,
    /// Key that signs the decision record: a PEM file or a key URI
    /// (`awskms:///alias/NAME`); or set CUSTODY_SIGNING_KEY_PEM.
    #[arg(long, env = v::CUSTODY_SIGNING_KEY, value_name = "FILE|URI")]
    pub signing_key: Option<String>,
    #[command(flatten)]
    pub tsa: step::TsaArg,
    /// The store's log signing key (`custody log keygen`): sign a checkpoint of the log
    /// before gathering, so every record the gate relies on is in it (policy data
    /// `log.require_checkpoint`).
    #[arg(long, env = v::CUSTODY_LOG_SIGNING_KEY, conflicts_with = "input")]
    pub log_signing_key: Option<PathBuf>,
    /// Evaluate and print, store nothing.
    #[arg(long)]
    pub no_record: bool,
    #[command(flatten)]
    pub record: step::RecordArgs,
    /// Evaluate this policy input document (JSON) instead of gathering facts.
    #[arg(long, conflicts_with_all = ["approvals", "cosign_keys"])]
    pub input: Option<PathBuf>,
    /// Print the gathered policy input (JSON) instead of the decision; stores nothing.
    #[arg(long)]
    pub print_input: bool,
    /// Print a JSON Schema and exit.
    #[arg(long, value_enum)]
    pub print_schema: Option<SchemaArg>,
    /// Write a GitLab dotenv report here (default on GitLab: custody-policy.env).
    #[arg(long)]
    pub dotenv: Option<PathBuf>,
    /// How the decision is printed on stdout.
    #[arg(long, value_enum, default_value = "json", conflicts_with_all = ["print_input", "print_schema"])]
    pub format: FormatArg,
    /// Also write the decision document (the JSON `--format json` prints) to this file,
    /// atomically, whatever the format.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["print_input", "print_schema"])]
    pub output: Option<PathBuf>,
    /// Also write the decision's signed SLSA Verification Summary Attestation (VSA v1,
    /// the DSSE envelope stored beside the decision record) to this file, atomically.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["print_input", "print_schema", "no_record"])]
    pub vsa: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    /// clap checks the flags' definition only when it runs: here, not in a job.
    #[test]
    fn the_flags_are_well_formed() {
        use clap::CommandFactory as _;
        super::Args::command().debug_assert();
    }
}
