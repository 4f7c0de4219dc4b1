//! SPDX 2.2 and 2.3 JSON SBOMs. Packages are the components; files are counted
//! separately without being kept; relationships are streamed and only the
//! document's DESCRIBES edges are kept, because large SBOMs carry millions of them.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::FormatError;
use crate::format::Format;
use crate::json::{self, nullable};
use crate::summary::{ReportTime, SbomSummary, Tool, oci_purl_digest, sorted};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Document {
    spdx_version: String,
    name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    creation_info: CreationInfo,
    #[serde(deserialize_with = "nullable")]
    document_describes: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    packages: Vec<Package>,
    #[serde(deserialize_with = "nullable")]
    files: Vec<IgnoredAny>,
    #[serde(deserialize_with = "described_by_relationships")]
    relationships: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreationInfo {
    created: Option<String>,
    #[serde(deserialize_with = "nullable")]
    creators: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Package {
    #[serde(rename = "SPDXID")]
    spdx_id: Option<String>,
    name: Option<String>,
    version_info: Option<String>,
    license_concluded: Option<String>,
    license_declared: Option<String>,
    #[serde(deserialize_with = "nullable")]
    external_refs: Vec<ExternalRef>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ExternalRef {
    reference_type: Option<String>,
    reference_locator: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: Option<String>,
    related_spdx_element: Option<String>,
    relationship_type: Option<String>,
}

/// Keeps the targets of `SPDXRef-DOCUMENT DESCRIBES x`, dropping every other edge
/// as soon as it is read.
fn described_by_relationships<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Describes;
    impl<'de> Visitor<'de> for Describes {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of relationships")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(rel) = seq.next_element::<Relationship>()? {
                if rel.spdx_element_id.as_deref() == Some("SPDXRef-DOCUMENT")
                    && rel.relationship_type.as_deref() == Some("DESCRIBES")
                    && let Some(target) = rel.related_spdx_element
                {
                    out.push(target);
                }
            }
            Ok(out)
        }
    }
    d.deserialize_any(Describes)
}

/// NOASSERTION and NONE say "no license information", not a license.
fn is_license(value: &str) -> bool {
    !matches!(value, "" | "NOASSERTION" | "NONE")
}

/// Splits an SPDX creator `Tool: name-version` at the last hyphen that starts a
/// version number. SPDX only says "name and version"; `Tool: trivy-dev` has no
/// number and is kept whole rather than guessed at.
fn tool_from_creator(creator: &str) -> Option<Tool> {
    let tool = creator.trim().strip_prefix("Tool:")?.trim();
    if tool.is_empty() {
        return None;
    }
    let split = tool.rsplit_once('-').filter(|(name, version)| {
        !name.is_empty()
            && version
                .trim_start_matches(['v', 'V'])
                .starts_with(|c: char| c.is_ascii_digit())
    });
    Some(match split {
        Some((name, version)) => Tool {
            name: name.to_owned(),
            version: Some(version.to_owned()),
        },
        None => Tool {
            name: tool.to_owned(),
            version: None,
        },
    })
}

pub(crate) fn summarize(file: &str, bytes: &[u8]) -> Result<SbomSummary, FormatError> {
    let doc: Document = json::parse(file, bytes, Some(Format::SpdxJson))?;

    let mut licenses = BTreeSet::new();
    let mut digests = BTreeSet::new();
    for package in &doc.packages {
        for value in [&package.license_concluded, &package.license_declared]
            .into_iter()
            .flatten()
        {
            let value = value.trim();
            if is_license(value) {
                licenses.insert(value.to_owned());
            }
        }
        for purl in package.external_refs.iter().filter_map(|r| {
            (r.reference_type.as_deref() == Some("purl"))
                .then_some(r.reference_locator.as_deref())
                .flatten()
        }) {
            if let Some(d) = oci_purl_digest(purl) {
                digests.insert(d);
            }
        }
    }

    // The subject: `documentDescribes` (2.2 style) or DESCRIBES relationships
    // (2.3 style), resolved to a package; else the document's own name.
    let described = doc
        .document_describes
        .iter()
        .chain(&doc.relationships)
        .find_map(|id| {
            doc.packages
                .iter()
                .find(|p| p.spdx_id.as_deref() == Some(id.as_str()))
        });
    let subject_digest = described
        .and_then(|p| {
            p.external_refs
                .iter()
                .filter(|r| r.reference_type.as_deref() == Some("purl"))
                .find_map(|r| r.reference_locator.as_deref().and_then(oci_purl_digest))
        })
        .or_else(|| match digests.len() {
            1 => digests.first().cloned(),
            _ => None,
        });

    Ok(SbomSummary {
        format: Format::SpdxJson,
        spec_version: doc.spdx_version,
        tools: doc
            .creation_info
            .creators
            .iter()
            .filter_map(|c| tool_from_creator(c))
            .collect(),
        timestamp: doc
            .creation_info
            .created
            .as_deref()
            .and_then(ReportTime::parse),
        subject_name: described.and_then(|p| p.name.clone()).or(doc.name),
        subject_version: described.and_then(|p| p.version_info.clone()),
        component_count: u64::try_from(doc.packages.len()).unwrap_or(u64::MAX),
        file_count: Some(u64::try_from(doc.files.len()).unwrap_or(u64::MAX)),
        license_count: licenses.len(),
        licenses: sorted(licenses),
        subject_digest,
        oci_digests: sorted(digests),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creators() {
        let t = |name: &str, version: Option<&str>| {
            Some(Tool {
                name: name.to_owned(),
                version: version.map(str::to_owned),
            })
        };
        assert_eq!(
            tool_from_creator("Tool: syft-1.5.0"),
            t("syft", Some("1.5.0"))
        );
        assert_eq!(tool_from_creator("Tool: trivy-dev"), t("trivy-dev", None));
        assert_eq!(
            tool_from_creator("Tool: spdx-maven-plugin"),
            t("spdx-maven-plugin", None)
        );
        assert_eq!(
            tool_from_creator("Tool: cdxgen-v10.2"),
            t("cdxgen", Some("v10.2"))
        );
        assert_eq!(tool_from_creator("Organization: Anchore, Inc"), None);
    }
}
