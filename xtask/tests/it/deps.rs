//! Issue 18: one HTTP stack. For every shipped binary, `cargo tree` (normal dependencies,
//! for the host: the HTTP and TLS crates are the same for the musl release targets, and
//! the host's are the ones the test build has already fetched, so nothing is downloaded)
//! must show one HTTP client (hyper, through custody-http), one TLS
//! library (rustls), one root policy (custody-http's: webpki-root-certs and
//! rustls-native-certs) and the ring provider selected by Custody's own crates.
//!
//! The one recorded exception: the `gitlab` crate's `client_api` feature (the design
//! card's GitLab crate; its `api` module needs that feature) turns on `reqwest/rustls`,
//! which compiles reqwest and turns on rustls's aws-lc-rs provider. Custody never
//! builds a reqwest client (no `reqwest::` in its sources; its requests go through
//! `custody_http::gitlab::Client`). The check fails on anything else: another client
//! crate, another TLS library, reqwest wanted by any other crate, or aws-lc selected by
//! any path that does not come from reqwest's `rustls` feature.

use std::process::Command;

use crate::support;

const BINARIES: [&str; 5] = [
    "custody",
    "custody-gate",
    "evidence-upload",
    "policy-check",
    "runner-guard",
];

/// HTTP clients and TLS stacks other than hyper and rustls.
const FOREIGN: [&str; 11] = [
    "ureq",
    "isahc",
    "curl",
    "attohttpc",
    "surf",
    "awc",
    "native-tls",
    "openssl",
    "openssl-sys",
    "hyper-tls",
    "s2n-tls",
];

/// Packages that are in the tree only because of the gitlab → reqwest exception.
const EXCEPTION_ONLY: [&str; 2] = ["reqwest", "rustls-platform-verifier"];

fn tree(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .current_dir(support::root())
        .args(["tree", "--locked", "--offline"])
        .args(args)
        .output()
        .expect("cargo tree");
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `(depth, text)` of each line of a `--prefix depth` tree.
fn lines(tree: &str) -> Vec<(usize, &str)> {
    tree.lines()
        .filter_map(|l| {
            let digits = l.chars().take_while(char::is_ascii_digit).count();
            let (d, rest) = l.split_at(digits);
            Some((d.parse().ok()?, rest))
        })
        .collect()
}

fn name(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

fn is_workspace(line: &str) -> bool {
    let n = name(line);
    n.starts_with("custody") || BINARIES.contains(&n) || n == "xtask"
}

#[test]
fn every_binary_has_one_http_client_one_tls_stack_and_one_root_policy() {
    for bin in BINARIES {
        let packages = tree(&["-p", bin, "-e", "normal", "--prefix", "none", "-f", "{p}"]);
        let names: Vec<&str> = packages.lines().map(name).collect();
        for foreign in FOREIGN {
            assert!(
                !names.contains(&foreign),
                "{bin} depends on {foreign}: Custody talks HTTP through custody-http (hyper + rustls) only"
            );
        }
        for must in [
            "hyper",
            "hyper-util",
            "rustls",
            "ring",
            "webpki-root-certs",
            "rustls-native-certs",
            "custody-http",
        ] {
            assert!(names.contains(&must), "{bin} lacks {must}");
        }

        // reqwest (and what only it brings) is wanted by the gitlab crate alone
        for only in EXCEPTION_ONLY {
            if !names.contains(&only) {
                continue;
            }
            let inverted = tree(&["-p", bin, "-e", "normal", "-i", only, "--prefix", "depth"]);
            for (depth, line) in lines(&inverted) {
                if depth == 1 {
                    assert!(
                        matches!(name(line), "gitlab" | "reqwest"),
                        "{bin}: {only} is wanted by {line}, not only by the gitlab crate"
                    );
                }
            }
        }

        // aws-lc is selected only through reqwest's `rustls` feature, and that only by
        // the gitlab crate
        if names.contains(&"aws-lc-rs") {
            let inverted = tree(&[
                "-p",
                bin,
                "-e",
                "features,normal",
                "-i",
                "aws-lc-rs",
                "--prefix",
                "depth",
            ]);
            let mut stack: Vec<&str> = Vec::new();
            for (depth, line) in lines(&inverted) {
                stack.truncate(depth);
                stack.push(line);
                let selects_aws_lc = stack.iter().any(|l| {
                    l.split_once(" feature \"")
                        .is_some_and(|(_, f)| f.contains("aws-lc") || f.contains("aws_lc"))
                });
                if !selects_aws_lc || !is_workspace(line) {
                    continue;
                }
                let through_reqwest = stack
                    .iter()
                    .any(|l| l.starts_with("reqwest feature \"rustls\""));
                assert!(
                    through_reqwest,
                    "{bin}: aws-lc is selected by {line} other than through the gitlab crate's reqwest: {stack:#?}"
                );
            }
            // and reqwest's `rustls` feature is turned on by the gitlab crate alone
            let reqwest = tree(&[
                "-p",
                bin,
                "-e",
                "features,normal",
                "-i",
                "reqwest",
                "--prefix",
                "depth",
            ]);
            let mut stack: Vec<&str> = Vec::new();
            for (depth, line) in lines(&reqwest) {
                stack.truncate(depth);
                if let Some(parent) = stack.last()
                    && parent.starts_with("reqwest feature \"rustls\"")
                {
                    assert!(
                        line.starts_with("gitlab") || line.starts_with("reqwest"),
                        "{bin}: reqwest's rustls feature is turned on by {line}"
                    );
                }
                stack.push(line);
            }
        }
    }
}

#[test]
fn no_source_builds_a_client_outside_custody_http() {
    let root = support::root();
    let mut offenders = Vec::new();
    for dir in ["crates", "xtask/src"] {
        for entry in walk(&root.join(dir)) {
            if entry.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&entry).unwrap();
            for needle in [
                "reqwest::",
                "ureq::",
                "hyper_util::client::legacy::Client::builder",
            ] {
                let allowed = needle.starts_with("hyper_util")
                    && entry.starts_with(root.join("crates/custody-http"));
                if text.contains(needle) && !allowed {
                    offenders.push(format!("{}: {needle}", entry.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
