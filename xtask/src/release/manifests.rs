//! The manifests a release rewrites: the `[workspace.package]` version in the root
//! Cargo.toml, and each step's binary manifest (`actions/<step>/manifest.json`), which
//! names the release's repository and every asset's SHA-256 so the Actions can check
//! what they download.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::assets::Asset;
use super::plan::Plan;

/// The `[workspace.package]` `version` and `repository` of a root Cargo.toml.
pub fn workspace_package(cargo_toml: &str) -> anyhow::Result<(semver::Version, String)> {
    let mut in_section = false;
    let (mut version, mut repository) = (None, None);
    for line in cargo_toml.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_section = l == "[workspace.package]";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(v) = string_value(l, "version") {
            version = Some(v);
        } else if let Some(v) = string_value(l, "repository") {
            repository = Some(v);
        }
    }
    let version = version.context("Cargo.toml has no [workspace.package] version")?;
    let version = semver::Version::parse(&version)
        .with_context(|| format!("Cargo.toml: workspace version {version} is not semver"))?;
    Ok((version, repository.unwrap_or_default()))
}

/// `key = "value"` → value.
fn string_value(line: &str, key: &str) -> Option<String> {
    let rest = line
        .strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    let inner = rest.strip_prefix('"')?;
    let end = inner.find('"')?;
    Some(inner.get(..end)?.to_owned())
}

/// Cargo.toml with the `[workspace.package]` version replaced.
pub fn bump_cargo_toml(text: &str, version: &semver::Version) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut in_section = false;
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        if l.starts_with('[') {
            in_section = l == "[workspace.package]";
        } else if in_section && !done && string_value(l, "version").is_some() {
            let indent = &line[..line.len() - line.trim_start().len()];
            let _ = writeln!(out, "{indent}version = \"{version}\"");
            done = true;
            continue;
        }
        out.push_str(line);
    }
    if !done {
        bail!("Cargo.toml has no [workspace.package] version to bump");
    }
    Ok(out)
}

/// The binary manifest of one step (`actions/<step>/manifest.json`).
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    version: String,
    released: bool,
    repository: String,
    assets: std::collections::BTreeMap<String, ManifestAsset>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestAsset {
    name: String,
    sha256: Option<String>,
}

pub fn manifest_paths(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("actions");
    let mut v = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = entry?.path().join("manifest.json");
        if p.is_file() {
            v.push(p);
        }
    }
    v.sort();
    if v.is_empty() {
        bail!("no actions/*/manifest.json under {}", root.display());
    }
    Ok(v)
}

fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a binary manifest", path.display()))
}

/// Writes version, `released`, repository and every asset's SHA-256 into the manifests.
pub fn write_manifests(plan: &Plan, repo: &str, assets: &[Asset]) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for path in manifest_paths(&plan.root)? {
        let mut m = read_manifest(&path)?;
        m.version = plan.version.to_string();
        m.released = true;
        m.repository = repo.to_owned();
        for (target, a) in &mut m.assets {
            let found = assets.iter().find(|x| x.name == a.name).with_context(|| {
                format!(
                    "{}: names asset {} ({target}) which the release does not have",
                    path.display(),
                    a.name
                )
            })?;
            a.sha256 = Some(found.sha256.clone());
        }
        let mut text = serde_json::to_string_pretty(&m)?;
        text.push('\n');
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// On resume: the committed manifests must name exactly these assets' checksums.
pub fn check_manifests(root: &Path, assets: &[Asset]) -> anyhow::Result<()> {
    for path in manifest_paths(root)? {
        let m = read_manifest(&path)?;
        for a in m.assets.values() {
            let found = assets.iter().find(|x| x.name == a.name);
            match (found, &a.sha256) {
                (Some(f), Some(sha)) if &f.sha256 == sha => {}
                (Some(f), _) => bail!(
                    "asset {}: sha256 {} differs from the committed {} ({}): these are not the assets this release was prepared with",
                    a.name,
                    f.sha256,
                    path.display(),
                    a.sha256.as_deref().unwrap_or("null")
                ),
                (None, _) => bail!(
                    "asset {}: named by {} but not among the assets",
                    a.name,
                    path.display()
                ),
            }
        }
    }
    Ok(())
}

/// Before preparing: every binary a manifest names is among the assets.
pub fn check_manifest_names(root: &Path, assets: &[Asset]) -> anyhow::Result<()> {
    for path in manifest_paths(root)? {
        for a in read_manifest(&path)?.assets.values() {
            if !assets.iter().any(|x| x.name == a.name) {
                bail!(
                    "asset {}: named by {} but not among the assets (SHA256SUMS): build every target",
                    a.name,
                    path.display()
                );
            }
        }
    }
    Ok(())
}

pub fn read_manifest_repo(root: &Path) -> anyhow::Result<String> {
    let first = manifest_paths(root)?
        .into_iter()
        .next()
        .context("no manifest")?;
    Ok(read_manifest(&first)?.repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_version_is_read_and_bumped_in_its_section_only() {
        let text = "[workspace]\nmembers = []\n\n[workspace.package]\nversion = \"0.1.0\"\nrepository = \"https://github.com/acme/custody\"\n\n[workspace.dependencies]\nx = { version = \"1\" }\nsemver = \"1\"\n";
        let (v, repo) = workspace_package(text).unwrap();
        assert_eq!(v.to_string(), "0.1.0");
        assert_eq!(repo, "https://github.com/acme/custody");
        let bumped = bump_cargo_toml(text, &semver::Version::new(0, 2, 0)).unwrap();
        assert_eq!(
            bumped,
            text.replace("version = \"0.1.0\"", "version = \"0.2.0\"")
        );
        assert!(bump_cargo_toml("[package]\nversion = \"1.0.0\"\n", &v).is_err());
    }
}
