//! CHANGELOG.md in the Keep a Changelog shape: an `## [Unreleased]` section (or
//! `## Unreleased`) above `## [VERSION] - YYYY-MM-DD` sections.

use anyhow::bail;

const UNRELEASED: &str = "## [Unreleased]";

/// Whether a line is the Unreleased heading, in either spelling.
fn is_unreleased(line: &str) -> bool {
    let l = line.trim_end().to_ascii_lowercase();
    l == "## [unreleased]" || l == "## unreleased"
}

/// Whether a line ends a section: the next `## ` heading or a link reference definition.
fn ends_section(line: &str) -> bool {
    line.starts_with("## ") || (line.starts_with('[') && line.contains("]: "))
}

/// `(start, end)` line indexes of the body of the section whose heading satisfies `is_heading`.
fn section(lines: &[&str], is_heading: impl Fn(&str) -> bool) -> Option<(usize, usize, usize)> {
    let heading = lines.iter().position(|l| is_heading(l))?;
    let start = heading + 1;
    let end = lines
        .iter()
        .skip(start)
        .position(|l| ends_section(l))
        .map_or(lines.len(), |n| start + n);
    Some((heading, start, end))
}

/// Whether the lines hold an entry (not only blank lines and `###` category headings).
fn has_entries(lines: &[&str]) -> bool {
    lines
        .iter()
        .any(|l| !l.trim().is_empty() && !l.starts_with("### "))
}

/// The Unreleased entries (trimmed), or an error saying what is missing.
pub fn unreleased(text: &str) -> anyhow::Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some((_, start, end)) = section(&lines, is_unreleased) else {
        bail!("CHANGELOG.md has no `{UNRELEASED}` section: add one with the release's entries");
    };
    let body = lines.get(start..end).unwrap_or_default();
    if !has_entries(body) {
        bail!(
            "CHANGELOG.md: the `{UNRELEASED}` section is empty: record what this release changes first"
        );
    }
    Ok(body.join("\n").trim().to_owned())
}

/// The body of `## [VERSION] …` (trimmed), once released.
pub fn released(text: &str, version: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let prefix = format!("## [{version}]");
    let (_, start, end) = section(&lines, |l| {
        l.strip_prefix(&prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    })?;
    Some(lines.get(start..end)?.join("\n").trim().to_owned())
}

/// Moves the Unreleased entries under `## [VERSION] - DATE`, leaving an empty Unreleased.
pub fn release(text: &str, version: &str, date: &str) -> anyhow::Result<String> {
    let entries = unreleased(text)?;
    let lines: Vec<&str> = text.lines().collect();
    let Some((heading, _, end)) = section(&lines, is_unreleased) else {
        bail!("CHANGELOG.md has no `{UNRELEASED}` section");
    };
    let mut out = String::with_capacity(text.len() + 64);
    for l in lines.get(..heading).unwrap_or_default() {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(UNRELEASED);
    out.push_str("\n\n");
    out.push_str(&format!("## [{version}] - {date}\n\n{entries}\n"));
    let rest = lines.get(end..).unwrap_or_default();
    if !rest.is_empty() {
        out.push('\n');
        for l in rest {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# Changelog\n\nIntro.\n\n## [Unreleased]\n\n### Added\n- a thing\n\n### Security\n- a fix\n\n## [0.1.0] - 2026-01-01\n\n### Added\n- first\n\n[0.1.0]: https://example.com\n";

    #[test]
    fn release_moves_the_entries_and_leaves_an_empty_unreleased() {
        let out = release(TEXT, "0.2.0", "2026-11-29").unwrap();
        assert_eq!(
            out,
            "# Changelog\n\nIntro.\n\n## [Unreleased]\n\n## [0.2.0] - 2026-11-29\n\n### Added\n- a thing\n\n### Security\n- a fix\n\n## [0.1.0] - 2026-01-01\n\n### Added\n- first\n\n[0.1.0]: https://example.com\n"
        );
        assert_eq!(
            released(&out, "0.2.0").unwrap(),
            "### Added\n- a thing\n\n### Security\n- a fix"
        );
        assert_eq!(released(&out, "0.1.0").unwrap(), "### Added\n- first");
        assert!(released(&out, "0.1").is_none());
        // the new Unreleased is empty: a second release is refused
        let err = release(&out, "0.3.0", "2026-11-30")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn empty_or_missing_unreleased_is_refused() {
        let err = unreleased("# Changelog\n\n## [Unreleased]\n\n### Added\n\n## [0.1.0]\n- x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty"), "{err}");
        let err = unreleased("# Changelog\n").unwrap_err().to_string();
        assert!(err.contains("no `## [Unreleased]`"), "{err}");
        assert_eq!(
            unreleased("## Unreleased\n- y\n").unwrap(),
            "- y",
            "the unbracketed spelling counts too"
        );
    }
}
