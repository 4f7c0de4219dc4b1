//! CycloneDX SBOMs, JSON and XML. Components are counted at every depth (a
//! component may carry its own `components`), `metadata.component` is the subject
//! and is not counted, and tools are read in both the legacy list form (≤ 1.4) and
//! the `{components, services}` object form (1.5+).

use std::collections::BTreeSet;

use quick_xml::events::BytesStart;
use serde::Deserialize;

use crate::error::FormatError;
use crate::format::{Format, scalar};
use crate::json::{self, nullable};
use crate::summary::{ReportTime, SbomSummary, Tool, oci_purl_digest, sorted};
use crate::xml::{self, Visitor};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Bom {
    spec_version: Option<serde_json::Value>,
    #[serde(deserialize_with = "nullable")]
    metadata: Metadata,
    #[serde(deserialize_with = "nullable")]
    components: Vec<Component>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Metadata {
    timestamp: Option<String>,
    tools: Option<Tools>,
    component: Option<Component>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Tools {
    Legacy(Vec<ToolEntry>),
    Object {
        #[serde(default, deserialize_with = "nullable")]
        components: Vec<ToolEntry>,
        #[serde(default, deserialize_with = "nullable")]
        services: Vec<ToolEntry>,
    },
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ToolEntry {
    name: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Component {
    name: Option<String>,
    version: Option<String>,
    purl: Option<String>,
    #[serde(deserialize_with = "nullable")]
    licenses: Vec<LicenseChoice>,
    #[serde(deserialize_with = "nullable")]
    components: Vec<Component>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LicenseChoice {
    license: Option<License>,
    expression: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct License {
    id: Option<String>,
    name: Option<String>,
}

/// What both encodings accumulate.
#[derive(Default)]
struct Acc {
    tools: Vec<Tool>,
    component_count: u64,
    licenses: BTreeSet<String>,
    digests: BTreeSet<String>,
    subject_name: Option<String>,
    subject_version: Option<String>,
    subject_digest: Option<String>,
    timestamp: Option<ReportTime>,
}

impl Acc {
    fn license(&mut self, value: Option<&str>) {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            self.licenses.insert(v.to_owned());
        }
    }

    fn purl(&mut self, purl: &str) {
        if let Some(d) = oci_purl_digest(purl) {
            self.digests.insert(d);
        }
    }

    fn tool(&mut self, name: Option<String>, version: Option<String>) {
        if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
            self.tools.push(Tool { name, version });
        }
    }

    fn finish(self, format: Format, spec_version: String) -> SbomSummary {
        // Without an OCI purl on the subject, a lone image digest in the file is
        // still unambiguous; two or more are not, so none is chosen.
        let subject_digest = self.subject_digest.or_else(|| match self.digests.len() {
            1 => self.digests.first().cloned(),
            _ => None,
        });
        SbomSummary {
            format,
            spec_version,
            tools: self.tools,
            timestamp: self.timestamp,
            subject_name: self.subject_name,
            subject_version: self.subject_version,
            component_count: self.component_count,
            file_count: None,
            license_count: self.licenses.len(),
            licenses: sorted(self.licenses),
            subject_digest,
            oci_digests: sorted(self.digests),
        }
    }
}

pub(crate) fn summarize_json(file: &str, bytes: &[u8]) -> Result<SbomSummary, FormatError> {
    let bom: Bom = json::parse(file, bytes, Some(Format::CycloneDxJson))?;
    let mut acc = Acc::default();
    let metadata = bom.metadata;
    acc.timestamp = metadata.timestamp.as_deref().and_then(ReportTime::parse);
    match metadata.tools {
        Some(Tools::Legacy(list)) => list.into_iter().for_each(|t| acc.tool(t.name, t.version)),
        Some(Tools::Object {
            components,
            services,
        }) => components
            .into_iter()
            .chain(services)
            .for_each(|t| acc.tool(t.name, t.version)),
        None => {}
    }
    if let Some(subject) = metadata.component {
        acc.subject_digest = subject.purl.as_deref().and_then(oci_purl_digest);
        acc.subject_name = subject.name;
        acc.subject_version = subject.version;
    }
    // An explicit stack instead of recursion: nesting depth is the input's choice.
    let mut pending = bom.components;
    while let Some(component) = pending.pop() {
        acc.component_count = acc.component_count.saturating_add(1);
        for choice in &component.licenses {
            if let Some(license) = &choice.license {
                acc.license(license.id.as_deref().or(license.name.as_deref()));
            }
            acc.license(choice.expression.as_deref());
        }
        if let Some(purl) = &component.purl {
            acc.purl(purl);
        }
        pending.extend(component.components);
    }
    let spec_version = bom.spec_version.as_ref().map(scalar).unwrap_or_default();
    Ok(acc.finish(Format::CycloneDxJson, spec_version))
}

/// Which text the XML visitor is collecting.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    LicenseId,
    LicenseName,
    Expression,
    Purl,
    SubjectName,
    SubjectVersion,
    SubjectPurl,
    ToolName,
    ToolVersion,
    Timestamp,
}

#[derive(Default)]
struct XmlBom {
    acc: Acc,
    spec_version: String,
    field: Option<Field>,
    text: String,
    license_id: Option<String>,
    license_name: Option<String>,
    tool: Option<(Option<String>, Option<String>)>,
}

/// True for `bom/components/component(/components/component)*`: product
/// components, not `metadata/component`, tool components or formulation.
fn is_product_component(path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if first != "bom" || rest.is_empty() || rest.len() % 2 != 0 {
        return false;
    }
    rest.chunks(2)
        .all(|pair| matches!(pair, [c, e] if c == "components" && e == "component"))
}

/// Whether `path` ends with `suffix`, and what precedes it.
fn strip_tail<'p>(path: &'p [String], suffix: &[&str]) -> Option<&'p [String]> {
    let cut = path.len().checked_sub(suffix.len())?;
    let (head, tail) = path.split_at(cut);
    tail.iter().zip(suffix).all(|(a, b)| a == b).then_some(head)
}

fn in_tool(path: &[String]) -> bool {
    strip_tail(path, &["tool"]).is_some_and(|h| h == ["bom", "metadata", "tools"])
        || strip_tail(path, &["component"])
            .is_some_and(|h| h == ["bom", "metadata", "tools", "components"])
        || strip_tail(path, &["service"])
            .is_some_and(|h| h == ["bom", "metadata", "tools", "services"])
}

impl Visitor for XmlBom {
    fn start(&mut self, path: &[String], element: &BytesStart<'_>) {
        self.text.clear();
        self.field = None;
        if path.len() == 1 {
            self.spec_version = xml::cyclonedx_namespace_version(element).unwrap_or_default();
            return;
        }
        if is_product_component(path) {
            self.acc.component_count = self.acc.component_count.saturating_add(1);
            return;
        }
        if in_tool(path) {
            self.tool = Some((None, None));
            return;
        }
        let Some((last, parent)) = path.split_last() else {
            return;
        };
        self.field = match last.as_str() {
            "id" | "name"
                if strip_tail(parent, &["licenses", "license"])
                    .is_some_and(is_product_component) =>
            {
                Some(if last == "id" {
                    Field::LicenseId
                } else {
                    Field::LicenseName
                })
            }
            "expression" if strip_tail(parent, &["licenses"]).is_some_and(is_product_component) => {
                Some(Field::Expression)
            }
            "purl" if is_product_component(parent) => Some(Field::Purl),
            "name" | "version" | "purl" if parent == ["bom", "metadata", "component"] => {
                Some(match last.as_str() {
                    "name" => Field::SubjectName,
                    "version" => Field::SubjectVersion,
                    _ => Field::SubjectPurl,
                })
            }
            "name" | "version" if in_tool(parent) => Some(if last == "name" {
                Field::ToolName
            } else {
                Field::ToolVersion
            }),
            "timestamp" if parent == ["bom", "metadata"] => Some(Field::Timestamp),
            _ => None,
        };
    }

    fn text(&mut self, _path: &[String], text: &str) {
        if self.field.is_some() {
            self.text.push_str(text);
        }
    }

    fn end(&mut self, path: &[String]) {
        if let Some(field) = self.field.take() {
            let text = std::mem::take(&mut self.text).trim().to_owned();
            match field {
                Field::LicenseId => self.license_id = Some(text),
                Field::LicenseName => self.license_name = Some(text),
                Field::Expression => self.acc.license(Some(&text)),
                Field::Purl => self.acc.purl(&text),
                Field::SubjectName => self.acc.subject_name = Some(text),
                Field::SubjectVersion => self.acc.subject_version = Some(text),
                Field::SubjectPurl => self.acc.subject_digest = oci_purl_digest(&text),
                Field::ToolName => {
                    if let Some(tool) = &mut self.tool {
                        tool.0 = Some(text);
                    }
                }
                Field::ToolVersion => {
                    if let Some(tool) = &mut self.tool {
                        tool.1 = Some(text);
                    }
                }
                Field::Timestamp => self.acc.timestamp = ReportTime::parse(&text),
            }
            return;
        }
        // A <license> prefers its SPDX id over its free-text name, as in JSON.
        if path.last().is_some_and(|l| l == "license") {
            let id = self.license_id.take();
            let name = self.license_name.take();
            self.acc.license(id.as_deref().or(name.as_deref()));
        } else if in_tool(path)
            && let Some((name, version)) = self.tool.take()
        {
            self.acc.tool(name, version);
        }
    }
}

pub(crate) fn summarize_xml(file: &str, bytes: &[u8]) -> Result<SbomSummary, FormatError> {
    let mut visitor = XmlBom::default();
    xml::walk(file, bytes, &mut visitor)?;
    Ok(visitor
        .acc
        .finish(Format::CycloneDxXml, visitor.spec_version))
}
