//! SBOM summaries: CycloneDX JSON/XML and SPDX JSON.

use custody_formats::{Format, Kind, SbomSummary, Summary, Tool, detect, summarize, summarize_for};

use crate::read;

pub(crate) struct Expected {
    format: Format,
    spec: &'static str,
    tools: &'static [(&'static str, Option<&'static str>)],
    /// (raw, Unix seconds) of the document timestamp.
    timestamp: Option<(&'static str, i64)>,
    subject: Option<&'static str>,
    subject_version: Option<&'static str>,
    components: u64,
    files: Option<u64>,
    licenses: &'static [&'static str],
    subject_digest: Option<&'static str>,
    oci: &'static [&'static str],
}

const ALPINE: &str = "sha256:1c3b93ed450e26eac89b471d6d140e2f99488f489739b8b8ea5e8202dd086f82";

// How these were counted:
// - components: python, walking `components` and every nested `components` list
//   recursively (no fixture nests; the nested case is tested below); SPDX
//   `jq '.packages | length'`, files `jq '.files | length'` (null → 0).
// - licenses: python, the set of `licenses[].license.id // .name` and
//   `licenses[].expression` over those components; SPDX the set of package
//   `licenseConcluded`/`licenseDeclared` minus NOASSERTION/NONE/null.
// - tools: `jq .metadata.tools`; SPDX `jq .creationInfo.creators` (`Tool: ` entries).
// - subject: `jq .metadata.component`; SPDX the package named by documentDescribes
//   or the DESCRIBES relationship of SPDXRef-DOCUMENT.
// - pkg:oci digests: `grep -o 'pkg:oci[^"]*' -r` finds one, in the syft SPDX root
//   package's purl.
// - timestamp seconds: python `datetime.fromisoformat(...).timestamp()`.
pub(crate) const CASES: &[(&str, Expected)] = &[
    (
        "sbom-cyclonedx/bom-examples-cern-lhc-vdm-editor-1.2.cdx.json",
        Expected {
            format: Format::CycloneDxJson,
            spec: "1.2",
            tools: &[("Node.js module", Some("2.0.0"))],
            timestamp: Some(("2020-08-03T01:28:52.765Z", 1_596_418_132)),
            subject: Some("lhc-vdm-editor"),
            subject_version: Some("0.0.1"),
            components: 43,
            files: None,
            licenses: &["Apache-2.0", "BSD-2-Clause", "ISC", "MIT"],
            subject_digest: None,
            oci: &[],
        },
    ),
    (
        "sbom-cyclonedx/bom-examples-laravel-7.12.0-1.4.cdx.json",
        Expected {
            format: Format::CycloneDxJson,
            spec: "1.4",
            tools: &[("cyclonedx-php-composer", Some("in-dev"))],
            timestamp: None,
            subject: Some("cyclonedx-php-composer-demo"),
            subject_version: Some("dev-master"),
            components: 62,
            files: None,
            licenses: &["Apache-2.0", "BSD-3-Clause", "MIT"],
            subject_digest: None,
            oci: &[],
        },
    ),
    (
        "sbom-cyclonedx/syft-1.5.0-alpine.cdx.json",
        Expected {
            format: Format::CycloneDxJson,
            spec: "1.5",
            tools: &[("syft", Some("1.5.0"))],
            timestamp: Some(("2024-06-11T14:26:08-05:00", 1_718_133_968)),
            subject: Some("alpine"),
            subject_version: Some(ALPINE),
            components: 15,
            files: None,
            licenses: &[
                "Apache-2.0",
                "GPL-2.0-only",
                "MIT",
                "MIT AND BSD-2-Clause AND GPL-2.0-or-later",
                "MPL-2.0 AND MIT",
                "Zlib",
            ],
            // The subject has no purl here, only a digest-like version: not taken.
            subject_digest: None,
            oci: &[],
        },
    ),
    (
        "sbom-cyclonedx/trivy-centos-7.cdx.json",
        Expected {
            format: Format::CycloneDxJson,
            spec: "1.5",
            tools: &[("trivy", Some("dev"))],
            timestamp: Some(("2022-06-14T15:08:48+00:00", 1_655_219_328)),
            subject: Some("integration/testdata/fixtures/images/centos-7.tar.gz"),
            subject_version: None,
            components: 3,
            files: None,
            licenses: &["GPLv3+", "OpenSSL+"],
            subject_digest: None,
            oci: &[],
        },
    ),
    (
        "sbom-cyclonedx/trivy-npm-1.7.cdx.json",
        Expected {
            format: Format::CycloneDxJson,
            spec: "1.7",
            tools: &[("trivy", Some("dev"))],
            timestamp: Some(("2021-08-25T12:20:30+00:00", 1_629_894_030)),
            subject: Some("testdata/fixtures/repo/npm"),
            subject_version: None,
            components: 13,
            files: None,
            licenses: &["MIT"],
            subject_digest: None,
            oci: &[],
        },
    ),
    (
        "sbom-spdx/spdx-examples-example8-examplemaven-2.3.spdx.json",
        Expected {
            format: Format::SpdxJson,
            spec: "SPDX-2.3",
            tools: &[("spdx-maven-plugin", None)],
            timestamp: Some(("2022-10-23T15:44:16Z", 1_666_539_856)),
            subject: Some("examplemaven"),
            subject_version: Some("0.0.1"),
            components: 6,
            files: Some(2),
            licenses: &["Apache-2.0", "CPL-1.0"],
            subject_digest: None,
            oci: &[],
        },
    ),
    (
        "sbom-spdx/syft-1.5.0-alpine-2.3.spdx.json",
        Expected {
            format: Format::SpdxJson,
            spec: "SPDX-2.3",
            tools: &[("syft", Some("1.5.0"))],
            timestamp: Some(("2024-06-11T19:27:38Z", 1_718_134_058)),
            subject: Some("alpine"),
            subject_version: Some(ALPINE),
            components: 15,
            files: Some(77),
            licenses: &[
                "(MIT AND BSD-2-Clause AND GPL-2.0-or-later)",
                "(MPL-2.0 AND MIT)",
                "Apache-2.0",
                "GPL-2.0-only",
                "MIT",
                "Zlib",
            ],
            subject_digest: Some(ALPINE),
            oci: &[ALPINE],
        },
    ),
    (
        "sbom-spdx/trivy-centos-7-2.2.spdx.json",
        Expected {
            format: Format::SpdxJson,
            spec: "SPDX-2.2",
            // "Tool: trivy-dev": no numeric version, kept whole.
            tools: &[("trivy-dev", None)],
            timestamp: Some(("2022-09-13T13:27:55.874784Z", 1_663_075_675)),
            subject: Some("integration/testdata/fixtures/images/centos-7.tar.gz"),
            subject_version: None,
            components: 4,
            files: Some(0),
            licenses: &["GPLv3+", "OpenSSL"],
            subject_digest: None,
            oci: &[],
        },
    ),
];

fn sbom(name: &str, bytes: &[u8]) -> SbomSummary {
    match summarize(name, bytes).unwrap() {
        Summary::Sbom(s) => s,
        other => panic!("{name}: expected an SBOM summary, got {other:?}"),
    }
}

fn check(name: &str, bytes: &[u8], e: &Expected) {
    assert_eq!(detect(name, bytes).unwrap(), e.format, "{name}: format");
    assert!(
        summarize_for(name, bytes, Kind::Sbom).is_ok(),
        "{name}: stage"
    );
    let s = sbom(name, bytes);
    assert_eq!(s.format, e.format, "{name}");
    assert_eq!(s.spec_version, e.spec, "{name}: spec version");
    let tools: Vec<Tool> = e
        .tools
        .iter()
        .map(|(n, v)| Tool {
            name: (*n).to_owned(),
            version: v.map(str::to_owned),
        })
        .collect();
    assert_eq!(s.tools, tools, "{name}: tools");
    match e.timestamp {
        Some((raw, secs)) => {
            let t = s.timestamp.as_ref().expect("timestamp");
            assert_eq!(t.raw, raw, "{name}: timestamp");
            assert_eq!(t.utc.map(|u| u.as_second()), Some(secs), "{name}: instant");
        }
        None => assert_eq!(s.timestamp, None, "{name}: timestamp"),
    }
    assert_eq!(s.subject_name.as_deref(), e.subject, "{name}: subject");
    assert_eq!(
        s.subject_version.as_deref(),
        e.subject_version,
        "{name}: subject version"
    );
    assert_eq!(s.component_count, e.components, "{name}: components");
    assert_eq!(s.file_count, e.files, "{name}: files");
    assert_eq!(s.licenses, e.licenses, "{name}: licenses");
    assert_eq!(s.license_count, e.licenses.len(), "{name}: license count");
    assert_eq!(
        s.subject_digest.as_deref(),
        e.subject_digest,
        "{name}: subject digest"
    );
    assert_eq!(s.oci_digests, e.oci, "{name}: oci digests");
}

#[test]
fn sbom_fixtures() {
    for (file, expected) in CASES {
        check(file, &read(file), expected);
    }
}

/// Nested components count at every depth; metadata.component and its licenses
/// do not. Counted by hand: a, a/b, a/b/c, d = 4 components; licenses MIT (id),
/// "Custom License" (name), "Apache-2.0 OR MIT" (expression); GPL-3.0-only is only
/// on the subject. The subject purl percent-encodes the colon, as the purl spec does.
#[test]
fn cyclonedx_json_nested_components_and_encoded_oci_purl() {
    let doc = br#"{
      "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
      "metadata": {
        "tools": {"components": [{"type": "application", "name": "gen", "version": "9"}],
                  "services": null},
        "component": {"type": "container", "name": "registry.example/app",
          "purl": "pkg:oci/app@sha256%3Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?repository_url=registry.example/app",
          "licenses": [{"license": {"id": "GPL-3.0-only"}}]}
      },
      "components": [
        {"name": "a", "licenses": [{"license": {"id": "MIT"}}],
         "components": [
           {"name": "b", "licenses": [{"license": {"name": "Custom License"}}],
            "components": [{"name": "c", "licenses": [{"expression": "Apache-2.0 OR MIT"}]}]}
         ]},
        {"name": "d", "components": null, "licenses": null,
         "purl": "pkg:oci/base@sha256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}
      ]
    }"#;
    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    check(
        "nested.cdx.json",
        doc,
        &Expected {
            format: Format::CycloneDxJson,
            spec: "1.6",
            tools: &[("gen", Some("9"))],
            timestamp: None,
            subject: Some("registry.example/app"),
            subject_version: None,
            components: 4,
            files: None,
            licenses: &["Apache-2.0 OR MIT", "Custom License", "MIT"],
            subject_digest: Some(A),
            oci: &[B],
        },
    );
}

/// The same shapes in CycloneDX XML 1.5, plus a legacy `<tool>`-style 1.4 file.
/// Counted by hand: components a, a/b, a/b/c, d = 4 (the tool component and the
/// metadata component are not product components).
#[test]
fn cyclonedx_xml() {
    let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<bom xmlns="http://cyclonedx.org/schema/bom/1.5" serialNumber="urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79" version="1">
  <metadata>
    <timestamp>2024-01-02T03:04:05Z</timestamp>
    <tools>
      <components>
        <component type="application"><name>cdxgen</name><version>10.0.0</version></component>
      </components>
    </tools>
    <component type="container">
      <name>registry.example/app</name>
      <version>1.0</version>
      <purl>pkg:oci/app@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc</purl>
      <licenses><license><id>GPL-3.0-only</id></license></licenses>
    </component>
  </metadata>
  <components>
    <component type="library">
      <name>a</name>
      <licenses><license><id>MIT</id><name>ignored, the id wins</name></license></licenses>
      <components>
        <component type="library">
          <name>b</name>
          <licenses><license><name>Custom &amp; License</name></license></licenses>
          <components>
            <component type="library"><name>c</name>
              <licenses><expression>Apache-2.0 OR MIT</expression></licenses></component>
          </components>
        </component>
      </components>
    </component>
    <component type="library"><name>d</name><purl><![CDATA[pkg:oci/base@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd]]></purl></component>
  </components>
</bom>"#;
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    const D: &str = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    check(
        "bom.xml",
        doc,
        &Expected {
            format: Format::CycloneDxXml,
            spec: "1.5",
            tools: &[("cdxgen", Some("10.0.0"))],
            timestamp: Some(("2024-01-02T03:04:05Z", 1_704_164_645)),
            subject: Some("registry.example/app"),
            subject_version: Some("1.0"),
            components: 4,
            files: None,
            licenses: &["Apache-2.0 OR MIT", "Custom & License", "MIT"],
            subject_digest: Some(C),
            oci: &[D],
        },
    );

    let legacy = br#"<bom xmlns="http://cyclonedx.org/schema/bom/1.4" version="1">
  <metadata><tools><tool><vendor>CycloneDX</vendor><name>cyclonedx-maven-plugin</name><version>2.7.9</version></tool></tools></metadata>
  <components><component type="library"><name>x</name></component><component type="library"><name>y</name></component></components>
</bom>"#;
    check(
        "legacy.xml",
        legacy,
        &Expected {
            format: Format::CycloneDxXml,
            spec: "1.4",
            tools: &[("cyclonedx-maven-plugin", Some("2.7.9"))],
            timestamp: None,
            subject: None,
            subject_version: None,
            components: 2,
            files: None,
            licenses: &[],
            subject_digest: None,
            oci: &[],
        },
    );
}

/// The summary is a wire format: camelCase keys and a `kind` tag, and it reads back.
#[test]
fn sbom_summary_serializes_camel_case() {
    let file = "sbom-spdx/syft-1.5.0-alpine-2.3.spdx.json";
    let summary = summarize(file, &read(file)).unwrap();
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["kind"], "sbom");
    assert_eq!(json["format"], "spdx-json");
    assert_eq!(json["componentCount"], 15);
    assert_eq!(json["fileCount"], 77);
    assert_eq!(json["subjectDigest"], ALPINE);
    let back: Summary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);
}
