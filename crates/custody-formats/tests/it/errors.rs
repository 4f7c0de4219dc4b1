//! Refusals: each failure mode has its own error variant and a message that names
//! the file.

use custody_formats::{Format, FormatError, Kind, Syntax, detect, detect_for, summarize_for};

use crate::{edit, read};

/// The error variant without its details, to compare kinds of failure.
#[derive(Debug, PartialEq)]
enum Want {
    Empty,
    Truncated(Syntax),
    Malformed(Syntax),
    Unknown,
    UnknownJson,
    UnknownXml,
    Unsupported(Format),
    WrongStage(Format, Kind),
    Invalid(Format),
}

fn kind_of(error: &FormatError) -> Want {
    match error {
        FormatError::Empty { .. } => Want::Empty,
        FormatError::Truncated { syntax, .. } => Want::Truncated(*syntax),
        FormatError::Malformed { syntax, .. } => Want::Malformed(*syntax),
        FormatError::Unknown { .. } => Want::Unknown,
        FormatError::UnknownJson { .. } => Want::UnknownJson,
        FormatError::UnknownXml { .. } => Want::UnknownXml,
        FormatError::Unsupported { format, .. } => Want::Unsupported(*format),
        FormatError::WrongStage { format, stage, .. } => Want::WrongStage(*format, *stage),
        FormatError::Invalid { format, .. } => Want::Invalid(*format),
        other => panic!("unexpected variant {other:?}"),
    }
}

/// Checks that `bytes` is refused as `want` (through `stage` when given), with a
/// message that names the file and contains `mentions`.
fn check(name: &str, bytes: &[u8], stage: Option<Kind>, want: Want, mentions: &str) {
    let result = match stage {
        Some(stage) => detect_for(name, bytes, stage),
        None => detect(name, bytes),
    };
    let error = match result {
        Ok(format) => panic!("{name}: accepted as {format}, expected {want:?}"),
        Err(e) => e,
    };
    assert_eq!(kind_of(&error), want, "{name}: {error}");
    let message = error.to_string();
    assert!(message.starts_with(&format!("{name}: ")), "{message}");
    assert!(
        message.contains(mentions),
        "{name}: {message:?} lacks {mentions:?}"
    );
    let first = message
        .trim_start_matches(&format!("{name}: "))
        .chars()
        .next()
        .unwrap();
    assert!(!first.is_uppercase(), "messages are lowercase: {message}");
    assert!(!message.ends_with('.'), "no trailing period: {message}");
}

/// The first half of a fixture.
fn half(rel: &str) -> Vec<u8> {
    let bytes = read(rel);
    bytes[..bytes.len() / 2].to_vec()
}

/// A fixture cut just after the first `marker`: every tag is complete but
/// elements are still open.
fn cut_after(rel: &str, marker: &str) -> Vec<u8> {
    let text = String::from_utf8(read(rel)).unwrap();
    let end = text.find(marker).unwrap() + marker.len();
    text.as_bytes()[..end].to_vec()
}

#[test]
fn empty_files() {
    check("empty.json", b"", None, Want::Empty, "empty");
    check("blank.xml", b" \n\t\r\n", None, Want::Empty, "empty");
    check(
        "bom-only.json",
        b"\xEF\xBB\xBF\n",
        None,
        Want::Empty,
        "empty",
    );
}

#[test]
fn truncated_files() {
    for rel in [
        "scan-trivy/trivy-alpine-310.json",
        "sbom-cyclonedx/syft-1.5.0-alpine.cdx.json",
        "sbom-spdx/syft-1.5.0-alpine-2.3.spdx.json",
        "scan-sarif/codeql-2.5.4.sarif",
    ] {
        check(
            rel,
            &half(rel),
            None,
            Want::Truncated(Syntax::Json),
            "cut short",
        );
    }
    for rel in [
        "tests-junit/jest-junit.xml",
        "tests-junit/maven-surefire-StringUtilsTest.xml",
        "coverage-cobertura/gcovr-5.0.cobertura.xml",
    ] {
        check(
            rel,
            &half(rel),
            None,
            Want::Truncated(Syntax::Xml),
            "cut short",
        );
    }
    let rel = "tests-junit/pytest-fail-skip.xml";
    check(
        rel,
        &cut_after(rel, "</testcase>"),
        None,
        Want::Truncated(Syntax::Xml),
        "still open",
    );
    // Inside a tag: quick-xml reports the unclosed tag, still truncation.
    check(
        "cut-tag.xml",
        b"<testsuites><testsuite name=\"a\"><testcase na",
        None,
        Want::Truncated(Syntax::Xml),
        "cut short",
    );
    let rel = "coverage-lcov/gcovr-gcc14-nested.lcov";
    check(
        rel,
        &half(rel),
        None,
        Want::Truncated(Syntax::Lcov),
        "end_of_record",
    );
}

#[test]
fn wrong_stage() {
    let rel = "tests-junit/jest-junit.xml";
    check(
        rel,
        &read(rel),
        Some(Kind::Scan),
        Want::WrongStage(Format::JunitXml, Kind::Scan),
        "scan evidence was expected",
    );
    // Also through summarize_for, which refuses before parsing the body.
    let error = summarize_for(rel, &read(rel), Kind::Scan).unwrap_err();
    assert_eq!(
        kind_of(&error),
        Want::WrongStage(Format::JunitXml, Kind::Scan)
    );

    let rel = "sbom-spdx/trivy-centos-7-2.2.spdx.json";
    check(
        rel,
        &read(rel),
        Some(Kind::Tests),
        Want::WrongStage(Format::SpdxJson, Kind::Tests),
        "JUnit",
    );
    let rel = "coverage-lcov/istanbul-js.lcov";
    check(
        rel,
        &read(rel),
        Some(Kind::Sbom),
        Want::WrongStage(Format::Lcov, Kind::Sbom),
        "lcov",
    );
    // The positive twin: the same file for its own stage is accepted.
    assert_eq!(
        detect_for(rel, &read(rel), Kind::Coverage).unwrap(),
        Format::Lcov
    );
}

#[test]
fn unknown_content() {
    check(
        "notes.txt",
        b"hello world\nthis is not evidence\n",
        None,
        Want::Unknown,
        "neither JSON, XML nor lcov",
    );
    check(
        "image.png",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        None,
        Want::Unknown,
        "expected",
    );
    check(
        "other.json",
        br#"{"name": "x", "items": [1, 2, 3]}"#,
        None,
        Want::UnknownJson,
        "top-level keys: items, name",
    );
    check("list.json", b"[1, 2]", None, Want::UnknownJson, "array");
    let rel = "attestation-dsse/chainloop-attestation.dsse.json";
    check(rel, &read(rel), None, Want::UnknownJson, "DSSE envelope");
    check(
        "page.xml",
        b"<?xml version=\"1.0\"?><html><body/></html>",
        None,
        Want::UnknownXml,
        "<html>",
    );
    check(
        "clover.xml",
        b"<coverage generated=\"1\" clover=\"4.4\"><project/></coverage>",
        None,
        Want::UnknownXml,
        "Clover",
    );
    check(
        "bom.xml",
        b"<bom version=\"1\"><components/></bom>",
        None,
        Want::UnknownXml,
        "namespace",
    );
}

#[test]
fn malformed_content() {
    check(
        "bad.json",
        br#"{"bomFormat": }"#,
        None,
        Want::Malformed(Syntax::Json),
        "not well-formed",
    );
    check(
        "trailing.json",
        br#"{"runs": [], "version": "2.1.0"} {"#,
        None,
        Want::Malformed(Syntax::Json),
        "trailing",
    );
    check(
        "mismatch.xml",
        b"<testsuites><testsuite></testcase></testsuites>",
        None,
        Want::Malformed(Syntax::Xml),
        "not well-formed",
    );
    let rel = "coverage-lcov/istanbul-js.lcov";
    let bytes = edit(rel, "DA:1,1\n", "DA:one,1\n");
    check(rel, &bytes, None, Want::Malformed(Syntax::Lcov), "DA:one,1");
}

#[test]
fn unsupported_versions() {
    let rel = "sbom-cyclonedx/trivy-centos-7.cdx.json";
    let bytes = edit(rel, r#""specVersion": "1.5""#, r#""specVersion": "1.1""#);
    check(
        rel,
        &bytes,
        None,
        Want::Unsupported(Format::CycloneDxJson),
        "`1.1`",
    );
    let rel = "sbom-spdx/trivy-centos-7-2.2.spdx.json";
    let bytes = edit(rel, r#""SPDX-2.2""#, r#""SPDX-2.1""#);
    check(
        rel,
        &bytes,
        None,
        Want::Unsupported(Format::SpdxJson),
        "SPDX-2.2 and SPDX-2.3",
    );
    let rel = "scan-trivy/trivy-debian-buster.json";
    let bytes = edit(rel, r#""SchemaVersion": 2"#, r#""SchemaVersion": 1"#);
    check(
        rel,
        &bytes,
        None,
        Want::Unsupported(Format::TrivyJson),
        "SchemaVersion 2",
    );
    let rel = "scan-sarif/grype-image.sarif.json";
    let bytes = edit(rel, r#""version": "2.1.0""#, r#""version": "2.0.0""#);
    check(rel, &bytes, None, Want::Unsupported(Format::Sarif), "2.0.0");
    check(
        "bom-1.1.xml",
        b"<bom xmlns=\"http://cyclonedx.org/schema/bom/1.1\"/>",
        None,
        Want::Unsupported(Format::CycloneDxXml),
        "1.1",
    );
}

#[test]
fn invalid_content_of_a_known_format() {
    let rel = "sbom-cyclonedx/trivy-centos-7.cdx.json";
    let bytes = edit(rel, r#""components": ["#, r#""components": "none", "x": ["#);
    check(
        rel,
        &bytes,
        None,
        Want::Invalid(Format::CycloneDxJson),
        "does not follow",
    );
}
