//! Names: the store URL (parsed into a [`Location`]), and the package versions and file
//! names each kind of entry is kept under (the layout in the module docs of [`super`]).

use std::net::IpAddr;

use custody_evidence::Digest;
use url::Url;

use super::token::without_userinfo;
use crate::error::StoreError;
use crate::index::{IndexKey, encode_component};
use crate::layout::chain_entry_name;

pub(super) const SCHEME: &str = "gitlab://";
pub(super) const SCHEME_HTTP: &str = "gitlab+http://";
/// Longest encoded value kept readable in a version; longer ones are hashed.
const MAX_COMPONENT: usize = 128;

/// Whether a store URL names the GitLab backend.
pub(crate) fn is_gitlab_url(url: &str) -> bool {
    url.starts_with(SCHEME) || url.starts_with(SCHEME_HTTP)
}

/// Maps [`encode_component`] output onto GitLab's version and file-name alphabet,
/// injectively (see the module docs).
pub(super) fn gitlab_component(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len() + 8);
    for c in encoded.chars() {
        match c {
            '_' => out.push_str("__"),
            '.' => out.push_str("_d"),
            '%' => out.push('_'),
            c => out.push(c),
        }
    }
    if out.len() > MAX_COMPONENT {
        return format!("_H{}", Digest::of(encoded.as_bytes()).hex());
    }
    out
}

pub(super) fn hex_prefix(d: &Digest) -> String {
    d.hex().chars().take(2).collect()
}

pub(super) fn object_version(d: &Digest) -> String {
    format!("objects-sha256-{}", hex_prefix(d))
}

pub(super) fn retention_version(d: &Digest) -> String {
    format!("retention-sha256-{}", hex_prefix(d))
}

/// The retention marker written before markers carried their bytes' digest (still read,
/// by [`is_retention_marker`]).
#[cfg(test)]
pub(super) fn retention_file(d: &Digest) -> String {
    format!("{}.json", d.hex())
}

/// A retention marker: its name carries the SHA-256 of its bytes, so each marker is a
/// name of its own and a later upload under that name is seen (GitLab serves only the
/// newest file of a name).
pub(super) fn retention_marker(d: &Digest, bytes: &[u8]) -> String {
    format!("{}.{}.json", d.hex(), Digest::of(bytes).hex())
}

/// Whether `file` is a retention marker of `d`, and the digest its name carries.
pub(super) fn is_retention_marker(d: &Digest, file: &str) -> Option<Option<String>> {
    let rest = file.strip_prefix(&d.hex())?.strip_suffix(".json")?;
    if rest.is_empty() {
        return Some(None);
    }
    let sha = rest.strip_prefix('.')?;
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Some(sha.to_owned()))
}

pub(super) fn chain_version(chain: &str) -> String {
    format!("chain-{}", gitlab_component(&encode_component(chain)))
}

pub(super) fn chain_file(sequence: u64, d: &Digest) -> String {
    format!("{}_{}", chain_entry_name(sequence), d.hex())
}

pub(super) fn parse_chain_file(name: &str) -> Option<(u64, Digest)> {
    let (seq, hex) = name.split_once('_')?;
    Some((seq.parse().ok()?, Digest::parse(hex).ok()?))
}

pub(super) fn index_version(key: &IndexKey) -> String {
    let [kind, value] = key.segments();
    format!("index-{kind}-{}", gitlab_component(&value))
}

/// The version holding a log directory's files (`log/DIR/…`).
pub(super) fn log_version(dir: &str) -> String {
    format!("log-{}", gitlab_component(&encode_component(dir)))
}

/// A log file's upload name: its base name and the SHA-256 of its bytes, so that a
/// reader can tell the first write from any later upload of the same name.
pub(super) fn log_file(base: &str, bytes: &[u8]) -> String {
    format!("{base}_{}", Digest::of(bytes).hex())
}

/// The marker a directory leaves in its parent, so that the parent can be listed.
pub(super) const LOG_DIR_SUFFIX: &str = "_dir";

pub(super) const DAY_PREFIX: &str = "index-day-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Location {
    pub(super) http: bool,
    /// host with port, as written
    pub(super) authority: String,
    pub(super) project: String,
    pub(super) package: String,
}

pub(super) fn unsupported(url: &str, reason: impl Into<String>) -> StoreError {
    StoreError::UnsupportedUrl {
        url: without_userinfo(url),
        reason: reason.into(),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn parse_location(url: &str) -> Result<Location, StoreError> {
    let (http, rest) = if let Some(rest) = url.strip_prefix(SCHEME_HTTP) {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix(SCHEME) {
        (false, rest)
    } else {
        return Err(unsupported(url, "a GitLab store URL starts with gitlab://"));
    };
    if rest.contains(['?', '#']) {
        return Err(unsupported(
            url,
            "a GitLab store URL has no query or fragment: gitlab://HOST/PROJECT_PATH/PACKAGE",
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(unsupported(
            url,
            "credentials do not belong in the store URL; set CUSTODY_GITLAB_TOKEN or use CI_JOB_TOKEN",
        ));
    }
    let parsed = Url::parse(&format!("https://{authority}/"))
        .map_err(|e| unsupported(url, format!("bad host `{authority}`: {e}")))?;
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err(unsupported(
            url,
            "the URL names no host: gitlab://HOST/PROJECT_PATH/PACKAGE",
        ));
    }
    if http && !is_loopback(host) {
        return Err(unsupported(
            url,
            "gitlab+http:// is for loopback test servers only; use gitlab:// (HTTPS) for a real GitLab",
        ));
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let Some((package, project)) = segments.split_last() else {
        return Err(unsupported(
            url,
            "expected gitlab://HOST/PROJECT_PATH/PACKAGE",
        ));
    };
    if project.is_empty() || !project.iter().all(|s| is_name(s)) {
        return Err(unsupported(
            url,
            "expected gitlab://HOST/PROJECT_PATH_OR_ID/PACKAGE, the project path made of letters, digits, `.`, `_` and `-`",
        ));
    }
    if !is_name(package) {
        return Err(unsupported(
            url,
            "the package name (the last segment) may hold only letters, digits, `.`, `_` and `-`",
        ));
    }
    Ok(Location {
        http,
        authority: authority.to_owned(),
        project: project.join("/"),
        package: (*package).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_refuse_what_they_should() {
        let l = parse_location("gitlab://gitlab.com/acme/sub/app/custody-evidence").unwrap();
        assert_eq!(
            l,
            Location {
                http: false,
                authority: "gitlab.com".into(),
                project: "acme/sub/app".into(),
                package: "custody-evidence".into(),
            }
        );
        let l = parse_location("gitlab://gitlab.example.org:8443/1234/ev/").unwrap();
        assert_eq!((l.project.as_str(), l.package.as_str()), ("1234", "ev"));
        assert!(parse_location("gitlab+http://127.0.0.1:9/a/p").is_ok());
        assert!(parse_location("gitlab+http://[::1]:9/a/p").is_ok());
        assert!(parse_location("gitlab+http://localhost:9/a/p").is_ok());
        for bad in [
            "gitlab+http://gitlab.com/a/p",
            "gitlab+http://10.0.0.1/a/p",
            "gitlab://gitlab.com/p",
            "gitlab://gitlab.com/",
            "gitlab:///a/p",
            "gitlab://user:glpat-secret@gitlab.com/a/p",
            "gitlab://gitlab.com/a/p?x=1",
            "gitlab://gitlab.com/a/../p",
            "gitlab://gitlab.com/a/p%20q",
            "gitlab://gitlab.com//p",
        ] {
            let err = parse_location(bad).unwrap_err();
            assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{bad}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    /// GitLab's rules, written as the regexes it documents.
    fn valid_version(v: &str) -> bool {
        // \A(\.?[\w\+-]+\.?)+\z without dots reduces to a non-empty [\w+-]+
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
    }

    fn valid_file(f: &str) -> bool {
        !f.is_empty()
            && f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }

    /// Undoes `gitlab_component` for short values: the proof that it is injective.
    fn undo(c: &str) -> String {
        let mut out = String::new();
        let mut it = c.chars();
        while let Some(ch) = it.next() {
            if ch != '_' {
                out.push(ch);
                continue;
            }
            match it.next() {
                Some('_') => out.push('_'),
                Some('d') => out.push('.'),
                Some(x) => {
                    out.push('%');
                    out.push(x);
                }
                None => panic!("dangling escape in {c}"),
            }
        }
        out
    }

    #[test]
    fn names_fit_gitlab_and_stay_injective() {
        let inputs = [
            "",
            ".",
            "..",
            "a.b",
            "a..b",
            "a...b",
            "a_b",
            "a__b",
            "a%b",
            "a_2Eb",
            "_",
            "__",
            "%",
            "github:o/r:12",
            "a b",
            "ü",
            "x.",
            "_d",
            "%5F",
            "a_d",
            ".a",
            "a/b",
        ];
        let mut seen = std::collections::HashMap::new();
        for i in inputs {
            let enc = encode_component(i);
            let c = gitlab_component(&enc);
            assert_eq!(undo(&c), enc, "{i}");
            let v = format!("index-commit-{c}");
            assert!(valid_version(&v), "{v}");
            assert!(valid_file(&c), "{c}");
            if let Some(prev) = seen.insert(c.clone(), i) {
                panic!("{i:?} and {prev:?} both map to {c}");
            }
        }
        let long = gitlab_component(&encode_component(&".".repeat(100)));
        assert!(long.starts_with("_H") && long.len() < 70, "{long}");
        assert_ne!(long, gitlab_component(&encode_component(&".".repeat(101))));
        let d = Digest::of(b"x");
        for v in [
            object_version(&d),
            retention_version(&d),
            chain_version("../c"),
        ] {
            assert!(valid_version(&v), "{v}");
        }
        for f in [
            d.hex(),
            retention_file(&d),
            retention_marker(&d, b"{}"),
            chain_file(7, &d),
        ] {
            assert!(valid_file(&f), "{f}");
        }
        assert_eq!(is_retention_marker(&d, &retention_file(&d)), Some(None));
        assert_eq!(
            is_retention_marker(&d, &retention_marker(&d, b"{}")),
            Some(Some(Digest::of(b"{}").hex()))
        );
        assert_eq!(
            is_retention_marker(&d, &format!("{}.x.json", d.hex())),
            None
        );
        assert_eq!(
            is_retention_marker(&Digest::of(b"y"), &retention_file(&d)),
            None
        );
        assert_eq!(parse_chain_file(&chain_file(7, &d)), Some((7, d)));
    }
}
