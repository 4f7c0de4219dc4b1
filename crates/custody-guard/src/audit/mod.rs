//! `custody runners audit`: the platform's own view of its runners, held against the tier
//! model. Where runner-guard judges one job from inside it, the audit looks at every runner
//! from the administrator's side: which tiers can reach it, and whether a production runner
//! is shared or unprotected.
//!
//! [`evaluate`] is pure: it takes an [`Inventory`] (GitHub organization runner groups with their
//! runners, GitLab runners with their details) and returns an [`AuditReport`]. Fetching the
//! inventory needs an admin token and lives in [`fetch`] (feature `audit`: octocrab for GitHub,
//! the `gitlab` crate for GitLab).
//!
//! Findings, each `fail` or `warn`:
//!
//! | kind | severity | when |
//! |---|---|---|
//! | `multi-tier` | fail | more than one tier's runner selectors admit the runner, or (GitLab) it runs untagged jobs while some tier's jobs carry no tags |
//! | `shared` | fail | a production runner other repositories or projects can use: GitHub group visible to all repositories, open to public repositories, or the default group; GitLab instance or group runner, a project runner enabled in several projects or not locked |
//! | `unprotected` | fail | a production runner any workflow or ref can use: GitHub group not restricted to selected workflows (or a workflow allowed from any ref); GitLab `access_level` not `ref_protected`, or `run_untagged` (an untagged job of any tier lands on it) |
//! | `not-ephemeral` | fail / warn | a tier requires ephemeral runners and GitHub says the runner is not (warn when GitHub does not say) |
//! | `untiered` | warn | no tier admits the runner: every guarded job on it fails |
//! | `missing` | warn | a runner group or GitLab runner id named in the tier model does not exist |

#[cfg(feature = "audit")]
pub mod fetch;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::tier::{RunnerEnvironment, Tier, TierModel};

/// Schema identifier of the audit report JSON.
pub const AUDIT_SCHEMA: &str = "https://custody.dev/runner-audit/v1";

/// A GitHub self-hosted runner in a runner group ("List self-hosted runners in a group for an
/// organization").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitHubRunner {
    pub id: u64,
    pub name: String,
    pub os: Option<String>,
    pub status: Option<String>,
    /// `None` when the API did not say (older GitHub Enterprise Server).
    pub ephemeral: Option<bool>,
    pub labels: Vec<String>,
}

/// A GitHub organization runner group ("List self-hosted runner groups for an organization")
/// with its runners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitHubGroup {
    pub id: u64,
    pub name: String,
    /// `all`, `selected` or `private`.
    pub visibility: String,
    pub default: bool,
    pub allows_public_repositories: bool,
    pub restricted_to_workflows: bool,
    pub selected_workflows: Vec<String>,
    pub runners: Vec<GitHubRunner>,
}

/// A GitLab runner with its details (`GET /runners/all`, then `GET /runners/:id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitLabRunner {
    pub id: u64,
    pub description: Option<String>,
    /// `instance_type`, `group_type` or `project_type`.
    pub runner_type: Option<String>,
    pub is_shared: bool,
    pub paused: bool,
    pub status: Option<String>,
    /// `ref_protected` or `not_protected`.
    pub access_level: Option<String>,
    pub locked: Option<bool>,
    pub run_untagged: Option<bool>,
    pub tags: Vec<String>,
    /// `path_with_namespace` of each project the runner is enabled in.
    pub projects: Vec<String>,
    /// Names of the groups a group runner belongs to.
    pub groups: Vec<String>,
}

/// What the platforms said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// The audited GitHub organization and its runner groups (`None`: GitHub not audited).
    pub github: Option<GitHubInventory>,
    /// GitLab runners (`None`: GitLab not audited).
    pub gitlab: Option<Vec<GitLabRunner>>,
}

/// A GitHub organization's runner groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitHubInventory {
    pub org: String,
    pub groups: Vec<GitHubGroup>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Fail,
    Warn,
}

/// What kind of problem a finding is (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    MultiTier,
    Shared,
    Unprotected,
    NotEphemeral,
    Untiered,
    Missing,
}

impl FindingKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MultiTier => "multi-tier",
            Self::Shared => "shared",
            Self::Unprotected => "unprotected",
            Self::NotEphemeral => "not-ephemeral",
            Self::Untiered => "untiered",
            Self::Missing => "missing",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub severity: Severity,
    pub kind: FindingKind,
    /// `github` or `gitlab`.
    pub platform: String,
    /// The runner (or group) the finding is about, as a person would name it.
    pub subject: String,
    /// The tiers involved.
    pub tiers: Vec<String>,
    pub message: String,
}

/// A runner as the audit saw it, with the tiers that admit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditedRunner {
    pub platform: String,
    pub id: u64,
    pub name: String,
    /// GitHub runner group.
    pub group: Option<String>,
    /// GitHub labels or GitLab tags.
    pub labels: Vec<String>,
    pub tiers: Vec<String>,
}

/// Overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// No failing finding (warnings allowed).
    Clean,
    /// At least one failing finding.
    Findings,
}

/// The audit's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub schema: String,
    pub tier_model_digest: String,
    pub outcome: AuditOutcome,
    pub runners: Vec<AuditedRunner>,
    pub findings: Vec<Finding>,
    /// The raw inventory the verdict rests on.
    pub inventory: Inventory,
}

impl AuditReport {
    /// 0 when clean, 1 when a finding fails.
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            AuditOutcome::Clean => 0,
            AuditOutcome::Findings => 1,
        }
    }
}

fn self_hosted_tier(t: &Tier) -> bool {
    !t.runner_environment
        .is_some_and(RunnerEnvironment::is_hosted)
}

/// Whether tier `t` admits a GitHub runner: the same rules runner-guard applies in a job
/// (names and groups any-of, labels all-of), for tiers that may use self-hosted runners.
pub fn github_admits(t: &Tier, name: &str, group: &str, labels: &BTreeSet<String>) -> bool {
    let r = &t.runners.github;
    self_hosted_tier(t)
        && !r.is_empty()
        && (r.names.is_empty() || r.names.contains(name))
        && (r.groups.is_empty() || r.groups.contains(group))
        && r.labels.is_subset(labels)
}

/// Whether tier `t` admits a GitLab runner: ids any-of, and the runner carries every tag the
/// tier's jobs ask for (GitLab hands a job only to a runner holding all its tags).
pub fn gitlab_admits(t: &Tier, id: u64, tags: &BTreeSet<String>) -> bool {
    let r = &t.runners.gitlab;
    self_hosted_tier(t)
        && !r.is_empty()
        && (r.ids.is_empty() || r.ids.contains(&id))
        && r.tags.is_subset(tags)
}

struct Collector {
    findings: Vec<Finding>,
}

impl Collector {
    fn push(
        &mut self,
        severity: Severity,
        kind: FindingKind,
        platform: &str,
        subject: &str,
        tiers: &[String],
        message: String,
    ) {
        self.findings.push(Finding {
            severity,
            kind,
            platform: platform.to_owned(),
            subject: subject.to_owned(),
            tiers: tiers.to_vec(),
            message,
        });
    }

    /// One finding per kind, its reasons joined, so a report reads one line per problem.
    fn reasons(
        &mut self,
        kind: FindingKind,
        platform: &str,
        subject: &str,
        tiers: &[String],
        reasons: &[String],
        fix: &str,
    ) {
        if !reasons.is_empty() {
            self.push(
                Severity::Fail,
                kind,
                platform,
                subject,
                tiers,
                format!("{}: {fix}", reasons.join("; ")),
            );
        }
    }
}

fn names(tiers: &[&Tier]) -> Vec<String> {
    tiers.iter().map(|t| t.name.clone()).collect()
}

fn quoted(tiers: &[String]) -> String {
    tiers
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judges the inventory against the tier model. Pure: no I/O.
pub fn evaluate(model: &TierModel, inventory: &Inventory) -> AuditReport {
    let mut out = Collector {
        findings: Vec::new(),
    };
    let mut runners = Vec::new();
    if let Some(gh) = &inventory.github {
        github(model, gh, &mut out, &mut runners);
    }
    if let Some(gl) = &inventory.gitlab {
        gitlab(model, gl, &mut out, &mut runners);
    }
    let outcome = if out.findings.iter().any(|f| f.severity == Severity::Fail) {
        AuditOutcome::Findings
    } else {
        AuditOutcome::Clean
    };
    out.findings.sort_by(|a, b| {
        (a.severity, a.kind, &a.platform, &a.subject).cmp(&(
            b.severity,
            b.kind,
            &b.platform,
            &b.subject,
        ))
    });
    AuditReport {
        schema: AUDIT_SCHEMA.to_owned(),
        tier_model_digest: model.digest().to_owned(),
        outcome,
        runners,
        findings: out.findings,
        inventory: inventory.clone(),
    }
}

fn github(
    model: &TierModel,
    inv: &GitHubInventory,
    out: &mut Collector,
    runners: &mut Vec<AuditedRunner>,
) {
    const P: &str = "github";
    for tier in model.tiers.values() {
        for group in &tier.runners.github.groups {
            if !inv.groups.iter().any(|g| &g.name == group) {
                out.push(
                    Severity::Warn,
                    FindingKind::Missing,
                    P,
                    &format!("group `{group}`"),
                    std::slice::from_ref(&tier.name),
                    format!(
                        "tier `{}` names runner group `{group}`, which organization `{}` does not have",
                        tier.name, inv.org
                    ),
                );
            }
        }
    }
    for group in &inv.groups {
        for r in &group.runners {
            let labels: BTreeSet<String> = r.labels.iter().cloned().collect();
            let tiers: Vec<&Tier> = model
                .tiers
                .values()
                .filter(|t| github_admits(t, &r.name, &group.name, &labels))
                .collect();
            let tier_names = names(&tiers);
            let subject = format!("runner {} `{}` (group `{}`)", r.id, r.name, group.name);
            runners.push(AuditedRunner {
                platform: P.into(),
                id: r.id,
                name: r.name.clone(),
                group: Some(group.name.clone()),
                labels: r.labels.clone(),
                tiers: tier_names.clone(),
            });
            match tiers.len() {
                0 => out.push(
                    Severity::Warn,
                    FindingKind::Untiered,
                    P,
                    &subject,
                    &[],
                    "no tier admits this runner: every job guarded by runner-guard fails on it".into(),
                ),
                1 => {}
                _ => out.push(
                    Severity::Fail,
                    FindingKind::MultiTier,
                    P,
                    &subject,
                    &tier_names,
                    format!(
                        "admitted by tiers {}: a runner may serve one tier only, give each tier its own runner group and labels",
                        quoted(&tier_names)
                    ),
                ),
            }
            let production: Vec<String> = tiers
                .iter()
                .filter(|t| t.production)
                .map(|t| t.name.clone())
                .collect();
            if !production.is_empty() {
                let mut shared = Vec::new();
                if group.visibility == "all" {
                    shared.push(format!(
                        "group `{}` is visible to all repositories of `{}`",
                        group.name, inv.org
                    ));
                }
                if group.allows_public_repositories {
                    shared.push(format!(
                        "group `{}` admits public repositories (fork pull requests run untrusted code)",
                        group.name
                    ));
                }
                if group.default {
                    shared.push(format!(
                        "`{}` is the organization's default group (new runners and repositories land there)",
                        group.name
                    ));
                }
                out.reasons(
                    FindingKind::Shared,
                    P,
                    &subject,
                    &production,
                    &shared,
                    "give production runners their own group with selected repositories only",
                );
                let mut open = Vec::new();
                if !group.restricted_to_workflows {
                    open.push(format!(
                        "group `{}` is not restricted to selected workflows: any workflow of an allowed repository can use it",
                        group.name
                    ));
                }
                for w in &group.selected_workflows {
                    if w.ends_with("@*") || !w.contains('@') {
                        open.push(format!("workflow `{w}` is allowed from any ref"));
                    }
                }
                out.reasons(
                    FindingKind::Unprotected,
                    P,
                    &subject,
                    &production,
                    &open,
                    "restrict the group to the deploy workflows at a protected ref (`…/deploy.yml@refs/heads/main`)",
                );
            }
            let wants_ephemeral: Vec<String> = tiers
                .iter()
                .filter(|t| t.require_ephemeral)
                .map(|t| t.name.clone())
                .collect();
            if !wants_ephemeral.is_empty() {
                match r.ephemeral {
                    Some(true) => {}
                    Some(false) => out.push(
                        Severity::Fail,
                        FindingKind::NotEphemeral,
                        P,
                        &subject,
                        &wants_ephemeral,
                        format!(
                            "tier(s) {} require ephemeral runners, and this one keeps its state between jobs: register it with `--ephemeral` (or just-in-time)",
                            quoted(&wants_ephemeral)
                        ),
                    ),
                    None => out.push(
                        Severity::Warn,
                        FindingKind::NotEphemeral,
                        P,
                        &subject,
                        &wants_ephemeral,
                        "the API does not say whether the runner is ephemeral".into(),
                    ),
                }
            }
        }
    }
}

fn gitlab(
    model: &TierModel,
    inv: &[GitLabRunner],
    out: &mut Collector,
    runners: &mut Vec<AuditedRunner>,
) {
    const P: &str = "gitlab";
    for tier in model.tiers.values() {
        for id in &tier.runners.gitlab.ids {
            if !inv.iter().any(|r| r.id == *id) {
                out.push(
                    Severity::Warn,
                    FindingKind::Missing,
                    P,
                    &format!("runner {id}"),
                    std::slice::from_ref(&tier.name),
                    format!(
                        "tier `{}` names runner id {id}, which GitLab does not list",
                        tier.name
                    ),
                );
            }
        }
    }
    for r in inv {
        let tags: BTreeSet<String> = r.tags.iter().cloned().collect();
        let tiers: Vec<&Tier> = model
            .tiers
            .values()
            .filter(|t| gitlab_admits(t, r.id, &tags))
            .collect();
        let tier_names = names(&tiers);
        let name = r.description.clone().unwrap_or_default();
        let subject = if name.is_empty() {
            format!("runner {}", r.id)
        } else {
            format!("runner {} `{name}`", r.id)
        };
        runners.push(AuditedRunner {
            platform: P.into(),
            id: r.id,
            name,
            group: None,
            labels: r.tags.clone(),
            tiers: tier_names.clone(),
        });
        // A runner that runs untagged jobs is also reachable from every tier whose jobs
        // carry no tags, whatever the model admits.
        let mut reach = tier_names.clone();
        if r.run_untagged == Some(true) {
            for t in model.tiers.values() {
                if t.runners.gitlab.tags.is_empty() && !reach.contains(&t.name) {
                    reach.push(t.name.clone());
                }
            }
            reach.sort();
        }
        if tiers.is_empty() {
            out.push(
                Severity::Warn,
                FindingKind::Untiered,
                P,
                &subject,
                &[],
                "no tier admits this runner: every job guarded by runner-guard fails on it".into(),
            );
        }
        if tiers.len() > 1 {
            out.push(
                Severity::Fail,
                FindingKind::MultiTier,
                P,
                &subject,
                &tier_names,
                format!(
                    "admitted by tiers {}: a runner may serve one tier only, give each tier its own runners and tags",
                    quoted(&tier_names)
                ),
            );
        } else if reach.len() > 1 {
            let extra: Vec<String> = reach
                .iter()
                .filter(|t| !tier_names.contains(t))
                .cloned()
                .collect();
            out.push(
                Severity::Fail,
                FindingKind::MultiTier,
                P,
                &subject,
                &reach,
                format!(
                    "it runs untagged jobs, and jobs of tier(s) {} carry no tags: they can land on it{}; set `run_untagged: false`",
                    quoted(&extra),
                    if tier_names.is_empty() {
                        String::new()
                    } else {
                        format!(" besides tier {}", quoted(&tier_names))
                    }
                ),
            );
        }
        let production: Vec<String> = tiers
            .iter()
            .filter(|t| t.production)
            .map(|t| t.name.clone())
            .collect();
        if production.is_empty() {
            continue;
        }
        let mut shared = Vec::new();
        match r.runner_type.as_deref() {
            Some("instance_type") => {
                shared.push("an instance runner: every project on the instance can use it".into())
            }
            Some("group_type") => shared.push(format!(
                "a group runner: every project of {} can use it",
                if r.groups.is_empty() {
                    "its group".to_owned()
                } else {
                    r.groups
                        .iter()
                        .map(|g| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
            _ if r.is_shared => shared.push("a shared runner".into()),
            _ => {}
        }
        if r.projects.len() > 1 {
            shared.push(format!(
                "enabled in {} projects ({})",
                r.projects.len(),
                r.projects.join(", ")
            ));
        }
        if r.runner_type.as_deref() == Some("project_type") && r.locked == Some(false) {
            shared.push("not locked: maintainers of other projects can enable it".into());
        }
        out.reasons(
            FindingKind::Shared,
            P,
            &subject,
            &production,
            &shared,
            "use a project runner, locked to the one project that deploys to production",
        );
        let mut open = Vec::new();
        match r.access_level.as_deref() {
            Some("ref_protected") => {}
            Some(level) => open.push(format!(
                "access level `{level}`: it runs jobs from unprotected branches"
            )),
            None => open.push("the API did not report its access level".into()),
        }
        if r.run_untagged == Some(true) {
            open.push("it runs untagged jobs: an untagged job of any tier can land on it".into());
        }
        out.reasons(
            FindingKind::Unprotected,
            P,
            &subject,
            &production,
            &open,
            "set `access_level: ref_protected` and `run_untagged: false`",
        );
    }
}

/// The report as a plain text table (for `--format table`).
pub fn to_text(report: &AuditReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "runner audit: {} ({} runner(s), {} finding(s)); tier model {}\n",
        match report.outcome {
            AuditOutcome::Clean => "CLEAN",
            AuditOutcome::Findings => "FINDINGS",
        },
        report.runners.len(),
        report.findings.len(),
        report.tier_model_digest
    ));
    for r in &report.runners {
        s.push_str(&format!(
            "{:<7} {:>8}  {:<24} {:<24} tiers: {}\n",
            r.platform,
            r.id,
            r.name,
            r.group.as_deref().unwrap_or("-"),
            if r.tiers.is_empty() {
                "none".to_owned()
            } else {
                r.tiers.join(", ")
            }
        ));
    }
    for f in &report.findings {
        s.push_str(&format!(
            "{} {} {} {}: {}\n",
            match f.severity {
                Severity::Fail => "FAIL",
                Severity::Warn => "warn",
            },
            f.kind.as_str(),
            f.platform,
            f.subject,
            f.message
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"
version: 1
trust:
  github: { audience: custody, repository: acme/app, repository_id: 42 }
  gitlab: { issuer: "https://gitlab.example.com", audience: custody, project_id: 7, token_variable: ID_TOKEN }
environments: { production: production, staging: staging }
tiers:
  staging:
    runners:
      github: { groups: [staging-runners], labels: [staging] }
      gitlab: { ids: [20], tags: [staging] }
  production:
    require_ephemeral: true
    runners:
      github: { groups: [production-runners], labels: [production] }
      gitlab: { ids: [30], tags: [production] }
"#;

    fn model() -> TierModel {
        TierModel::from_yaml(MODEL, "tiers.yaml").unwrap()
    }

    fn gh_runner(id: u64, labels: &[&str], ephemeral: Option<bool>) -> GitHubRunner {
        GitHubRunner {
            id,
            name: format!("r{id}"),
            os: Some("linux".into()),
            status: Some("online".into()),
            ephemeral,
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    fn gh_group(name: &str, runners: Vec<GitHubRunner>) -> GitHubGroup {
        GitHubGroup {
            id: 2,
            name: name.into(),
            visibility: "selected".into(),
            default: false,
            allows_public_repositories: false,
            restricted_to_workflows: true,
            selected_workflows: vec![
                "acme/app/.github/workflows/deploy.yml@refs/heads/main".into(),
            ],
            runners,
        }
    }

    fn gl_runner(id: u64, tags: &[&str]) -> GitLabRunner {
        GitLabRunner {
            id,
            description: Some(format!("runner-{id}")),
            runner_type: Some("project_type".into()),
            is_shared: false,
            paused: false,
            status: Some("online".into()),
            access_level: Some("ref_protected".into()),
            locked: Some(true),
            run_untagged: Some(false),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            projects: vec!["acme/app".into()],
            groups: vec![],
        }
    }

    fn clean() -> Inventory {
        Inventory {
            github: Some(GitHubInventory {
                org: "acme".into(),
                groups: vec![
                    gh_group(
                        "staging-runners",
                        vec![gh_runner(1, &["self-hosted", "staging"], Some(false))],
                    ),
                    gh_group(
                        "production-runners",
                        vec![gh_runner(2, &["self-hosted", "production"], Some(true))],
                    ),
                ],
            }),
            gitlab: Some(vec![
                gl_runner(20, &["staging"]),
                gl_runner(30, &["production"]),
            ]),
        }
    }

    fn multi_tier(r: &AuditReport) -> &Finding {
        r.findings
            .iter()
            .find(|f| f.kind == FindingKind::MultiTier)
            .unwrap()
    }

    fn kinds(r: &AuditReport) -> Vec<(Severity, FindingKind, String)> {
        r.findings
            .iter()
            .map(|f| (f.severity, f.kind, f.subject.clone()))
            .collect()
    }

    #[test]
    fn a_clean_configuration_has_no_findings() {
        let r = evaluate(&model(), &clean());
        assert_eq!(r.outcome, AuditOutcome::Clean, "{:?}", r.findings);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.exit_code(), 0);
        let tiers: Vec<_> = r.runners.iter().map(|x| x.tiers.join(",")).collect();
        assert_eq!(tiers, ["staging", "production", "staging", "production"]);
    }

    #[test]
    fn github_group_settings_make_a_production_runner_shared_or_unprotected() {
        let mut inv = clean();
        let gh = inv.github.as_mut().unwrap();
        let prod = &mut gh.groups[1];
        prod.visibility = "all".into();
        prod.restricted_to_workflows = false;
        let r = evaluate(&model(), &inv);
        assert_eq!(r.outcome, AuditOutcome::Findings);
        let k = kinds(&r);
        assert!(
            k.contains(&(
                Severity::Fail,
                FindingKind::Shared,
                "runner 2 `r2` (group `production-runners`)".into()
            )),
            "{k:?}"
        );
        assert!(
            k.iter()
                .any(|(s, f, _)| *s == Severity::Fail && *f == FindingKind::Unprotected),
            "{k:?}"
        );
        // The same settings on a staging group are not flagged.
        let mut inv = clean();
        inv.github.as_mut().unwrap().groups[0].visibility = "all".into();
        assert!(evaluate(&model(), &inv).findings.is_empty());
    }

    #[test]
    fn a_runner_carrying_both_tiers_labels_in_an_unnamed_group_is_caught_by_labels() {
        let model = TierModel::from_yaml(
            &MODEL
                .replace("groups: [staging-runners], ", "")
                .replace("groups: [production-runners], ", ""),
            "t.yaml",
        )
        .unwrap();
        let mut inv = clean();
        inv.github.as_mut().unwrap().groups[1].runners[0]
            .labels
            .push("staging".into());
        let r = evaluate(&model, &inv);
        let f = multi_tier(&r);
        assert_eq!(f.tiers, ["production", "staging"]);
    }

    #[test]
    fn gitlab_runner_settings_are_judged_for_production_only() {
        let mut inv = clean();
        let runners = inv.gitlab.as_mut().unwrap();
        runners[1].access_level = Some("not_protected".into());
        runners[1].run_untagged = Some(true);
        runners[1].locked = Some(false);
        runners[1].projects.push("acme/other".into());
        let r = evaluate(&model(), &inv);
        let f: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.platform == "gitlab")
            .collect();
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            f[0].message.contains("enabled in 2 projects") && f[0].message.contains("not locked")
        );
        assert!(f[1].message.contains("not_protected") && f[1].message.contains("untagged"));
        // Twin: the same settings on the staging runner are not flagged.
        let mut inv = clean();
        inv.gitlab.as_mut().unwrap()[0].access_level = Some("not_protected".into());
        assert!(evaluate(&model(), &inv).findings.is_empty());
    }

    #[test]
    fn a_gitlab_runner_running_untagged_jobs_is_reachable_from_tagless_tiers() {
        let with_dev = format!("{MODEL}  development:\n    runner_environment: hosted\n").replace(
            "environments: { production: production, staging: staging }",
            "environments: { production: production, staging: staging, dev: development }",
        );
        let model = TierModel::from_yaml(&with_dev, "t.yaml").unwrap();
        let mut inv = clean();
        inv.gitlab.as_mut().unwrap()[0].run_untagged = Some(true);
        let r = evaluate(&model, &inv);
        let f = multi_tier(&r);
        assert_eq!(f.subject, "runner 20 `runner-20`");
        assert_eq!(f.tiers, ["development", "staging"]);
        assert!(
            f.message.contains("tier(s) `development` carry no tags"),
            "{}",
            f.message
        );
        // Twin: without run_untagged, or without a tagless tier, no finding.
        assert!(evaluate(&model, &clean()).findings.is_empty());
        assert!(evaluate(&self::model(), &inv).findings.is_empty());
    }

    #[test]
    fn missing_and_untiered_runners_are_warnings() {
        let mut inv = clean();
        inv.gitlab
            .as_mut()
            .unwrap()
            .push(gl_runner(99, &["docker"]));
        inv.github.as_mut().unwrap().groups.remove(0);
        let r = evaluate(&model(), &inv);
        assert_eq!(r.outcome, AuditOutcome::Clean);
        let k = kinds(&r);
        assert!(
            k.contains(&(
                Severity::Warn,
                FindingKind::Untiered,
                "runner 99 `runner-99`".into()
            )),
            "{k:?}"
        );
        assert!(
            k.contains(&(
                Severity::Warn,
                FindingKind::Missing,
                "group `staging-runners`".into()
            )),
            "{k:?}"
        );
    }

    #[test]
    fn non_ephemeral_production_runner_fails() {
        let mut inv = clean();
        inv.github.as_mut().unwrap().groups[1].runners[0].ephemeral = Some(false);
        let r = evaluate(&model(), &inv);
        assert_eq!(
            kinds(&r),
            [(
                Severity::Fail,
                FindingKind::NotEphemeral,
                "runner 2 `r2` (group `production-runners`)".into()
            )]
        );
        assert!(to_text(&r).contains("FAIL not-ephemeral github runner 2"));
    }
}
