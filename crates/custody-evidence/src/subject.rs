//! How a user names the subject of a record on the command line.

use crate::digest::Digest;
use crate::error::EvidenceError;
use crate::statement::ResourceDescriptor;

/// A subject as written by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectSpec {
    /// `registry/name@sha256:…`: an image by manifest digest.
    Image { name: String, digest: Digest },
    /// `sha256:…`: an artifact known only by digest.
    Digest(Digest),
    /// `git:<sha>`: a commit.
    Commit(String),
    /// Anything else: a file whose digest is computed.
    Path(String),
}

impl SubjectSpec {
    pub fn parse(value: &str) -> Result<Self, EvidenceError> {
        if let Some((name, digest)) = value.rsplit_once('@')
            && digest.starts_with("sha256:")
        {
            return Ok(Self::Image {
                name: name.to_owned(),
                digest: Digest::parse(digest)?,
            });
        }
        if value.starts_with("sha256:") {
            return Ok(Self::Digest(Digest::parse(value)?));
        }
        if let Some(sha) = value.strip_prefix("git:") {
            let ok = (7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(EvidenceError::Digest {
                    value: value.to_owned(),
                    reason: "a commit is 7 to 64 hexadecimal characters after `git:`".into(),
                });
            }
            return Ok(Self::Commit(sha.to_ascii_lowercase()));
        }
        Ok(Self::Path(value.to_owned()))
    }

    /// The resource descriptor, for specs that need no I/O (`Path` needs the caller to
    /// hash the file and use [`ResourceDescriptor::sha256`]).
    pub fn descriptor(&self) -> Option<ResourceDescriptor> {
        match self {
            Self::Image { name, digest } => Some(ResourceDescriptor::sha256(name.clone(), digest)),
            Self::Digest(d) => Some(ResourceDescriptor::sha256(d.to_string(), d)),
            Self::Commit(sha) => {
                let mut rd = ResourceDescriptor::sha256("", &Digest::of(b""));
                rd.digest.clear();
                rd.digest.insert("gitCommit".into(), sha.clone());
                rd.name = format!("git:{sha}");
                Some(rd)
            }
            Self::Path(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let d = Digest::of(b"x");
        assert_eq!(
            SubjectSpec::parse(&format!("ghcr.io/acme/app@{d}")).unwrap(),
            SubjectSpec::Image {
                name: "ghcr.io/acme/app".into(),
                digest: d
            }
        );
        assert_eq!(
            SubjectSpec::parse(&d.to_string()).unwrap(),
            SubjectSpec::Digest(d)
        );
        assert_eq!(
            SubjectSpec::parse("git:ABCDEF1").unwrap(),
            SubjectSpec::Commit("abcdef1".into())
        );
        assert_eq!(
            SubjectSpec::parse("target/app").unwrap(),
            SubjectSpec::Path("target/app".into())
        );
        assert!(SubjectSpec::parse("app@sha256:nothex").is_err());
        assert!(SubjectSpec::parse("git:xyz").is_err());
        let c = SubjectSpec::parse("git:abcdef1")
            .unwrap()
            .descriptor()
            .unwrap();
        assert_eq!(
            c.digest.get("gitCommit").map(String::as_str),
            Some("abcdef1")
        );
    }
}
