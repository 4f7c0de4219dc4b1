//! `cargo xtask components`: render the GitLab CI/CD catalog layout.
//!
//! GitLab reads catalog components only from a top-level `templates/` directory
//! (`templates/<name>/template.yml`). The sources live in `components/<name>/template.yml`;
//! rendering does two things to each:
//!
//! 1. **Release lines** — an input default carrying a `# release: …` marker comment is
//!    rewritten from the binary manifests in `actions/<step>/manifest.json`, so the
//!    GitHub Actions and the GitLab components always name the same version and
//!    checksums. The markers (the release tool writes the manifests, then runs this):
//!    - `default: "0.1.0" # release: version` — the manifests' common version;
//!    - `default: "OWNER/REPO" # release: repository` — the GitHub repository;
//!    - `default: "<hex>" # release: sha256 <step> <target>` — one asset's SHA-256
//!      (empty while the manifest says `"sha256": null`);
//!    - `default: "<name>=<hex> …" # release: checksums` — every released asset of
//!      every manifest, for components that run several binaries.
//!
//!    The rewritten source is written back to `components/` too.
//! 2. **The shared obtain script** — a script item written exactly `- "#custody:obtain"`
//!    is replaced by `actions/lib/obtain.sh` (the function the Actions source), because
//!    a component's job runs in the user's project and cannot read files of ours.
//!
//! `--check` changes nothing and fails when a rendered template or a release line is
//! out of date.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Change nothing; fail when `templates/` or a release line in `components/` is out of date.
    #[arg(long)]
    check: bool,
}

const OBTAIN_MARKER: &str = "- \"#custody:obtain\"";
const OBTAIN_SCRIPT: &str = "actions/lib/obtain.sh";
const TARGETS: [&str; 2] = ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];

/// What the release lines are rewritten from.
#[derive(Debug)]
struct Release {
    version: String,
    repository: String,
    /// `(step, target)` → (asset name, sha256 or empty)
    assets: BTreeMap<(String, String), (String, String)>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    render_all(Path::new("."), args.check)
}

/// Renders (or with `check`, compares) every component of the repository at `root`.
pub fn render_all(root: &Path, check: bool) -> anyhow::Result<()> {
    let release = read_manifests(&root.join("actions"))?;
    let obtain = std::fs::read_to_string(root.join(OBTAIN_SCRIPT))
        .with_context(|| format!("reading {OBTAIN_SCRIPT}"))?;
    let mut drift = Vec::new();
    let mut rendered_names = Vec::new();
    for name in component_names(&root.join("components"))? {
        let source_path = root.join("components").join(&name).join("template.yml");
        let source = std::fs::read_to_string(&source_path)
            .with_context(|| format!("reading {}", source_path.display()))?;
        let synced = sync_release_lines(&source, &release)
            .with_context(|| format!("in {}", source_path.display()))?;
        let rendered = render(&name, &synced, &obtain)
            .with_context(|| format!("rendering {}", source_path.display()))?;
        let out_path = root.join("templates").join(&name).join("template.yml");
        if synced != source {
            drift.push(source_path.clone());
            if !check {
                std::fs::write(&source_path, &synced)
                    .with_context(|| format!("writing {}", source_path.display()))?;
            }
        }
        if std::fs::read_to_string(&out_path).ok().as_deref() != Some(rendered.as_str()) {
            drift.push(out_path.clone());
            if !check {
                if let Some(dir) = out_path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&out_path, &rendered)
                    .with_context(|| format!("writing {}", out_path.display()))?;
            }
        }
        rendered_names.push(name);
    }
    // a template whose source was removed must go too
    if let Ok(entries) = std::fs::read_dir(root.join("templates")) {
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !rendered_names.contains(&name) {
                drift.push(entry.path());
                if !check {
                    let path = entry.path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                }
            }
        }
    }
    if check {
        if !drift.is_empty() {
            let list: Vec<String> = drift.iter().map(|p| p.display().to_string()).collect();
            bail!(
                "out of date: {}; run `cargo xtask components` and commit the result",
                list.join(", ")
            );
        }
        eprintln!(
            "templates/ is in sync with components/ ({} components)",
            rendered_names.len()
        );
    } else {
        for p in &drift {
            eprintln!("wrote {}", p.display());
        }
        eprintln!(
            "rendered {} components into templates/",
            rendered_names.len()
        );
    }
    Ok(())
}

fn component_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.path().join("template.yml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn read_manifests(dir: &Path) -> anyhow::Result<Release> {
    let mut version: Option<(String, PathBuf)> = None;
    let mut repository: Option<String> = None;
    let mut assets = BTreeMap::new();
    let mut steps = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path().join("manifest.json");
        if path.is_file() {
            steps.push(path);
        }
    }
    steps.sort();
    for path in steps {
        let step = path
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
            .context("manifest path without a step directory")?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let m: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let v = m
            .get("version")
            .and_then(|v| v.as_str())
            .with_context(|| format!("{}: no \"version\"", path.display()))?;
        match &version {
            Some((other, other_path)) if other != v => bail!(
                "{} says version {v} but {} says {other}: every step is released together",
                path.display(),
                other_path.display()
            ),
            _ => version = Some((v.to_string(), path.clone())),
        }
        let r = m
            .get("repository")
            .and_then(|v| v.as_str())
            .with_context(|| format!("{}: no \"repository\"", path.display()))?;
        repository.get_or_insert_with(|| r.to_string());
        for target in TARGETS {
            let asset = m
                .get("assets")
                .and_then(|a| a.get(target))
                .with_context(|| format!("{}: no asset for {target}", path.display()))?;
            let name = asset
                .get("name")
                .and_then(|v| v.as_str())
                .with_context(|| format!("{}: asset {target} has no name", path.display()))?;
            let sha = match asset.get("sha256") {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => bail!(
                    "{}: asset {target} has sha256 {other}, not a string or null",
                    path.display()
                ),
            };
            assets.insert((step.clone(), target.to_string()), (name.to_string(), sha));
        }
    }
    let (version, _) = version.context("no actions/*/manifest.json found")?;
    Ok(Release {
        version,
        repository: repository.unwrap_or_default(),
        assets,
    })
}

/// Rewrites the `default:` value on every line carrying a `# release: …` marker.
fn sync_release_lines(source: &str, release: &Release) -> anyhow::Result<String> {
    let mut out = String::with_capacity(source.len());
    for (n, line) in source.split_inclusive('\n').enumerate() {
        let Some(marker_at) = line.find("# release: ") else {
            out.push_str(line);
            continue;
        };
        let marker = line[marker_at + "# release: ".len()..].trim_end();
        let value = match marker.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["version"] => release.version.clone(),
            ["repository"] => release.repository.clone(),
            ["sha256", step, target] => release
                .assets
                .get(&((*step).to_string(), (*target).to_string()))
                .map(|(_, sha)| sha.clone())
                .with_context(|| {
                    format!("line {}: no manifest asset for {step} {target}", n + 1)
                })?,
            ["checksums"] => release
                .assets
                .values()
                .filter(|(_, sha)| !sha.is_empty())
                .map(|(name, sha)| format!("{name}={sha}"))
                .collect::<Vec<_>>()
                .join(" "),
            _ => bail!("line {}: unknown release marker `{marker}`", n + 1),
        };
        let head = &line[..marker_at];
        let Some(default_at) = head.find("default:") else {
            bail!(
                "line {}: a release marker must sit on a `default:` line",
                n + 1
            );
        };
        let indent = &head[..default_at];
        let _ = write!(out, "{indent}default: \"{value}\" # release: {marker}");
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The catalog copy: a header, then the source with the obtain script inlined.
fn render(name: &str, source: &str, obtain: &str) -> anyhow::Result<String> {
    let mut out = format!(
        "# Rendered by `cargo xtask components` from components/{name}/template.yml and\n\
         # actions/lib/obtain.sh: edit those, not this file (`cargo xtask components --check`\n\
         # fails when it drifts).\n"
    );
    let mut inlined = 0;
    for line in source.split_inclusive('\n') {
        if line.trim() == OBTAIN_MARKER {
            let indent = &line[..line.len() - line.trim_start().len()];
            let _ = writeln!(out, "{indent}- |");
            for script_line in obtain.lines() {
                if script_line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{indent}  {script_line}");
                }
            }
            inlined += 1;
        } else {
            out.push_str(line);
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if source.contains("#custody:obtain") && inlined == 0 {
        bail!("`#custody:obtain` must be a script item of its own: {OBTAIN_MARKER}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        let mut assets = BTreeMap::new();
        assets.insert(
            ("runner-guard".into(), TARGETS[0].into()),
            (
                "runner-guard-x86_64-unknown-linux-musl".into(),
                "ab".repeat(32),
            ),
        );
        assets.insert(
            ("runner-guard".into(), TARGETS[1].into()),
            (
                "runner-guard-aarch64-unknown-linux-musl".into(),
                String::new(),
            ),
        );
        Release {
            version: "1.2.3".into(),
            repository: "acme/custody".into(),
            assets,
        }
    }

    #[test]
    fn release_lines_are_rewritten_from_the_manifests() {
        let src = "    version:\n      default: \"0.1.0\" # release: version\n      \
                   default: \"\" # release: sha256 runner-guard x86_64-unknown-linux-musl\n      \
                   default: \"x\" # release: sha256 runner-guard aarch64-unknown-linux-musl\n      \
                   default: \"\" # release: checksums\n      default: \"OWNER/REPO\" # release: repository\n";
        let out = sync_release_lines(src, &release()).unwrap();
        assert!(out.contains("default: \"1.2.3\" # release: version\n"));
        assert!(out.contains(&format!(
            "default: \"{}\" # release: sha256 runner-guard x86_64",
            "ab".repeat(32)
        )));
        assert!(out.contains("default: \"\" # release: sha256 runner-guard aarch64"));
        assert!(out.contains(&format!(
            "default: \"runner-guard-x86_64-unknown-linux-musl={}\" # release: checksums",
            "ab".repeat(32)
        )));
        assert!(out.contains("default: \"acme/custody\" # release: repository"));
        // idempotent
        assert_eq!(sync_release_lines(&out, &release()).unwrap(), out);
    }

    #[test]
    fn unknown_markers_and_assets_are_refused() {
        let err = sync_release_lines("  default: \"\" # release: shasum\n", &release());
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("unknown release marker")
        );
        let err = sync_release_lines(
            "  default: \"\" # release: sha256 policy-check x86_64-unknown-linux-musl\n",
            &release(),
        );
        assert!(err.unwrap_err().to_string().contains("no manifest asset"));
        let err = sync_release_lines("  name: x # release: version\n", &release());
        assert!(err.unwrap_err().to_string().contains("`default:` line"));
    }

    #[test]
    fn check_fails_on_drift_and_render_repairs_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("actions/lib")).unwrap();
        std::fs::create_dir_all(root.join("actions/runner-guard")).unwrap();
        std::fs::create_dir_all(root.join("components/runner-guard")).unwrap();
        std::fs::write(root.join(OBTAIN_SCRIPT), "custody_obtain() (\n  :\n)\n").unwrap();
        let manifest = serde_json::json!({
            "version": "0.2.0", "released": true, "repository": "acme/custody",
            "assets": {
                TARGETS[0]: {"name": "runner-guard-x86_64-unknown-linux-musl", "sha256": "ab".repeat(32)},
                TARGETS[1]: {"name": "runner-guard-aarch64-unknown-linux-musl", "sha256": null},
            }
        });
        std::fs::write(
            root.join("actions/runner-guard/manifest.json"),
            manifest.to_string(),
        )
        .unwrap();
        let source = root.join("components/runner-guard/template.yml");
        std::fs::write(
            &source,
            "spec:\n  inputs:\n    version:\n      default: \"0.1.0\" # release: version\n---\njob:\n  script:\n    - \"#custody:obtain\"\n",
        )
        .unwrap();
        // nothing rendered yet, and a stale release line
        let err = render_all(root, true).unwrap_err().to_string();
        assert!(err.contains("templates/runner-guard/template.yml"), "{err}");
        assert!(
            err.contains("components/runner-guard/template.yml"),
            "{err}"
        );
        render_all(root, false).unwrap();
        render_all(root, true).unwrap();
        let rendered =
            std::fs::read_to_string(root.join("templates/runner-guard/template.yml")).unwrap();
        assert!(rendered.contains("default: \"0.2.0\" # release: version"));
        assert!(rendered.contains("custody_obtain() ("));
        // an edit of the rendered copy is drift
        std::fs::write(
            root.join("templates/runner-guard/template.yml"),
            rendered.replace("0.2.0", "9.9.9"),
        )
        .unwrap();
        assert!(render_all(root, true).is_err());
        // so is a template without a source
        render_all(root, false).unwrap();
        std::fs::create_dir_all(root.join("templates/gone")).unwrap();
        assert!(
            render_all(root, true)
                .unwrap_err()
                .to_string()
                .contains("gone")
        );
        render_all(root, false).unwrap();
        assert!(!root.join("templates/gone").exists());
    }

    #[test]
    fn obtain_script_is_inlined_at_the_marker() {
        let src = "job:\n  script:\n    - \"#custody:obtain\"\n    - echo hi\n";
        let out = render("x", src, "f() (\n  echo a\n\n)\n").unwrap();
        assert!(out.starts_with("# Rendered by"));
        assert!(out.contains("    - |\n      f() (\n        echo a\n\n      )\n    - echo hi\n"));
        let bad = render("x", "script: [\"#custody:obtain\"]\n", "f\n");
        assert!(bad.is_err());
    }
}
