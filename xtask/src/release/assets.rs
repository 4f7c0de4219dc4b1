//! The files a release publishes, read from a directory holding `SHA256SUMS` and every
//! file it names (what `cargo xtask dist` writes), each checked against its checksum
//! before anything is changed or sent.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::dist::{PROVENANCE_FILE, SUMS_FILE};

/// The provenance's public key; published beside it (never the private key).
const PUBLIC_KEY_FILE: &str = "provenance.key.pub";

/// One file of the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Reads `dir/SHA256SUMS`, checks every file it names, and returns those files, then
/// `SHA256SUMS` itself, then the provenance and its public key when present.
pub fn read(dir: &Path) -> anyhow::Result<Vec<Asset>> {
    let sums_path = dir.join(SUMS_FILE);
    let sums = std::fs::read_to_string(&sums_path).with_context(|| {
        format!(
            "reading {}: --assets must name a directory holding SHA256SUMS and the files it lists (what `cargo xtask dist` writes)",
            sums_path.display()
        )
    })?;
    let mut assets = Vec::new();
    for (n, line) in sums.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (hex, name) = parse_line(line).with_context(|| {
            format!("{} line {}: not `SHA256  NAME`", sums_path.display(), n + 1)
        })?;
        if assets.iter().any(|a: &Asset| a.name == name) {
            bail!("{} names {name} twice", sums_path.display());
        }
        let asset = measure(dir, name)?;
        if asset.sha256 != hex {
            bail!(
                "asset {name}: its SHA-256 is {} but {} says {hex}: the file is corrupt or SHA256SUMS is stale; rebuild the assets (cargo xtask dist) — nothing was published",
                asset.sha256,
                sums_path.display()
            );
        }
        assets.push(asset);
    }
    if assets.is_empty() {
        bail!("{} names no file", sums_path.display());
    }
    assets.push(measure(dir, SUMS_FILE)?);
    let provenance = dir.join(PROVENANCE_FILE);
    let public_key = dir.join(PUBLIC_KEY_FILE);
    match (provenance.is_file(), public_key.is_file()) {
        (true, true) => {
            assets.push(measure(dir, PROVENANCE_FILE)?);
            assets.push(measure(dir, PUBLIC_KEY_FILE)?);
        }
        (false, false) => {}
        _ => bail!(
            "{} holds only one of {PROVENANCE_FILE} and {PUBLIC_KEY_FILE}: publish both or neither",
            dir.display()
        ),
    }
    Ok(assets)
}

/// `HEX  NAME` or `HEX *NAME` (sha256sum's text and binary modes); NAME a plain file name.
fn parse_line(line: &str) -> Option<(&str, &str)> {
    let (hex, rest) = line.split_once(' ')?;
    let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*'))?;
    let hex_ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let name_ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && name.bytes().all(|b| b.is_ascii_graphic());
    (hex_ok && name_ok).then_some((hex, name))
}

fn measure(dir: &Path, name: &str) -> anyhow::Result<Asset> {
    let path = dir.join(name);
    let file = std::fs::File::open(&path)
        .with_context(|| format!("asset {name}: cannot open {}", path.display()))?;
    let (digest, size) = custody_evidence::sha256_reader(file)
        .with_context(|| format!("asset {name}: reading {}", path.display()))?;
    Ok(Asset {
        name: name.to_owned(),
        path,
        size,
        sha256: digest.hex(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn hex(bytes: &[u8]) -> String {
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn reads_and_checks_every_named_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("a"), b"alpha").unwrap();
        std::fs::write(d.join("b"), b"beta").unwrap();
        std::fs::write(d.join("provenance.key"), b"SECRET").unwrap();
        std::fs::write(
            d.join(SUMS_FILE),
            format!("{}  a\n{} *b\n", hex(b"alpha"), hex(b"beta")),
        )
        .unwrap();
        let assets = read(d).unwrap();
        let names: Vec<&str> = assets.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "b", SUMS_FILE], "never the private key");
        assert_eq!(assets[0].size, 5);
        // the provenance goes with its key
        std::fs::write(d.join(PROVENANCE_FILE), b"{}").unwrap();
        assert!(read(d).unwrap_err().to_string().contains("both or neither"));
        std::fs::write(d.join(PUBLIC_KEY_FILE), b"PUB").unwrap();
        assert_eq!(read(d).unwrap().len(), 5);
        // a changed byte is refused, naming the asset
        std::fs::write(d.join("b"), b"betA").unwrap();
        let err = read(d).unwrap_err().to_string();
        assert!(err.contains("asset b:") && err.contains("corrupt"), "{err}");
    }

    #[test]
    fn unsafe_names_and_bad_lines_are_refused() {
        let h = "0".repeat(64);
        assert!(parse_line(&format!("{h}  ../x")).is_none());
        assert!(parse_line(&format!("{h}  a/b")).is_none());
        assert!(parse_line(&format!("{h} x")).is_none());
        assert!(parse_line(&format!("{}  x", "0".repeat(63))).is_none());
        assert!(parse_line(&format!("{}  x", "A".repeat(64))).is_none());
        assert_eq!(parse_line(&format!("{h}  x")), Some((h.as_str(), "x")));
    }
}
