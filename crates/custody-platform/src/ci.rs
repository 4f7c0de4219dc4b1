//! Talking back to the CI platform: step outputs, the job summary, annotations and
//! masks on GitHub Actions; a dotenv report on GitLab CI. Every function is a no-op
//! off its platform, so binaries call them unconditionally.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::context::Env;
use crate::env_vars as v;

/// Escapes a workflow-command message (GitHub's `escapeData`), and breaks up the
/// legacy `##[command]` form, which the runner looks for anywhere in a line.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace("##[", "#\u{200B}#[")
}

/// Escapes a workflow-command property value (GitHub's `escapeProperty`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn on_github(env: &dyn Env) -> bool {
    env.var(v::GITHUB_ACTIONS).as_deref() == Some("true")
}

/// The `::error file=…::message` annotation line for GitHub, `None` elsewhere.
pub fn error_annotation(env: &dyn Env, file: Option<&str>, message: &str) -> Option<String> {
    if !on_github(env) {
        return None;
    }
    Some(match file {
        Some(f) => format!(
            "::error file={}::{}",
            escape_property(f),
            escape_data(message)
        ),
        None => format!("::error::{}", escape_data(message)),
    })
}

/// Asks GitHub to mask a secret value in all later log output. Each line is masked
/// on its own, since the runner matches masks line by line.
pub fn add_mask(env: &dyn Env, secret: &str) -> Vec<String> {
    if !on_github(env) {
        return Vec::new();
    }
    secret
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 4)
        .map(|l| format!("::add-mask::{l}"))
        .collect()
}

/// Appends `key=value` step outputs to `$GITHUB_OUTPUT`. Multi-line values use the
/// heredoc form with a delimiter that cannot occur in the value.
pub fn github_outputs(env: &dyn Env, pairs: &[(&str, String)]) -> std::io::Result<()> {
    let Some(path) = env.var(v::GITHUB_OUTPUT) else {
        return Ok(());
    };
    let mut text = String::new();
    for (k, val) in pairs {
        if val.contains('\n') {
            let mut delim = String::from("CUSTODY_EOF");
            while val.contains(&delim) {
                delim.push('_');
            }
            text.push_str(&format!("{k}<<{delim}\n{val}\n{delim}\n"));
        } else {
            text.push_str(&format!("{k}={val}\n"));
        }
    }
    append(Path::new(&path), &text)
}

/// Appends Markdown to `$GITHUB_STEP_SUMMARY`.
pub fn github_summary(env: &dyn Env, markdown: &str) -> std::io::Result<()> {
    match env.var(v::GITHUB_STEP_SUMMARY) {
        Some(path) => append(Path::new(&path), markdown),
        None => Ok(()),
    }
}

/// Writes a GitLab dotenv report (`artifacts: reports: dotenv:`), so later jobs get
/// the values as variables. Values are single-line; GitLab rejects others.
pub fn gitlab_dotenv(path: &Path, pairs: &[(&str, String)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (k, val) in pairs {
        text.push_str(&format!("{k}={}\n", val.replace(['\n', '\r'], " ")));
    }
    append(path, &text)
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn github(dir: &Path) -> HashMap<String, String> {
        [
            ("GITHUB_ACTIONS", "true".to_owned()),
            ("GITHUB_OUTPUT", dir.join("out").display().to_string()),
            (
                "GITHUB_STEP_SUMMARY",
                dir.join("summary").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    #[test]
    fn annotations_escape_like_the_toolkit() {
        let dir = tempfile::tempdir().unwrap();
        let env = github(dir.path());
        assert_eq!(
            error_annotation(&env, Some("a,b:c.json"), "50% bad\nline").unwrap(),
            "::error file=a%2Cb%3Ac.json::50%25 bad%0Aline"
        );
        assert!(error_annotation(&HashMap::new(), None, "x").is_none());
        assert_eq!(
            add_mask(&env, "-----BEGIN-----\nabcdef\n"),
            vec!["::add-mask::-----BEGIN-----", "::add-mask::abcdef"]
        );
    }

    #[test]
    fn outputs_use_heredocs_for_multiline_values() {
        let dir = tempfile::tempdir().unwrap();
        let env = github(dir.path());
        github_outputs(
            &env,
            &[
                ("record", "sha256:ab".into()),
                ("table", "a\nCUSTODY_EOF\nb".into()),
            ],
        )
        .unwrap();
        let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert_eq!(
            out,
            "record=sha256:ab\ntable<<CUSTODY_EOF_\na\nCUSTODY_EOF\nb\nCUSTODY_EOF_\n"
        );
        github_summary(&env, "| a |\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("summary")).unwrap(),
            "| a |\n"
        );
        gitlab_dotenv(
            &dir.path().join("custody.env"),
            &[("CUSTODY_RECORD", "x\ny".into())],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("custody.env")).unwrap(),
            "CUSTODY_RECORD=x y\n"
        );
    }
}
