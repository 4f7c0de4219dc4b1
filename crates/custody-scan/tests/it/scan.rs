use std::path::{Path, PathBuf};

use custody_scan::{Allow, Config, Finding, Scanner};
use custody_test_support::phi::Corpus;
use sha2::{Digest as _, Sha256};

fn config() -> Config {
    Config {
        mrn_patterns: vec![Corpus::MRN_PATTERN.to_owned()],
        ..Config::default()
    }
}

fn sha(v: &str) -> String {
    Sha256::digest(v.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scan_corpus(scanner: &Scanner, corpus: &Corpus) -> Vec<Finding> {
    corpus
        .files
        .iter()
        .flat_map(|(name, bytes)| scanner.scan_reader(name, bytes.as_slice()).unwrap())
        .collect()
}

#[test]
fn every_planted_item_is_found_and_no_finding_holds_a_value() {
    let corpus = Corpus::new();
    let scanner = Scanner::new(&config()).unwrap();
    let findings = scan_corpus(&scanner, &corpus);
    for p in &corpus.planted {
        assert!(
            findings
                .iter()
                .any(|f| f.file == p.file && f.rule == p.rule && f.value_sha256 == sha(&p.value)),
            "{} in {} not found by {}: {findings:#?}",
            p.value.chars().take(3).collect::<String>(),
            p.file,
            p.rule
        );
    }
    let text = format!(
        "{}\n{}",
        findings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        serde_json::to_string(&findings).unwrap()
    );
    for v in corpus.values() {
        assert!(!text.contains(v), "a finding printed a planted value");
    }
    // line and column point at the value
    let f = findings
        .iter()
        .find(|f| f.file == "junit.xml" && f.rule == "ssn")
        .unwrap();
    let line = std::str::from_utf8(&corpus.files[2].1)
        .unwrap()
        .lines()
        .nth(usize::try_from(f.line).unwrap() - 1)
        .unwrap();
    assert_eq!(
        &line[usize::try_from(f.column).unwrap() - 1..][..11],
        "301-22-4455"
    );
}

#[test]
fn without_the_configured_pattern_the_bare_mrn_format_is_not_known() {
    let corpus = Corpus::new();
    let scanner = Scanner::new(&Config::default()).unwrap();
    let findings = scan_corpus(&scanner, &corpus);
    assert!(
        !findings
            .iter()
            .any(|f| f.value_sha256 == sha("MRN-55512345")),
        "the organisation's MRN format comes from the configuration"
    );
}

#[test]
fn allow_lists_by_path_rule_and_value_digest() {
    let corpus = Corpus::new();
    let mut cfg = config();
    cfg.allow = vec![
        Allow {
            path: Some("junit*".into()),
            ..Allow::default()
        },
        Allow {
            rules: vec!["aws-access-key-id".into()],
            value_sha256: vec![sha("AKIAIOSFODNN7EXAMPLE")],
            ..Allow::default()
        },
    ];
    cfg.disable = vec!["private-key".into()];
    let findings = scan_corpus(&Scanner::new(&cfg).unwrap(), &corpus);
    assert!(!findings.iter().any(|f| f.file == "junit.xml"));
    assert!(!findings.iter().any(|f| f.rule == "aws-access-key-id"));
    assert!(!findings.iter().any(|f| f.rule == "private-key"));
    // the rest still counts
    assert!(findings.iter().any(|f| f.rule == "aws-secret-access-key"));
    assert!(
        findings
            .iter()
            .any(|f| f.rule == "ssn" && f.file == "adt-a01.hl7")
    );
}

#[test]
fn context_rules_need_a_patient() {
    let scanner = Scanner::new(&Config::default()).unwrap();
    // an SBOM's maintainer, a version number that looks like an address
    let quiet =
        "\"author\": \"Natanael Copa <ncopa@alpinelinux.org>\", \"version\": \"1.27.0.0\"\n";
    assert!(scanner.scan_text("sbom", quiet).is_empty());
    let loud = "patient contact ncopa@example.org from 10.1.2.3\n";
    let rules: Vec<String> = scanner
        .scan_text("log", loud)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, ["email-address", "ip-address"]);
}

#[test]
fn a_secret_across_the_window_of_a_long_line_is_found_once() {
    let scanner = Scanner::new(&Config::default()).unwrap();
    let mut line = vec![b'a'; custody_scan::MAX_LINE - 10];
    line.extend_from_slice(b" AKIAIOSFODNN7EXAMPLE ");
    line.extend(std::iter::repeat_n(b'b', 100));
    line.push(b'\n');
    line.extend_from_slice(b"second line ghp_16C7e42F292c6912E7710c838347Ae178B4a\n");
    let findings = scanner
        .scan_reader("one-line.json", line.as_slice())
        .unwrap();
    let rules: Vec<(&str, u64)> = findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
    assert_eq!(rules, [("aws-access-key-id", 1), ("github-pat", 2)]);
    assert_eq!(
        findings[0].column,
        u64::try_from(custody_scan::MAX_LINE - 10 + 2).unwrap()
    );
}

#[test]
fn the_real_fixtures_raise_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    let scanner = Scanner::new(&Config::default()).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 20, "{files:?}");
    let mut found = Vec::new();
    for f in &files {
        let name = f.strip_prefix(&root).unwrap().display().to_string();
        let reader = std::io::BufReader::new(std::fs::File::open(f).unwrap());
        found.extend(scanner.scan_reader(&name, reader).unwrap());
    }
    assert!(
        found.is_empty(),
        "real fixtures flagged:\n{}",
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn configuration_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("scan.yaml");
    std::fs::write(
        &p,
        "default: refuse\nstages: {scan: off}\nmrnPatterns: ['\\bMRN-[0-9]{8}\\b']\nallow:\n  - path: tests/synthetic/*\n    reason: synthetic patients\n",
    )
    .unwrap();
    let cfg = Config::read(&p).unwrap();
    assert_eq!(cfg.policy("scan"), custody_scan::Policy::Off);
    assert_eq!(cfg.policy("test"), custody_scan::Policy::Refuse);
    Scanner::new(&cfg).unwrap();
    std::fs::write(&p, "default: sometimes\n").unwrap();
    let err = Config::read(&p).unwrap_err().to_string();
    assert!(
        err.contains("scan.yaml") && err.contains("sometimes"),
        "{err}"
    );
    std::fs::write(&p, "mrnPatterns: ['(unclosed']\n").unwrap();
    let err = Scanner::new(&Config::read(&p).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("medical-record-number"), "{err}");
}

/// README.md's `.custody/scan.yaml` is a configuration the scanner takes, and does what
/// the README says: the MRN format is found, the synthetic path is allowed.
#[test]
fn the_readme_scan_yaml_works() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let block = readme
        .split("<!-- scan: .custody/scan.yaml -->\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md marks its scan.yaml block");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("scan.yaml");
    std::fs::write(&p, block).unwrap();
    let cfg = Config::read(&p).unwrap();
    let scanner = Scanner::new(&cfg).unwrap();
    let text = "record MRN-55512345 of the intake test\n";
    assert_eq!(
        scanner.scan_text("junit.xml", text)[0].rule,
        "medical-record-number"
    );
    assert!(
        scanner
            .scan_text("tests/fixtures/synthetic-patients.json", text)
            .is_empty()
    );
}
