//! `custody scan`: the secrets and PHI check evidence-upload runs before storing, by
//! hand — on files before they are attached to a pipeline, or on a whole fixture tree to
//! build the allow-list. Findings name file, line, column and rule, never the value.

use std::io::BufReader;

use crate::cli::{Format, ScanArgs};
use crate::exit::{Exit, fail};

pub fn run(args: &ScanArgs) -> anyhow::Result<Exit> {
    let cfg = match &args.config {
        Some(p) => custody_scan::Config::read(p).map_err(|e| fail(Exit::Usage, e.to_string()))?,
        None => custody_scan::Config::default(),
    };
    let scanner = custody_scan::Scanner::new(&cfg).map_err(|e| fail(Exit::Usage, e.to_string()))?;
    let mut findings = Vec::new();
    for path in &args.files {
        let file = std::fs::File::open(path)
            .map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))?;
        let name = path.display().to_string();
        findings.extend(
            scanner
                .scan_reader(&name, BufReader::with_capacity(256 << 10, file))
                .map_err(|e| fail(Exit::Usage, e.to_string()))?,
        );
    }
    match args.format {
        Format::Json => out!("{}", serde_json::to_string_pretty(&findings)?),
        Format::Table => {
            for f in &findings {
                out!("{f}");
            }
            errln!(
                "custody scan: {} file(s), {} finding(s){}",
                args.files.len(),
                findings.len(),
                if findings.is_empty() {
                    ""
                } else {
                    "; values are never printed: the digest is for an allow-list entry"
                }
            );
        }
    }
    Ok(if findings.is_empty() {
        Exit::Ok
    } else {
        Exit::Verify
    })
}
