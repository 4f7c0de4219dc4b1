//! Whether a runner's identity is one a tier admits, and how sure that is.

use super::evaluate::Judge;
use super::*;

/// A runner identity: each part with its source, `None` when unknown.
#[derive(Debug, Default)]
pub(super) struct Identity {
    pub(super) name: Fact<String>,
    pub(super) group: Fact<String>,
    pub(super) labels: Fact<BTreeSet<String>>,
    pub(super) id: Fact<u64>,
}

/// An any-of criterion: allowed values, the runner's value, what it is called.
type AnyOf<'a> = (&'a BTreeSet<String>, &'a Fact<String>, &'a str);

pub(super) enum Admit {
    Yes(Source),
    No(String, Source),
    Unknown(String),
}

pub(super) fn weakest(sources: impl IntoIterator<Item = Source>) -> Source {
    sources.into_iter().max().unwrap_or(Source::LocalKernel)
}

pub(super) fn admits(tier: &Tier, platform: Platform, who: &Identity) -> Admit {
    let mut used = Vec::new();
    let mut check_any =
        |set: &BTreeSet<String>, value: &Fact<String>, what: &str| -> Option<Admit> {
            if set.is_empty() {
                return None;
            }
            match value {
                None => Some(Admit::Unknown(format!("the runner's {what} is unknown"))),
                Some((v, s)) if set.contains(v) => {
                    used.push(*s);
                    None
                }
                Some((v, s)) => Some(Admit::No(
                    format!("{what} `{v}` is not allowed in tier `{}`", tier.name),
                    *s,
                )),
            }
        };
    let (any_checks, all_set, id_set): (Vec<AnyOf<'_>>, _, _) = match platform {
        Platform::GitHub => (
            vec![
                (&tier.runners.github.names, &who.name, "runner name"),
                (&tier.runners.github.groups, &who.group, "runner group"),
            ],
            &tier.runners.github.labels,
            None,
        ),
        Platform::GitLab => (
            vec![],
            &tier.runners.gitlab.tags,
            Some(&tier.runners.gitlab.ids),
        ),
    };
    for (set, value, what) in any_checks {
        if let Some(verdict) = check_any(set, value, what) {
            return verdict;
        }
    }
    if let Some(ids) = id_set.filter(|ids| !ids.is_empty()) {
        match &who.id {
            None => return Admit::Unknown("the runner id is unknown".into()),
            Some((id, s)) if ids.contains(id) => used.push(*s),
            Some((id, s)) => {
                return Admit::No(
                    format!("runner id {id} is not allowed in tier `{}`", tier.name),
                    *s,
                );
            }
        }
    }
    if !all_set.is_empty() {
        let what = if platform == Platform::GitHub {
            "labels"
        } else {
            "tags"
        };
        match &who.labels {
            None => return Admit::Unknown(format!("the runner's {what} are unknown")),
            Some((labels, s)) => {
                let missing: Vec<&str> = all_set.difference(labels).map(String::as_str).collect();
                if !missing.is_empty() {
                    return Admit::No(
                        format!(
                            "the runner lacks {what} required by tier `{}`: {}",
                            tier.name,
                            missing.join(", ")
                        ),
                        *s,
                    );
                }
                used.push(*s);
            }
        }
    }
    Admit::Yes(weakest(used))
}

pub(super) fn identity(j: &Judge<'_>) -> Identity {
    let api = j.signals.runner.answered();
    let vars = &j.signals.variables;
    let api_fact = |v: Option<String>| v.map(|v| (v, Source::PlatformApi));
    match j.platform {
        Platform::GitHub => Identity {
            name: api_fact(api.and_then(|r| r.name.clone())).or_else(|| {
                vars.runner_name
                    .clone()
                    .map(|n| (n, Source::UnverifiedVariable))
            }),
            group: api_fact(api.and_then(|r| r.group.clone())),
            labels: api.map(|r| (r.labels.iter().cloned().collect(), Source::PlatformApi)),
            id: None,
        },
        Platform::GitLab => Identity {
            name: api_fact(api.and_then(|r| r.name.clone())),
            group: None,
            labels: api
                .map(|r| (r.labels.iter().cloned().collect(), Source::PlatformApi))
                .or_else(|| {
                    vars.runner_tags
                        .as_ref()
                        .map(|t| (t.iter().cloned().collect(), Source::UnverifiedVariable))
                }),
            id: j
                .claim("runner_id")
                .and_then(|v| v.parse().ok())
                .map(|v| (v, Source::VerifiedToken))
                .or_else(|| api.and_then(|r| r.id).map(|v| (v, Source::PlatformApi)))
                .or_else(|| vars.runner_id.map(|v| (v, Source::UnverifiedVariable))),
        },
    }
}

pub(super) fn describe(who: &Identity) -> String {
    let mut parts = Vec::new();
    if let Some((id, _)) = &who.id {
        parts.push(format!("id {id}"));
    }
    if let Some((n, _)) = &who.name {
        parts.push(format!("`{n}`"));
    }
    if let Some((g, _)) = &who.group {
        parts.push(format!("group `{g}`"));
    }
    if let Some((l, _)) = &who.labels
        && !l.is_empty()
    {
        parts.push(format!(
            "labels {}",
            l.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if parts.is_empty() {
        "the runner".into()
    } else {
        format!("runner {}", parts.join(", "))
    }
}
