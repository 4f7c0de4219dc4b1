//! `custody verify`: one envelope (a file or a stored record) against trusted keys, or
//! every record a query names, with their chains, pipelines' stages and locks.

use anyhow::Context as _;
use custody_evidence::{Digest, Envelope, KeyIdScheme, SubjectSpec, verify_envelope};
use custody_platform::context::ProcessEnv;
use custody_platform::keyfiles;
use custody_platform::stores;
use custody_store::EvidenceStore;

use crate::cli::{Format, VerifyArgs};
use crate::exit::{Exit, fail};

pub async fn run(args: VerifyArgs) -> anyhow::Result<Exit> {
    for service in &args.services {
        custody_evidence::check_service_name(service)
            .map_err(|e| fail(Exit::Usage, format!("--service {service:?}: {e}")))?;
    }
    if let Some(root) = &args.trusted_root {
        return keyless(&args, root);
    }
    let keys = keyfiles::read_trusted_keys(&args.keys).context("reading trusted keys")?;
    if args.envelope.is_none() && args.record.is_none() {
        return audit(args, keys).await;
    }
    let expected_subject = match &args.filter.subject {
        Some(s) => Some(match SubjectSpec::parse(s)? {
            SubjectSpec::Image { digest, .. } | SubjectSpec::Digest(digest) => digest,
            _ => {
                return Err(fail(
                    Exit::Usage,
                    format!("--subject {s}: expected `sha256:…` or `name@sha256:…`"),
                ));
            }
        }),
        None => None,
    };
    let (bytes, origin, store) = match (&args.envelope, &args.record) {
        (Some(path), _) => {
            let b = std::fs::read(path)
                .map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))?;
            (b, path.display().to_string(), None)
        }
        (None, Some(r)) => {
            let d = Digest::parse(r)?;
            let store = stores::open(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
                .with_context(|| format!("opening store {}", args.store.store))?;
            let b = store.get_object(&d).await?;
            (b, format!("record {d}"), Some(store))
        }
        (None, None) => {
            return Err(fail(
                Exit::Usage,
                "pass an envelope file or --record DIGEST",
            ));
        }
    };
    // a file may be a key-based Sigstore bundle: its DSSE envelope is verified the same way
    let parsed = if store.is_none() && custody_evidence::sigstore::is_bundle(&bytes) {
        custody_evidence::sigstore::envelope_from_bundle(&bytes)
    } else {
        Envelope::from_slice(&bytes)
    };
    let env = match parsed {
        Ok(env) => env,
        // not a verification failure: the wrong kind of file for this command
        Err(e @ custody_evidence::VerifyError::SigstoreBundle { .. }) => {
            return Err(fail(Exit::Usage, format!("{origin}: {e}")));
        }
        Err(e) => return Err(anyhow::Error::new(e).context(origin.clone())),
    };
    let verified = verify_envelope(&env, &keys).with_context(|| origin.clone())?;
    if let Some(expected) = &expected_subject {
        verified
            .statement
            .require_subject(expected)
            .with_context(|| origin.clone())?;
    }
    let record = verified.statement.record().cloned();
    // Materials named by a stored record must be in the store with matching bytes.
    if let (Some(store), Some(rec)) = (&store, &record) {
        for m in &rec.materials {
            store
                .get_object(&m.digest)
                .await
                .with_context(|| format!("{origin}: material {} ({})", m.name, m.digest))?;
        }
    }
    let digest = Digest::of(&bytes);
    let signer = &verified.signer;
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "verified": true,
                "record": digest,
                "signer": signer.label,
                "signerKeyid": signer.keyid(KeyIdScheme::Sslib),
                "predicateType": verified.statement.predicate_type,
                "subject": verified.statement.subject,
                "stage": record.as_ref().map(|r| r.stage.clone()),
                "chain": record.as_ref().map(|r| r.chain.clone()),
            });
            out!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            out!("verified   {origin}");
            out!("record     {digest}");
            out!(
                "signed by  {} (sslib keyid {})",
                signer.label,
                signer.keyid(KeyIdScheme::Sslib)
            );
            for s in &verified.statement.subject {
                let d: Vec<String> = s.digest.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                out!("subject    {} {}", s.name, d.join(" "));
            }
            if let Some(r) = &record {
                out!(
                    "stage      {} (chain {} #{})",
                    r.stage,
                    r.chain.id,
                    r.chain.sequence
                );
            }
        }
    }
    if store.is_none() && record.as_ref().is_some_and(|r| !r.materials.is_empty()) {
        tracing::info!(
            "materials were not checked: verify a stored record with --record to check them"
        );
    }
    Ok(Exit::Ok)
}

/// A keyless Sigstore bundle against a pinned trusted root and the identity flags.
fn keyless(args: &VerifyArgs, root_path: &std::path::Path) -> anyhow::Result<Exit> {
    use custody_evidence::keyless::{Identity, TrustedRoot, verify_keyless};
    let id = &args.identity;
    let Some(issuer) = id.certificate_oidc_issuer.clone() else {
        return Err(fail(
            Exit::Usage,
            "--trusted-root needs --certificate-oidc-issuer (e.g. https://token.actions.githubusercontent.com)",
        ));
    };
    if id.certificate_identity.is_none() && id.certificate_identity_prefix.is_none() {
        return Err(fail(
            Exit::Usage,
            "--trusted-root needs --certificate-identity or --certificate-identity-prefix: who must have signed",
        ));
    }
    let identity = Identity {
        issuer: Some(issuer),
        san: id.certificate_identity.clone(),
        san_prefix: id.certificate_identity_prefix.clone(),
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| fail(Exit::Usage, format!("{}: {e}", p.display())))
    };
    let root = TrustedRoot::from_json(&read(root_path)?)
        .with_context(|| root_path.display().to_string())?;
    let path = args
        .envelope
        .as_deref()
        .unwrap_or(std::path::Path::new("-"));
    let origin = path.display().to_string();
    let v = verify_keyless(&read(path)?, &root, &identity).with_context(|| origin.clone())?;
    if let Some(s) = &args.filter.subject {
        let expected = match SubjectSpec::parse(s)? {
            SubjectSpec::Image { digest, .. } | SubjectSpec::Digest(digest) => digest,
            _ => {
                return Err(fail(
                    Exit::Usage,
                    format!("--subject {s}: expected `sha256:…` or `name@sha256:…`"),
                ));
            }
        };
        match (&v.statement, &v.message_digest) {
            (Some(st), _) => st
                .require_subject(&expected)
                .with_context(|| origin.clone())?,
            (None, Some(d)) if *d == expected.hex() => {}
            (None, _) => {
                return Err(
                    anyhow::Error::new(custody_evidence::VerifyError::SubjectMismatch {
                        expected: expected.to_string(),
                        found: v
                            .message_digest
                            .as_deref()
                            .map(|d| format!("sha256:{d}"))
                            .unwrap_or_default(),
                    })
                    .context(origin),
                );
            }
        }
    }
    match args.format {
        Format::Json => {
            let out = serde_json::json!({
                "verified": true,
                "keyless": true,
                "issuer": v.issuer,
                "identity": v.san,
                "time": v.time,
                "logIndex": v.log_index,
                "predicateType": v.statement.as_ref().map(|s| s.predicate_type.clone()),
                "subject": v.statement.as_ref().map(|s| s.subject.clone()),
                "messageDigest": v.message_digest.as_ref().map(|d| format!("sha256:{d}")),
            });
            out!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table => {
            out!("verified   {origin} (keyless)");
            out!("signed by  {} (issuer {})", v.san, v.issuer);
            out!("at         {} (trusted: transparency log or TSA)", v.time);
            if let Some(i) = v.log_index {
                out!("logged     Rekor entry {i}");
            }
            if let Some(st) = &v.statement {
                out!("predicate  {}", st.predicate_type);
                for s in &st.subject {
                    let d: Vec<String> = s.digest.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    out!("subject    {} {}", s.name, d.join(" "));
                }
            }
            if let Some(d) = &v.message_digest {
                out!("signs      sha256:{d} (a message signature: compare it with the artifact)");
            }
        }
    }
    Ok(Exit::Ok)
}

/// Verifies what a query names: signatures, materials, chains, stages (per pipeline, or
/// per `--service`), retention.
async fn audit(args: VerifyArgs, keys: custody_evidence::TrustedKeys) -> anyhow::Result<Exit> {
    if args.filter.is_empty() {
        return Err(fail(
            Exit::Usage,
            "pass an envelope file, --record DIGEST, or query flags (--commit, --pipeline, --since, …)",
        ));
    }
    let query = crate::commands::query::build_query(&args.filter)?;
    let store = stores::open(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let opts = custody_audit::AuditOptions {
        keys,
        required_stages: args.audit.stages(),
        min_retention_years: args.audit.min_retention_years,
        verified_at: jiff::Timestamp::now(),
        store_label: None,
        required_services: args.services.clone(),
        scope: Some(args.filter.scope()),
    };
    let log_keys = crate::commands::log::read_verifiers(&args.log_keys)?;
    let collected = custody_audit::audit_query(&store, &query, &opts).await?;
    let mut audit = collected.audit;
    if !log_keys.is_empty() {
        // the log decides completeness, also of an answer that came back empty
        let coverage =
            custody_audit::completeness::check_store(&store, &mut audit, &query, &log_keys).await?;
        if let Some(c) = coverage {
            errln!(
                "log {}: checkpoint of {} entries (root {}); entries {}..{} read, {} answer the query",
                c.origin,
                c.checkpoint_size,
                c.root,
                c.from,
                c.log_size,
                c.matching
            );
        }
    }
    // an answer made only of misfiled records is a finding, not an empty answer
    if audit.totals.records == 0 && audit.findings.is_empty() {
        errln!("no records match the query in {}", store.uri());
        return Ok(Exit::NotFound);
    }
    crate::output::print_audit(&audit, args.format)?;
    Ok(if audit.ok { Exit::Ok } else { Exit::Verify })
}
