//! Streaming XML for the XML formats. quick-xml's pull parser reads events straight
//! from the input slice; this module keeps only the stack of open element names and
//! hands each event to a [`Visitor`], so a report of any size is summarized without
//! building a tree of it. quick-xml does not expand DTD entities, which also keeps
//! entity-expansion attacks out.

use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::error::{FormatError, Syntax};
use crate::format::{CYCLONEDX_VERSIONS, Format, strip_bom};

/// Namespace prefix of every CycloneDX XML schema version.
const CYCLONEDX_NS: &str = "http://cyclonedx.org/schema/bom/";

/// Receives the events of a document. `path` holds the local names of the open
/// elements, the current one last (for `text`, the element the text is in).
pub(crate) trait Visitor {
    fn start(&mut self, path: &[String], element: &BytesStart<'_>);
    /// Whether `text` is wanted at all; visitors that read only attributes say no,
    /// which spares decoding megabytes of captured test output.
    fn wants_text(&self) -> bool {
        true
    }
    fn text(&mut self, _path: &[String], _text: &str) {}
    fn end(&mut self, _path: &[String]) {}
}

/// The local name (without namespace prefix) of an element.
fn local_name(element: &BytesStart<'_>) -> String {
    element.local_name().as_ref().to_owned()
}

/// The value of the attribute with this local name, unescaped. Malformed attributes
/// are skipped rather than failing the file: the element structure, which the counts
/// depend on, is still checked.
pub(crate) fn attr(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// Maps a quick-xml error: input that ends inside markup is truncation, anything
/// else is malformed.
fn map_error(file: &str, error: &XmlError) -> FormatError {
    let truncated = matches!(
        error,
        XmlError::Syntax(
            SyntaxError::UnclosedPI
                | SyntaxError::UnclosedXmlDecl
                | SyntaxError::UnclosedComment
                | SyntaxError::UnclosedDoctype
                | SyntaxError::UnclosedCData
                | SyntaxError::UnclosedTag
                | SyntaxError::UnclosedSingleQuotedAttributeValue
                | SyntaxError::UnclosedDoubleQuotedAttributeValue
        )
    );
    if truncated {
        FormatError::Truncated {
            file: file.to_owned(),
            syntax: Syntax::Xml,
            detail: error.to_string(),
        }
    } else {
        FormatError::Malformed {
            file: file.to_owned(),
            syntax: Syntax::Xml,
            detail: error.to_string(),
        }
    }
}

fn truncated(file: &str, detail: String) -> FormatError {
    FormatError::Truncated {
        file: file.to_owned(),
        syntax: Syntax::Xml,
        detail,
    }
}

/// Reads the whole document, calling `visitor` for each element and text. Fails
/// with [`FormatError::Truncated`] when the input ends with elements still open.
pub(crate) fn walk(
    file: &str,
    bytes: &[u8],
    visitor: &mut impl Visitor,
) -> Result<(), FormatError> {
    let mut reader = Reader::from_reader(strip_bom(bytes));
    let mut path: Vec<String> = Vec::new();
    let mut seen_root = false;
    loop {
        let event = reader.read_event().map_err(|e| map_error(file, &e))?;
        match event {
            Event::Start(element) => {
                seen_root = true;
                path.push(local_name(&element));
                visitor.start(&path, &element);
            }
            Event::Empty(element) => {
                seen_root = true;
                path.push(local_name(&element));
                visitor.start(&path, &element);
                visitor.end(&path);
                path.pop();
            }
            Event::End(_) => {
                visitor.end(&path);
                path.pop();
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) if !visitor.wants_text() => {}
            Event::Text(text) if !path.is_empty() => {
                visitor.text(&path, &text.xml10_content());
            }
            Event::CData(data) if !path.is_empty() => {
                visitor.text(&path, &data.xml10_content());
            }
            Event::GeneralRef(reference) if !path.is_empty() => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => match resolve_predefined_entity(&reference) {
                        Some(s) => s.to_owned(),
                        None => {
                            return Err(FormatError::Malformed {
                                file: file.to_owned(),
                                syntax: Syntax::Xml,
                                detail: format!("unknown entity `&{};`", &*reference),
                            });
                        }
                    },
                    Err(e) => return Err(map_error(file, &e)),
                };
                visitor.text(&path, &resolved);
            }
            Event::Eof => {
                if let Some(open) = path.last() {
                    return Err(truncated(
                        file,
                        format!(
                            "input ends inside <{open}>, {} element(s) still open",
                            path.len()
                        ),
                    ));
                }
                if !seen_root {
                    return Err(truncated(
                        file,
                        "input ends before the root element".to_owned(),
                    ));
                }
                return Ok(());
            }
            _ => {}
        }
    }
}

/// Recognizes an XML format from its root element, reading nothing after it.
pub(crate) fn sniff(file: &str, bytes: &[u8]) -> Result<Format, FormatError> {
    let mut reader = Reader::from_reader(strip_bom(bytes));
    loop {
        match reader.read_event().map_err(|e| map_error(file, &e))? {
            Event::Start(root) | Event::Empty(root) => return classify_root(file, &root),
            Event::Eof => {
                return Err(truncated(
                    file,
                    "input ends before the root element".to_owned(),
                ));
            }
            Event::Text(text) if !text.trim().is_empty() => {
                return Err(FormatError::Malformed {
                    file: file.to_owned(),
                    syntax: Syntax::Xml,
                    detail: "text before the root element".to_owned(),
                });
            }
            _ => {}
        }
    }
}

fn classify_root(file: &str, root: &BytesStart<'_>) -> Result<Format, FormatError> {
    let name = local_name(root);
    let unknown = |hint: &str| FormatError::UnknownXml {
        file: file.to_owned(),
        root: name.clone(),
        hint: hint.to_owned(),
    };
    match name.as_str() {
        "testsuites" | "testsuite" => Ok(Format::JunitXml),
        // Clover also uses <coverage>; Cobertura's DTD requires line-rate on it.
        "coverage" if attr(root, "line-rate").is_some() || attr(root, "lines-valid").is_some() => {
            Ok(Format::CoberturaXml)
        }
        "coverage" => Err(unknown(
            " (a <coverage> root without line-rate is not Cobertura; Clover reports are not supported)",
        )),
        "bom" => {
            let version = cyclonedx_namespace_version(root).ok_or_else(|| {
                unknown(" (a <bom> root without the http://cyclonedx.org/schema/bom/ namespace)")
            })?;
            if CYCLONEDX_VERSIONS.contains(&version.as_str()) {
                Ok(Format::CycloneDxXml)
            } else {
                Err(FormatError::Unsupported {
                    file: file.to_owned(),
                    format: Format::CycloneDxXml,
                    version,
                })
            }
        }
        _ => Err(unknown("")),
    }
}

/// The spec version from the CycloneDX namespace (`.../schema/bom/1.5` → `1.5`),
/// declared as the default namespace or under any prefix.
pub(crate) fn cyclonedx_namespace_version(root: &BytesStart<'_>) -> Option<String> {
    root.attributes().flatten().find_map(|a| {
        let key = a.key.as_ref();
        if key != "xmlns" && !key.starts_with("xmlns:") {
            return None;
        }
        let value = a.normalized_value(XmlVersion::Implicit1_0).ok()?;
        value
            .strip_prefix(CYCLONEDX_NS)
            .map(|v| v.trim_end_matches('/').to_owned())
    })
}

/// Parses a number attribute leniently: surrounding space is ignored, and thousands
/// separators are dropped because Maven Surefire writes `time="1,234.5"` in some locales.
pub(crate) fn parse_f64(value: &str) -> Option<f64> {
    let cleaned: String = value.trim().chars().filter(|c| *c != ',').collect();
    cleaned
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// Parses a count attribute; absent or unparseable counts are `None`.
pub(crate) fn parse_u64(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_f64("1,234.5"), Some(1234.5));
        assert_eq!(parse_f64(" 0.01 "), Some(0.01));
        assert_eq!(parse_f64("-1"), None);
        assert_eq!(parse_f64("NaN"), None);
        assert_eq!(parse_u64(" 7 "), Some(7));
        assert_eq!(parse_u64("x"), None);
    }
}
