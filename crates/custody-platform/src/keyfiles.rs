//! Key files at the edge: reading a private key, reading a trusted key set from files
//! and directories (PEM public keys, and trusted-keys files that bound when each key
//! counts), and writing a new key pair without ever overwriting one. Errors name the
//! file, never its contents.
//!
//! A trusted-keys file (`.yaml`, `.yml` or `.json`):
//!
//! ```yaml
//! keys:
//!   - name: ci-2025                 # for messages
//!     file: keys/ci-2025.pub        # relative to this file; or the PEM in `publicKey`
//!     notBefore: 2025-01-01T00:00:00Z
//!     notAfter: 2026-12-31T23:59:59Z
//!     revokedAt: 2026-03-01T12:00:00Z
//!     reason: exposed in a job log
//! timestampAuthorities:             # RFC 3161 TSAs whose tokens give the trusted time
//!   - name: freetsa
//!     file: tsa/freetsa-cacert.pem  # or the PEM in `certificates`; a root or issuing CA
//! requireTimestamp: false           # true: every signature needs a trusted timestamp
//! ```
//!
//! With `timestampAuthorities`, a signature's time is its earliest timestamp from one
//! of them (the record's `recordedAt` otherwise), and a revoked key's signatures count
//! only with a timestamp before the revocation. Unknown fields are refused, so a
//! misspelt `revokedAt` cannot leave a key trusted.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use custody_evidence::{KeyError, PublicKey, SigningKey, TrustedKeys, Validity};
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error(
        "{path} already exists; keygen never overwrites a key: choose another path or move the old key away"
    )]
    Exists { path: PathBuf },
    #[error("{path} holds no PEM public key (`-----BEGIN PUBLIC KEY-----`)")]
    NoPublicKey { path: PathBuf },
    #[error("{path}: not a trusted-keys file: {reason}")]
    TrustedKeysFile { path: PathBuf, reason: String },
}

/// One key of a trusted-keys file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyEntry {
    name: Option<String>,
    file: Option<PathBuf>,
    public_key: Option<String>,
    not_before: Option<jiff::Timestamp>,
    not_after: Option<jiff::Timestamp>,
    revoked_at: Option<jiff::Timestamp>,
    reason: Option<String>,
}

/// One TSA of a trusted-keys file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuthorityEntry {
    name: Option<String>,
    file: Option<PathBuf>,
    certificates: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeysFile {
    keys: Vec<KeyEntry>,
    #[serde(default)]
    timestamp_authorities: Vec<AuthorityEntry>,
    #[serde(default)]
    require_timestamp: bool,
}

fn is_trusted_keys_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Reads a trusted-keys file into `keys`: each entry's key (one, from `file` or
/// `publicKey`) with its bounds.
fn read_keys_file(path: &Path, keys: &mut TrustedKeys) -> Result<(), KeyFileError> {
    let bad = |reason: String| KeyFileError::TrustedKeysFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = fs::read_to_string(path).map_err(io(path))?;
    let file: KeysFile = serde_yaml_ng::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if file.keys.is_empty() {
        return Err(bad("`keys` is empty".into()));
    }
    for (i, entry) in file.keys.into_iter().enumerate() {
        let what = entry.name.clone().unwrap_or_else(|| format!("keys[{i}]"));
        let (pem, origin) = match (&entry.file, &entry.public_key) {
            (Some(f), None) => {
                let full = path.parent().unwrap_or(Path::new(".")).join(f);
                (fs::read_to_string(&full).map_err(io(&full))?, full)
            }
            (None, Some(pem)) => (pem.clone(), path.to_path_buf()),
            _ => {
                return Err(bad(format!(
                    "{what}: give exactly one of `file` and `publicKey`"
                )));
            }
        };
        let mut parsed = parse_public_keys(&pem, &origin)?;
        if parsed.len() != 1 {
            return Err(bad(format!(
                "{what}: expected one PEM public key, found {}",
                parsed.len()
            )));
        }
        let mut key = parsed.remove(0);
        key.label = format!("{what} ({})", path.display());
        if let (Some(nb), Some(na)) = (entry.not_before, entry.not_after)
            && nb > na
        {
            return Err(bad(format!(
                "{what}: notBefore {nb} is after notAfter {na}"
            )));
        }
        keys.push_with(
            key,
            Validity {
                not_before: entry.not_before,
                not_after: entry.not_after,
                revoked_at: entry.revoked_at,
                reason: entry.reason,
            },
        );
    }
    for (i, tsa) in file.timestamp_authorities.into_iter().enumerate() {
        let what = tsa
            .name
            .clone()
            .unwrap_or_else(|| format!("timestampAuthorities[{i}]"));
        let pem = match (&tsa.file, &tsa.certificates) {
            (Some(f), None) => {
                let full = path.parent().unwrap_or(Path::new(".")).join(f);
                fs::read(&full).map_err(io(&full))?
            }
            (None, Some(pem)) => pem.clone().into_bytes(),
            _ => {
                return Err(bad(format!(
                    "{what}: give exactly one of `file` and `certificates`"
                )));
            }
        };
        keys.authorities_mut()
            .add_pem(&pem)
            .map_err(|e| bad(format!("{what}: {e}")))?;
    }
    if file.require_timestamp {
        if keys.authorities().is_empty() {
            return Err(bad(
                "`requireTimestamp` is true but no `timestampAuthorities` are trusted".into(),
            ));
        }
        keys.set_require_timestamp(true);
    }
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a PKCS#8 or SEC1 PEM private key.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    SigningKey::from_pem(&text).map_err(|source| KeyFileError::Key {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads trusted public keys: each path is a PEM file (one or more keys) or a
/// directory whose files holding public keys are all read.
pub fn read_trusted_keys(paths: &[PathBuf]) -> Result<TrustedKeys, KeyFileError> {
    let mut keys = TrustedKeys::default();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = fs::read_dir(path)
                .map_err(io(path))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            let mut found = false;
            for file in files {
                if is_trusted_keys_file(&file) {
                    // read for its bounds even when it holds the PEMs inline
                    read_keys_file(&file, &mut keys)?;
                    found = true;
                    continue;
                }
                let Ok(text) = fs::read_to_string(&file) else {
                    continue;
                };
                if text.contains("-----BEGIN PUBLIC KEY-----") {
                    for key in parse_public_keys(&text, &file)? {
                        keys.push(key);
                        found = true;
                    }
                }
            }
            if !found {
                return Err(KeyFileError::NoPublicKey { path: path.clone() });
            }
        } else if is_trusted_keys_file(path) {
            read_keys_file(path, &mut keys)?;
        } else {
            let text = fs::read_to_string(path).map_err(io(path))?;
            let parsed = parse_public_keys(&text, path)?;
            if parsed.is_empty() {
                return Err(KeyFileError::NoPublicKey { path: path.clone() });
            }
            parsed.into_iter().for_each(|k| keys.push(k));
        }
    }
    Ok(keys)
}

fn parse_public_keys(text: &str, path: &Path) -> Result<Vec<PublicKey>, KeyFileError> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = rest.get(start..).unwrap_or_default();
        let Some(end) = after.find(END) else { break };
        let block = after.get(..end + END.len()).unwrap_or_default();
        let key = PublicKey::from_pem(block, path.display().to_string()).map_err(|source| {
            KeyFileError::Key {
                path: path.to_path_buf(),
                source,
            }
        })?;
        out.push(key);
        rest = after.get(end + END.len()..).unwrap_or_default();
    }
    Ok(out)
}

/// Where the public half of a key pair is written: `<private>.pub`.
pub fn public_path_for(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Generates a key pair: the private key with mode 0600, the public PEM beside it.
/// Refuses to overwrite either file; on failure nothing is left behind.
pub fn write_new_keypair(private: &Path) -> Result<(SigningKey, PathBuf), KeyFileError> {
    let key = SigningKey::generate();
    let pem = key.to_pkcs8_pem().map_err(|source| KeyFileError::Key {
        path: private.to_path_buf(),
        source,
    })?;
    let public = write_new_pair(private, &pem, key.public().pem())?;
    Ok((key, public))
}

/// Writes a private key's text (mode 0600) at `private` and its public text at
/// `<private>.pub` (0644): any key kind (PEM, signed-note log and witness keys).
/// Refuses to overwrite either file; on failure nothing is left behind.
pub fn write_new_pair(
    private: &Path,
    private_text: &str,
    public_text: &str,
) -> Result<PathBuf, KeyFileError> {
    let public = public_path_for(private);
    for p in [private, public.as_path()] {
        if p.exists() {
            return Err(KeyFileError::Exists {
                path: p.to_path_buf(),
            });
        }
    }
    let write = |path: &Path, mode: u32, bytes: &[u8]| -> Result<(), KeyFileError> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => KeyFileError::Exists {
                    path: path.to_path_buf(),
                },
                _ => KeyFileError::Io {
                    path: path.to_path_buf(),
                    source: e,
                },
            })?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(io(path))
    };
    write(private, 0o600, private_text.as_bytes())?;
    if let Err(e) = write(&public, 0o644, public_text.as_bytes()) {
        let _ = fs::remove_file(private);
        return Err(e);
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keygen_writes_0600_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("signing.key");
        let (key, public) = write_new_keypair(&private).unwrap();
        let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_to_string(&public).unwrap(), key.public().pem());
        let before = fs::read(&private).unwrap();
        assert!(matches!(
            write_new_keypair(&private),
            Err(KeyFileError::Exists { .. })
        ));
        assert_eq!(
            fs::read(&private).unwrap(),
            before,
            "the old key is untouched"
        );
        let again = read_signing_key(&private).unwrap();
        assert_eq!(again.public().pem(), key.public().pem());
    }

    #[test]
    fn trusted_keys_from_files_bundles_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        fs::write(dir.path().join("a.pem"), a.public().pem()).unwrap();
        fs::write(dir.path().join("notes.txt"), "not a key").unwrap();
        let bundle = dir.path().join("bundle");
        fs::create_dir(&bundle).unwrap();
        fs::write(
            bundle.join("both.pem"),
            format!("{}{}", a.public().pem(), b.public().pem()),
        )
        .unwrap();
        assert_eq!(
            read_trusted_keys(&[dir.path().to_path_buf()])
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            read_trusted_keys(&[bundle.join("both.pem")]).unwrap().len(),
            2
        );
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(matches!(
            read_trusted_keys(&[empty]),
            Err(KeyFileError::NoPublicKey { .. })
        ));
        assert!(matches!(
            read_trusted_keys(&[dir.path().join("notes.txt")]),
            Err(KeyFileError::NoPublicKey { .. })
        ));
    }

    #[test]
    fn a_trusted_keys_file_bounds_its_keys_wherever_it_is_read_from() {
        let dir = tempfile::tempdir().unwrap();
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        fs::write(dir.path().join("a.pub"), a.public().pem()).unwrap();
        let inline = b.public().pem().replace('\n', "\n      ");
        let yaml = format!(
            "keys:\n  - name: ci-2025\n    file: a.pub\n    revokedAt: 2026-03-01T00:00:00Z\n    reason: exposed\n  - name: release\n    notBefore: 2026-01-01T00:00:00Z\n    publicKey: |\n      {inline}\n"
        );
        let file = dir.path().join("trusted-keys.yaml");
        fs::write(&file, yaml).unwrap();
        // the file itself, and the directory (where a.pub is also read as a bare PEM)
        for path in [file.clone(), dir.path().to_path_buf()] {
            let keys = read_trusted_keys(&[path]).unwrap();
            assert_eq!(keys.len(), 2);
            let va = keys.validity(a.public()).unwrap();
            assert_eq!(va.revoked_at, Some("2026-03-01T00:00:00Z".parse().unwrap()));
            assert_eq!(va.reason.as_deref(), Some("exposed"));
            let vb = keys.validity(b.public()).unwrap();
            assert!(vb.not_before.is_some() && vb.revoked_at.is_none());
        }
        // the bare PEM given after the file does not loosen the bounds
        let keys = read_trusted_keys(&[file.clone(), dir.path().join("a.pub")]).unwrap();
        assert!(!keys.validity(a.public()).unwrap().is_unbounded());
        let keys = read_trusted_keys(&[dir.path().join("a.pub"), file]).unwrap();
        assert!(!keys.validity(a.public()).unwrap().is_unbounded());
    }

    #[test]
    fn a_trusted_keys_file_that_could_leave_a_key_trusted_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = SigningKey::generate();
        fs::write(dir.path().join("a.pub"), a.public().pem()).unwrap();
        for (body, says) in [
            // a misspelt bound must not be ignored
            (
                "keys:\n  - file: a.pub\n    revokedat: 2026-03-01T00:00:00Z\n",
                "unknown field",
            ),
            (
                "keys:\n  - file: a.pub\n    revokedAt: yesterday\n",
                "revokedAt",
            ),
            ("keys:\n  - name: x\n", "exactly one of"),
            ("keys: []\n", "empty"),
            (
                "keys:\n  - file: a.pub\n    notBefore: 2027-01-01T00:00:00Z\n    notAfter: 2026-01-01T00:00:00Z\n",
                "is after notAfter",
            ),
        ] {
            let f = dir.path().join("k.yaml");
            fs::write(&f, body).unwrap();
            let e = read_trusted_keys(&[f]).unwrap_err().to_string();
            assert!(e.contains("k.yaml") && e.contains(says), "{body}: {e}");
        }
        let missing = dir.path().join("m.json");
        fs::write(&missing, r#"{"keys":[{"file":"nope.pub"}]}"#).unwrap();
        let e = read_trusted_keys(&[missing]).unwrap_err().to_string();
        assert!(e.contains("nope.pub"), "{e}");
    }
}
