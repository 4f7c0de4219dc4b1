//! A CycloneDX 1.5 SBOM of this workspace, from `cargo metadata`: every package in the
//! resolved dependency graph with its purl and declared license. Deterministic: the
//! serial number derives from Cargo.lock and there is no timestamp, so the same
//! source gives the same bytes.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::util::{cargo, output};

/// Writes the SBOM; returns the number of components.
pub fn write(out: &Path) -> anyhow::Result<usize> {
    let meta: Value = serde_json::from_str(&output(cargo().args([
        "metadata",
        "--format-version",
        "1",
        "--locked",
    ]))?)?;
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .context("cargo metadata: workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let resolved: BTreeSet<&str> = meta["resolve"]["nodes"]
        .as_array()
        .context("cargo metadata: resolve")?
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let mut components = Vec::new();
    for pkg in meta["packages"]
        .as_array()
        .context("cargo metadata: packages")?
    {
        let id = pkg["id"].as_str().unwrap_or_default();
        if members.contains(id) || !resolved.contains(id) {
            continue;
        }
        let name = pkg["name"].as_str().unwrap_or_default();
        let version = pkg["version"].as_str().unwrap_or_default();
        let purl = format!("pkg:cargo/{name}@{version}");
        let mut c = json!({
            "type": "library",
            "bom-ref": purl,
            "name": name,
            "version": version,
            "purl": purl,
        });
        if let Some(license) = pkg["license"].as_str() {
            c["licenses"] = json!([{ "expression": license }]);
        }
        components.push(c);
    }
    components.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    let lock = std::fs::read("Cargo.lock").context("reading Cargo.lock")?;
    let h = Sha256::digest(&lock);
    let hx: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let serial = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hx[0..8],
        &hx[8..12],
        &hx[12..16],
        &hx[16..20],
        &hx[20..32]
    );
    let version = env!("CARGO_PKG_VERSION");
    let bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "tools": { "components": [{ "type": "application", "name": "custody-xtask-sbom", "version": version }] },
            "component": {
                "type": "application",
                "bom-ref": format!("pkg:cargo/custody@{version}"),
                "name": "custody",
                "version": version,
                "purl": format!("pkg:cargo/custody@{version}"),
                "licenses": [{ "expression": "Apache-2.0" }],
            },
        },
        "components": components,
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let n = components_len(&bom);
    std::fs::write(out, serde_json::to_vec_pretty(&bom)?)?;
    Ok(n)
}

fn components_len(bom: &Value) -> usize {
    bom["components"].as_array().map_or(0, Vec::len)
}
