//! The gate itself, for one deployment: which artifacts the commit built (from verified
//! records in the store), policy-check's pre-deploy gate for each, and what to tell the
//! platform.
//!
//! Fail closed throughout: a store that cannot be read, a platform API that stays down
//! after the retries, a decision that cannot be stored, or no verified evidence naming
//! an artifact, each rejects with the reason. Only an `allow` of every artifact
//! approves.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use custody_evidence::{Envelope, PipelineContext, TrustedKeys, verify_envelope};
use custody_policy::check::{self, CheckConfig, PlatformSource, RecordSettings};
use custody_policy::decision::Status;
use custody_policy::{Decision, Gate, PolicySet, Verdict};
use custody_store::{AnyStore, EvidenceStore, Query};

/// Stages whose records are about the gate or the runner, not the artifact.
const NOT_ARTIFACT_STAGES: [&str; 2] = ["policy", "runner-guard"];

/// How long a review comment may be (GitHub's limit is not documented; GitLab's approval
/// comment is a short text too): longer ones are cut with a pointer to the record.
const COMMENT_LIMIT: usize = 1000;

/// The gate's settings beyond the policies and the store.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Stages whose records name the artifacts to judge; empty: every stage but
    /// `policy` and `runner-guard`.
    pub subject_stages: Vec<String>,
    /// Tries for a store or platform read that fails (transport error, 5xx).
    pub attempts: u32,
    /// Wait before the second try; doubled for each next one.
    pub backoff: Duration,
    /// How long to wait for the humans: while every failing rule is one only the
    /// pre-deploy gate runs (approvals, separation of duties) the gate re-evaluates
    /// every `recheck` instead of rejecting, up to this long. Zero: never wait.
    pub await_approvals: Duration,
    pub recheck: Duration,
    /// A link to put in the comment, `{record}` replaced by the decision record's digest
    /// (e.g. an audit portal's record page).
    pub report_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            subject_stages: Vec::new(),
            attempts: 3,
            backoff: Duration::from_secs(2),
            await_approvals: Duration::ZERO,
            recheck: Duration::from_secs(30),
            report_url: None,
        }
    }
}

/// The gate: the store, the keys and policies it trusts, and how its decisions are
/// stored.
#[derive(Debug)]
pub struct Judge {
    pub store: Arc<AnyStore>,
    pub trusted_keys: TrustedKeys,
    pub policies: PolicySet,
    /// `None`: decisions are not stored (not recommended: the audit then has no record
    /// of why a deployment was let through).
    pub record: Option<RecordSettings>,
    pub settings: Settings,
}

/// One deployment to judge.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub commit: String,
    pub environment: String,
    /// The run or pipeline, as the gate's records will name it (runner-guard verdicts of
    /// this run are the ones that count).
    pub context: PipelineContext,
    /// Where approvals, authorship and protection come from, with the App's or service
    /// account's credentials.
    pub platform: PlatformSource,
}

/// What the gate concluded.
#[derive(Debug, Clone)]
pub struct Judgment {
    pub approve: bool,
    /// For the platform's review: what failed and where the record is.
    pub comment: String,
    /// Each artifact's decision (stored when the judge stores decisions).
    pub decisions: Vec<(String, Decision)>,
}

impl Judgment {
    pub(crate) fn reject(reason: String) -> Self {
        Self {
            approve: false,
            comment: cut(format!("Custody gate: rejected. {reason}")),
            decisions: Vec::new(),
        }
    }
}

impl Judge {
    /// Judges a deployment. Never fails: whatever goes wrong is a rejection with the
    /// reason.
    pub async fn judge(&self, dep: &Deployment) -> Judgment {
        let subjects = match self
            .retry("reading the evidence store", || self.subjects(dep))
            .await
        {
            Ok(s) => s,
            Err(e) => return Judgment::reject(e),
        };
        if subjects.is_empty() {
            return Judgment::reject(format!(
                "No verified evidence in the store names an artifact built from commit {}{}.",
                dep.commit,
                if self.settings.subject_stages.is_empty() {
                    String::new()
                } else {
                    format!(" (stages {})", self.settings.subject_stages.join(", "))
                }
            ));
        }
        let mut decisions = Vec::new();
        for subject in subjects {
            match self.gate(dep, &subject).await {
                Ok(d) => decisions.push((subject, d)),
                Err(e) => {
                    return Judgment {
                        decisions,
                        ..Judgment::reject(format!("{subject}: {e}"))
                    };
                }
            }
        }
        let approve = decisions.iter().all(|(_, d)| d.decision == Verdict::Allow);
        Judgment {
            approve,
            comment: cut(self.comment(approve, &decisions)),
            decisions,
        }
    }

    /// The artifacts (`name@sha256:…`) that verified records of the commit are about.
    async fn subjects(&self, dep: &Deployment) -> Result<Vec<String>, String> {
        let refs = self
            .store
            .query(&Query {
                commit: Some(dep.commit.clone()),
                ..Query::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        for r in refs {
            let bytes = match self.store.get_object(&r.digest).await {
                Ok(b) => b,
                // an altered record names nothing; the gate's own evidence check sees it
                Err(custody_store::StoreError::Corrupt { .. }) => continue,
                Err(e) => return Err(e.to_string()),
            };
            let Ok(env) = Envelope::from_slice(&bytes) else {
                continue;
            };
            // the stage as claimed, to pass over the gate's and runner-guard's records
            // without checking their signatures (what counts is verified below)
            let claimed = env
                .payload_bytes()
                .ok()
                .and_then(|p| custody_evidence::Statement::from_slice(&p).ok())
                .and_then(|st| st.record().map(|r| r.stage.clone()));
            if claimed.is_some_and(|stage| !self.names_artifacts(&stage)) {
                continue;
            }
            let Ok(verified) = verify_envelope(&env, &self.trusted_keys) else {
                continue;
            };
            let st = verified.statement;
            let Some(rec) = st.record() else { continue };
            if rec.pipeline.commit.as_deref() != Some(dep.commit.as_str())
                || !self.names_artifacts(&rec.stage)
            {
                continue;
            }
            for s in &st.subject {
                let Some(d) = s.sha256_digest() else { continue };
                let named = !s.name.is_empty() && !s.name.contains(['@', ' ']);
                let entry = found.entry(d.to_string()).or_default();
                if named && entry.is_empty() {
                    *entry = s.name.clone();
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|(d, name)| {
                if name.is_empty() {
                    d
                } else {
                    format!("{name}@{d}")
                }
            })
            .collect())
    }

    /// Whether records of `stage` name the artifacts to judge.
    fn names_artifacts(&self, stage: &str) -> bool {
        !NOT_ARTIFACT_STAGES.contains(&stage)
            && (self.settings.subject_stages.is_empty()
                || self.settings.subject_stages.iter().any(|s| s == stage))
    }

    /// The pre-deploy gate for one artifact, waiting for human approvals as configured;
    /// the final decision stored.
    async fn gate(&self, dep: &Deployment, subject: &str) -> Result<Decision, String> {
        let started = tokio::time::Instant::now();
        loop {
            let cfg = self.config(dep, subject);
            let (input, problems) = self
                .retry("gathering the gate's facts", || async {
                    check::gather_input(&cfg, self.store.as_ref())
                        .await
                        .map_err(|e| e.to_string())
                })
                .await?;
            for p in &problems {
                tracing::info!(subject, problem = %p, "fact not established");
            }
            let mut decision = check::decide(&self.policies, &input).map_err(|e| e.to_string())?;
            if decision.decision == Verdict::Deny
                && started.elapsed() + self.settings.recheck <= self.settings.await_approvals
                && self.only_approvals_missing(&input)
            {
                tracing::info!(
                    subject,
                    environment = %dep.environment,
                    "waiting for approvals: only the pre-deploy rules fail"
                );
                tokio::time::sleep(self.settings.recheck).await;
                continue;
            }
            check::record(&cfg, self.store.as_ref(), &input, &mut decision)
                .await
                .map_err(|e| format!("the decision could not be stored: {e}"))?;
            return Ok(decision);
        }
    }

    /// Whether the same facts pass the pre-approval gate: then what fails is only what
    /// the humans have not done yet.
    fn only_approvals_missing(&self, input: &custody_policy::PolicyInput) -> bool {
        let mut before = input.clone();
        before.gate = Gate::PreApproval;
        check::decide(&self.policies, &before).is_ok_and(|d| d.decision == Verdict::Allow)
    }

    fn config(&self, dep: &Deployment, subject: &str) -> CheckConfig {
        CheckConfig {
            gate: Gate::PreDeploy,
            subject: subject.to_owned(),
            environment: Some(dep.environment.clone()),
            trusted_keys: self.trusted_keys.clone(),
            policies: self.policies.clone(),
            context: dep.context.clone(),
            platform: dep.platform.clone(),
            cosign: None,
            attestations: None,
            record: self.record.clone(),
            now: jiff::Timestamp::now(),
        }
    }

    /// Store and platform reads: every failure is worth another try.
    async fn retry<T, F, Fut>(&self, what: &str, f: F) -> Result<T, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        crate::retry::retry(
            what,
            self.settings.attempts,
            self.settings.backoff,
            f,
            |e: &String| (e.clone(), true),
        )
        .await
    }

    fn comment(&self, approve: bool, decisions: &[(String, Decision)]) -> String {
        let mut out = String::new();
        if approve {
            out.push_str("Custody gate: approved.");
        } else {
            out.push_str("Custody gate: rejected.");
        }
        for (subject, d) in decisions {
            let failed: Vec<_> = d
                .rules
                .iter()
                .filter(|r| r.status == Status::Fail)
                .collect();
            let passed = d.rules.iter().filter(|r| r.status == Status::Pass).count();
            out.push_str(&format!(
                "\n{subject}: {} ({passed} rules pass, {} fail)",
                d.decision.as_str(),
                failed.len()
            ));
            if let Some(record) = &d.record {
                out.push_str(&format!("; decision record {record}"));
                if let Some(url) = &self.settings.report_url {
                    out.push_str(&format!(" {}", url.replace("{record}", record)));
                }
            }
            for r in failed {
                out.push_str(&format!("\n- {}: {}", r.id, r.message));
            }
        }
        out
    }
}

/// Cuts a comment to [`COMMENT_LIMIT`] characters on a character boundary.
fn cut(mut s: String) -> String {
    if s.chars().count() > COMMENT_LIMIT {
        s = s.chars().take(COMMENT_LIMIT - 30).collect();
        s.push_str("\n… (cut; see the decision record)");
    }
    s
}
