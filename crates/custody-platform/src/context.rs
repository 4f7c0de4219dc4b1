//! Pipeline context from CI variables. What a platform does not provide stays `None`:
//! a record says "unknown" rather than guess.

use custody_evidence::{PipelineContext, Platform};

use crate::env_vars as v;

/// A source of environment variables: the process environment in binaries, a map in
/// tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment. Empty values count as unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|s| !s.is_empty())
    }
}

impl<S: std::hash::BuildHasher> Env for std::collections::HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|s| !s.is_empty()).cloned()
    }
}

fn bool_var(env: &dyn Env, name: &str) -> Option<bool> {
    match env.var(name)?.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Detects the platform and reads its context.
pub fn detect_context(env: &dyn Env) -> PipelineContext {
    if env.var(v::GITHUB_ACTIONS).as_deref() == Some("true") {
        github(env)
    } else if env.var(v::GITLAB_CI).as_deref() == Some("true") {
        gitlab(env)
    } else {
        PipelineContext {
            platform: Some(Platform::Local),
            ..Default::default()
        }
    }
}

fn github(env: &dyn Env) -> PipelineContext {
    let server = env.var(v::GITHUB_SERVER_URL);
    let repository = env.var(v::GITHUB_REPOSITORY);
    let run = env.var(v::GITHUB_RUN_ID);
    let attempt = env.var(v::GITHUB_RUN_ATTEMPT);
    let url = match (&server, &repository, &run) {
        (Some(s), Some(r), Some(id)) => Some(match &attempt {
            Some(a) => format!("{s}/{r}/actions/runs/{id}/attempts/{a}"),
            None => format!("{s}/{r}/actions/runs/{id}"),
        }),
        _ => None,
    };
    PipelineContext {
        platform: Some(Platform::Github),
        server,
        repository,
        commit: env.var(v::GITHUB_SHA),
        ref_: env.var(v::GITHUB_REF),
        ref_protected: bool_var(env, v::GITHUB_REF_PROTECTED),
        pipeline_id: run,
        attempt,
        job: env.var(v::GITHUB_JOB),
        // GitHub exposes no job id variable; runner-guard learns it from the OIDC token.
        job_id: None,
        // which service a job builds is the pipeline author's to say (`--service`)
        service: None,
        actor: env
            .var(v::GITHUB_TRIGGERING_ACTOR)
            .or_else(|| env.var(v::GITHUB_ACTOR)),
        runner: env.var(v::RUNNER_NAME),
        // GitHub does not expose the deployment environment as a variable.
        environment: None,
        url,
        source: Some("environment".into()),
    }
}

fn gitlab(env: &dyn Env) -> PipelineContext {
    PipelineContext {
        platform: Some(Platform::Gitlab),
        server: env.var(v::CI_SERVER_URL),
        repository: env.var(v::CI_PROJECT_PATH),
        commit: env.var(v::CI_COMMIT_SHA),
        ref_: env.var(v::CI_COMMIT_REF_NAME),
        ref_protected: bool_var(env, v::CI_COMMIT_REF_PROTECTED),
        pipeline_id: env.var(v::CI_PIPELINE_ID),
        // GitLab retries a job as a new job id; there is no run attempt.
        attempt: None,
        job: env.var(v::CI_JOB_NAME),
        job_id: env.var(v::CI_JOB_ID),
        service: None,
        actor: env.var(v::GITLAB_USER_LOGIN),
        runner: env
            .var(v::CI_RUNNER_ID)
            .map(|id| match env.var(v::CI_RUNNER_DESCRIPTION) {
                Some(d) => format!("{id} ({d})"),
                None => id,
            }),
        environment: env.var(v::CI_ENVIRONMENT_NAME),
        url: env.var(v::CI_PIPELINE_URL),
        source: Some("environment".into()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment of these variables (unit tests across the crate).
    pub(crate) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn github_context_records_what_is_there_and_nothing_else() {
        let e = env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_PROTECTED", "true"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_JOB", "build"),
            ("GITHUB_ACTOR", "alice"),
            ("RUNNER_NAME", ""),
        ]);
        let c = detect_context(&e);
        assert_eq!(c.platform, Some(Platform::Github));
        assert_eq!(c.ref_protected, Some(true));
        assert_eq!(c.actor.as_deref(), Some("alice"));
        assert_eq!(
            c.runner, None,
            "an empty variable is missing, not an empty runner"
        );
        assert_eq!(c.environment, None);
        assert_eq!(
            c.url.as_deref(),
            Some("https://github.com/acme/app/actions/runs/42/attempts/2")
        );
        assert_eq!(c.pipeline_key().as_deref(), Some("github:acme/app:42"));
    }

    #[test]
    fn gitlab_context_and_local_fallback() {
        let e = env(&[
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_PATH", "acme/app"),
            ("CI_COMMIT_REF_PROTECTED", "maybe"),
            ("CI_PIPELINE_ID", "7"),
            ("CI_RUNNER_ID", "12"),
            ("CI_RUNNER_DESCRIPTION", "prod-runner"),
            ("CI_ENVIRONMENT_NAME", "production"),
        ]);
        let c = detect_context(&e);
        assert_eq!(c.platform, Some(Platform::Gitlab));
        assert_eq!(c.ref_protected, None, "an unparseable flag is unknown");
        assert_eq!(c.runner.as_deref(), Some("12 (prod-runner)"));
        assert_eq!(c.environment.as_deref(), Some("production"));
        assert_eq!(c.commit, None);

        let local = detect_context(&env(&[]));
        assert_eq!(local.platform, Some(Platform::Local));
        assert_eq!(local.pipeline_key(), None);
    }
}
