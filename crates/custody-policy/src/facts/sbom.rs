//! Components of an SBOM file (CycloneDX or SPDX JSON), for license rules. The
//! normalized summary has counts and license names; policies that look at components
//! get them here, read from the verified SBOM bytes.

use serde_json::Value;

use crate::input::Component;

/// The components of a JSON SBOM; empty for XML or unreadable files.
pub fn components(bytes: &[u8]) -> Vec<Component> {
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(list) = doc.get("components").and_then(Value::as_array) {
        cyclonedx(list, &mut out);
    } else if let Some(list) = doc.get("packages").and_then(Value::as_array) {
        for p in list {
            out.push(spdx(p));
        }
    }
    out
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn cyclonedx(list: &[Value], out: &mut Vec<Component>) {
    // iterative, so a hostile nesting depth cannot overflow the stack
    let mut stack: Vec<&Value> = list.iter().rev().collect();
    while let Some(c) = stack.pop() {
        let mut licenses = Vec::new();
        for l in c
            .get("licenses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(e) = text(l, "expression") {
                licenses.push(e);
            } else if let Some(lic) = l.get("license")
                && let Some(id) = text(lic, "id").or_else(|| text(lic, "name"))
            {
                licenses.push(id);
            }
        }
        out.push(Component {
            name: text(c, "name").unwrap_or_default(),
            version: text(c, "version"),
            purl: text(c, "purl"),
            licenses,
        });
        if let Some(children) = c.get("components").and_then(Value::as_array) {
            stack.extend(children.iter().rev());
        }
    }
}

fn spdx(p: &Value) -> Component {
    let purl = p
        .get("externalRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("referenceType").and_then(Value::as_str) == Some("purl"))
        .and_then(|r| text(r, "referenceLocator"));
    let licenses = ["licenseConcluded", "licenseDeclared"]
        .iter()
        .filter_map(|k| text(p, k))
        .filter(|l| l != "NOASSERTION" && l != "NONE")
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Component {
        name: text(p, "name").unwrap_or_default(),
        version: text(p, "versionInfo"),
        purl,
        licenses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclonedx_nested_components_and_spdx_packages() {
        let cdx = br#"{"bomFormat":"CycloneDX","components":[{"name":"a","version":"1","licenses":[{"license":{"id":"MIT"}}],"components":[{"name":"b","licenses":[{"expression":"GPL-3.0-only OR MIT"}]}]}]}"#;
        let c = components(cdx);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].licenses, vec!["MIT"]);
        assert_eq!(c[1].name, "b");
        assert_eq!(c[1].licenses, vec!["GPL-3.0-only OR MIT"]);
        let spdx = br#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"p","versionInfo":"2","licenseConcluded":"Apache-2.0","licenseDeclared":"NOASSERTION","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:npm/p@2"}]}]}"#;
        let s = components(spdx);
        assert_eq!(s[0].purl.as_deref(), Some("pkg:npm/p@2"));
        assert_eq!(s[0].licenses, vec!["Apache-2.0"]);
        assert!(components(b"<bom/>").is_empty());
    }
}
