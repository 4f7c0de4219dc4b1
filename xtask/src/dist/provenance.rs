//! What a release says about itself: `SHA256SUMS` (the `sha256sum -c` format) and a SLSA
//! provenance v1 statement (an in-toto Statement v1 whose subjects are the artifacts),
//! signed as a DSSE envelope with Custody's own signing (`custody-evidence`), so it
//! verifies with `custody verify --key KEY.pub provenance.intoto.jsonl` and with
//! securesystemslib like every other Custody envelope.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use custody_evidence::{
    Envelope, KeyIdScheme, ResourceDescriptor, STATEMENT_V1, Signer, SigningKey, Statement,
    TrustedKeys, sign_statement, verify_envelope,
};
use custody_sign::awskms::KmsOptions;
use custody_sign::pkcs11::Pkcs11Options;
use custody_sign::{KeyRef, RemoteOptions};
use serde_json::json;

use super::tools::{CARGO_ZIGBUILD, Tools};
use super::{Artifact, BINARIES, Source, Target};

/// The SLSA predicate type.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// What `buildType` names: this build process, documented in `xtask/src/dist.rs`.
pub const BUILD_TYPE: &str = "https://custody.dev/xtask-dist/v1";
/// File names in the out directory.
pub const SUMS_FILE: &str = "SHA256SUMS";
pub const PROVENANCE_FILE: &str = "provenance.intoto.jsonl";
/// The key generated when `--key` is not given (a throwaway: never a release asset).
pub const GENERATED_KEY_FILE: &str = "provenance.key";
/// The public key of whichever key signed, written beside the provenance.
pub const PUBLIC_KEY_FILE: &str = "provenance.key.pub";

/// Everything the provenance states besides the artifacts.
#[derive(Debug)]
pub struct BuildFacts<'a> {
    pub source: &'a Source,
    pub tools: &'a Tools,
    pub targets: &'a [Target],
    /// The zigbuild arguments shared by every target (the `--target` is added per target).
    pub cargo_args: &'a [String],
    /// Where the build paths are remapped to (the local paths themselves are not recorded).
    pub remapped_to: &'a [&'a str],
    pub started: jiff::Timestamp,
    pub finished: jiff::Timestamp,
}

/// `SHA256SUMS`: one `HEX  NAME` line per artifact, sorted by name.
pub fn sha256sums(artifacts: &[Artifact]) -> String {
    let mut named: Vec<(String, String)> = artifacts
        .iter()
        .map(|a| (a.file_name(), a.sha256.hex()))
        .collect();
    named.sort();
    named
        .iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect()
}

/// The SLSA provenance v1 statement for the artifacts.
pub fn statement(artifacts: &[Artifact], facts: &BuildFacts<'_>) -> Statement {
    let mut subject: Vec<ResourceDescriptor> = artifacts
        .iter()
        .map(|a| ResourceDescriptor::sha256(a.file_name(), &a.sha256))
        .collect();
    subject.sort_by(|a, b| a.name.cmp(&b.name));
    let repo = env!("CARGO_PKG_REPOSITORY");
    let source_uri = format!("git+{repo}");
    let t = facts.tools;
    let predicate = json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "source": { "uri": source_uri, "digest": { "gitCommit": facts.source.commit } },
                "targets": facts.targets.iter().map(|t| t.triple()).collect::<Vec<_>>(),
                "binaries": BINARIES,
                "profile": "release",
                "locked": true,
            },
            "internalParameters": {
                "command": facts.cargo_args,
                "sourceDateEpoch": facts.source.epoch,
                "sourceDirty": facts.source.dirty,
                "remapPathPrefixes": facts.remapped_to,
                "rustflags": super::CODEGEN_FLAGS,
                "linkScript": super::LINK_SCRIPT,
            },
            "resolvedDependencies": [
                {
                    "uri": source_uri,
                    "digest": { "gitCommit": facts.source.commit },
                },
                {
                    "name": "Cargo.lock",
                    "digest": { "sha256": facts.source.cargo_lock.hex() },
                },
                {
                    "name": "rustc",
                    "uri": format!("git+https://github.com/rust-lang/rust@refs/tags/{}", t.rustc.release),
                    "digest": { "gitCommit": t.rustc.commit_hash },
                    "annotations": { "version": t.rustc.verbose, "host": t.rustc.host, "cargo": t.cargo_version },
                },
                {
                    "name": "zig",
                    "uri": format!("pkg:pypi/ziglang@{}", t.zig_version),
                },
                {
                    "name": CARGO_ZIGBUILD.0,
                    "uri": format!("pkg:cargo/{}@{}", CARGO_ZIGBUILD.0, CARGO_ZIGBUILD.1),
                },
            ],
        },
        "runDetails": {
            "builder": {
                "id": format!("{repo}/xtask/dist"),
                "version": { "xtask": env!("CARGO_PKG_VERSION") },
            },
            "metadata": {
                "startedOn": facts.started.to_string(),
                "finishedOn": facts.finished.to_string(),
            },
        },
    });
    Statement {
        type_: STATEMENT_V1.to_owned(),
        subject,
        predicate_type: SLSA_PROVENANCE_V1.to_owned(),
        predicate,
        record: None,
    }
}

/// Signs the statement (keyid scheme `empty`, Custody's default) and checks the
/// envelope verifies under the key's public half before anyone sees it.
pub fn sign(statement: &Statement, key: &dyn Signer) -> anyhow::Result<Envelope> {
    let env = sign_statement(statement, key, KeyIdScheme::default())?;
    let trusted = TrustedKeys::new(vec![key.public().clone()]);
    let verified = verify_envelope(&env, &trusted).context("the provenance just signed")?;
    if verified.statement != *statement {
        bail!("the signed provenance does not read back as the statement that was signed");
    }
    Ok(env)
}

/// The signing key: `--key` (a PKCS#8 or SEC1 PEM, or an `awskms://` key URI, reached
/// with the AWS credential chain and `AWS_ENDPOINT_URL_KMS`), else `OUT/provenance.key`,
/// generated (mode 0600) when absent. Writes the public key to `OUT/provenance.key.pub`.
pub fn signing_key(key: Option<&str>, out: &Path) -> anyhow::Result<(Arc<dyn Signer>, PathBuf)> {
    let key: Arc<dyn Signer> = match key {
        Some(r) => match KeyRef::parse(r)? {
            KeyRef::File(path) => Arc::new(read_key(Path::new(&path))?),
            remote => {
                let opts = RemoteOptions {
                    kms: KmsOptions {
                        net: custody_sign::Net::from_env(&[])?,
                        endpoint_url: std::env::var("AWS_ENDPOINT_URL_KMS")
                            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                            .ok(),
                        ..KmsOptions::default()
                    },
                    pkcs11: Pkcs11Options {
                        module: std::env::var_os("CUSTODY_PKCS11_MODULE").map(PathBuf::from),
                        pin: std::env::var("CUSTODY_PKCS11_PIN").ok(),
                    },
                };
                custody_sign::open_remote(remote, &opts)?
            }
        },
        None => {
            let path = out.join(GENERATED_KEY_FILE);
            if path.exists() {
                Arc::new(read_key(&path)?)
            } else {
                let k = SigningKey::generate();
                let pem = k.to_pkcs8_pem()?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                f.write_all(pem.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!(
                    "generated a signing key for this build: {} (pass --key for a release)",
                    path.display()
                );
                Arc::new(k)
            }
        }
    };
    let public = out.join(PUBLIC_KEY_FILE);
    std::fs::write(&public, key.public().pem())
        .with_context(|| format!("writing {}", public.display()))?;
    Ok((key, public))
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    // The error never echoes the file's content: it may be key material.
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    SigningKey::from_pem(&pem).with_context(|| {
        format!(
            "{}: not a P-256 private key in PEM (make one with `custody keygen --out FILE`)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::process::Command;

    use base64::Engine as _;
    use custody_evidence::{Digest, PublicKey};

    use super::*;
    use crate::dist::tools::RustcVersion;

    fn artifacts() -> Vec<Artifact> {
        let mut v = Vec::new();
        for target in Target::ALL {
            for bin in BINARIES {
                let bytes = format!("{bin} for {}", target.triple());
                v.push(Artifact {
                    binary: bin,
                    target,
                    path: PathBuf::from(bin),
                    size: bytes.len() as u64,
                    sha256: Digest::of(bytes.as_bytes()),
                });
            }
        }
        v
    }

    fn tools() -> Tools {
        Tools {
            zigbuild: PathBuf::from("cargo-zigbuild"),
            zig_python: PathBuf::from("python"),
            zig_version: "0.15.2".into(),
            rustc: RustcVersion {
                release: "1.95.0".into(),
                commit_hash: "59807616e".into(),
                host: "x86_64-unknown-linux-gnu".into(),
                verbose: "rustc 1.95.0".into(),
            },
            cargo_version: "cargo 1.95.0".into(),
        }
    }

    fn source() -> Source {
        Source {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            dirty: false,
            epoch: 1_700_000_000,
            cargo_lock: Digest::of(b"lock"),
        }
    }

    fn signed() -> (Statement, Envelope, SigningKey) {
        let (tools, source) = (tools(), source());
        let args = vec!["zigbuild".to_owned(), "--locked".to_owned()];
        let facts = BuildFacts {
            source: &source,
            tools: &tools,
            targets: &Target::ALL,
            cargo_args: &args,
            remapped_to: &["/custody"],
            started: jiff::Timestamp::UNIX_EPOCH,
            finished: jiff::Timestamp::UNIX_EPOCH,
        };
        let st = statement(&artifacts(), &facts);
        let key = SigningKey::generate();
        let env = sign(&st, &key).unwrap();
        (st, env, key)
    }

    #[test]
    fn sums_are_sorted_sha256sum_lines() {
        let sums = sha256sums(&artifacts());
        let lines: Vec<&str> = sums.lines().collect();
        assert_eq!(lines.len(), 8);
        let names: Vec<&str> = lines.iter().map(|l| &l[66..]).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "sorted by file name");
        assert_eq!(names[0], "custody-aarch64-unknown-linux-musl");
        let want = Digest::of(b"custody for x86_64-unknown-linux-musl").hex();
        assert!(
            lines.contains(&format!("{want}  custody-x86_64-unknown-linux-musl").as_str()),
            "{sums}"
        );
        assert!(sums.ends_with('\n'));
    }

    #[test]
    fn provenance_names_every_artifact_and_the_build() {
        let (st, env, key) = signed();
        assert_eq!(st.type_, "https://in-toto.io/Statement/v1");
        assert_eq!(st.predicate_type, "https://slsa.dev/provenance/v1");
        assert_eq!(st.subject.len(), 8);
        let want = Digest::of(b"runner-guard for aarch64-unknown-linux-musl");
        let s = st
            .subject
            .iter()
            .find(|s| s.name == "runner-guard-aarch64-unknown-linux-musl")
            .unwrap();
        assert_eq!(s.sha256_digest(), Some(want));
        let def = &st.predicate["buildDefinition"];
        assert_eq!(def["buildType"], BUILD_TYPE);
        assert_eq!(def["externalParameters"]["locked"], true);
        assert_eq!(
            def["externalParameters"]["source"]["digest"]["gitCommit"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(
            def["externalParameters"]["targets"],
            json!(["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"])
        );
        assert_eq!(
            def["resolvedDependencies"][2]["digest"]["gitCommit"],
            "59807616e"
        );
        assert_eq!(
            def["resolvedDependencies"][3]["uri"],
            "pkg:pypi/ziglang@0.15.2"
        );
        let internal = &def["internalParameters"];
        assert_eq!(internal["rustflags"], json!(["-Cforce-unwind-tables=no"]));
        assert_eq!(internal["linkScript"], "xtask/src/dist/no-eh-frame.ld");
        // the script the provenance names is the one in the tree, and it drops the
        // unwind tables
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let script = std::fs::read_to_string(root.join(crate::dist::LINK_SCRIPT))
            .unwrap_or_else(|e| panic!("{}: {e}", crate::dist::LINK_SCRIPT));
        assert!(script.contains("/DISCARD/ : { *(.eh_frame) }"), "{script}");
        assert!(st.predicate["runDetails"]["builder"]["id"].is_string());
        // a Custody envelope like any other: keyid present, standard payload type
        assert_eq!(env.payload_type, "application/vnd.in-toto+json");
        assert_eq!(env.signatures[0].keyid.as_deref(), Some(""));
        let trusted = TrustedKeys::new(vec![key.public().clone()]);
        assert!(verify_envelope(&env, &trusted).is_ok());
    }

    #[test]
    fn altered_provenance_or_another_key_fails() {
        let (_, env, key) = signed();
        // another key
        let other = TrustedKeys::new(vec![SigningKey::generate().public().clone()]);
        assert!(verify_envelope(&env, &other).is_err());
        // a subject digest changed after signing
        let payload = String::from_utf8(env.payload_bytes().unwrap()).unwrap();
        let real = Digest::of(b"custody for x86_64-unknown-linux-musl").hex();
        assert!(payload.contains(&real));
        let payload = payload.replace(&real, &Digest::of(b"a trojan").hex());
        let mut tampered = env.clone();
        tampered.payload = base64::engine::general_purpose::STANDARD.encode(&payload);
        let trusted = TrustedKeys::new(vec![key.public().clone()]);
        assert!(verify_envelope(&tampered, &trusted).is_err());
    }

    #[test]
    fn key_is_generated_once_then_reused_and_never_world_readable() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (k1, public) = signing_key(None, dir.path()).unwrap();
        let (k2, _) = signing_key(None, dir.path()).unwrap();
        assert_eq!(k1.public().pem(), k2.public().pem());
        let mode = std::fs::metadata(dir.path().join(GENERATED_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        let read = PublicKey::from_pem(&std::fs::read_to_string(public).unwrap(), "p").unwrap();
        assert_eq!(read.pem(), k1.public().pem());
        // a --key that is not a key: refused, without echoing its content
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not-a-secret-but-pretend").unwrap();
        let err = format!("{:#}", signing_key(bad.to_str(), dir.path()).unwrap_err());
        assert!(err.contains("bad.key"), "{err}");
        assert!(!err.contains("pretend"), "{err}");
    }

    /// The reference verifier: securesystemslib (`CUSTODY_PYTHON`, set by
    /// `cargo xtask test`) accepts the provenance, and refuses it under another key.
    #[test]
    fn securesystemslib_verifies_the_provenance() {
        let Ok(py) = std::env::var("CUSTODY_PYTHON") else {
            eprintln!(
                "CUSTODY_PYTHON is not set: securesystemslib interop not run (cargo xtask test sets it)"
            );
            return;
        };
        let (_, env, key) = signed();
        let dir = tempfile::tempdir().unwrap();
        let (envelope, public, other) = (
            dir.path().join(PROVENANCE_FILE),
            dir.path().join("k.pub"),
            dir.path().join("other.pub"),
        );
        std::fs::write(&envelope, env.to_vec()).unwrap();
        std::fs::write(&public, key.public().pem()).unwrap();
        std::fs::write(&other, SigningKey::generate().public().pem()).unwrap();
        let script = crate::util::root().unwrap().join("tests/interop/sslib.py");
        let run = |pem: &Path| {
            Command::new(&py)
                .arg(&script)
                .arg("verify")
                .arg(&envelope)
                .arg(pem)
                .arg("")
                .output()
                .unwrap()
        };
        let ok = run(&public);
        assert!(
            ok.status.success(),
            "{}{}",
            String::from_utf8_lossy(&ok.stdout),
            String::from_utf8_lossy(&ok.stderr)
        );
        let bad = run(&other);
        assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    }
}
