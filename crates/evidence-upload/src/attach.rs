//! `--oci-attach`: each stored record, as a Sigstore bundle v0.3, attached to the image
//! it is about as an OCI 1.1 referrer — the layout cosign v3 writes, so Sigstore-aware
//! tools that list an image's referrers find Custody's evidence next to cosign's.
//!
//! The referrer is an image manifest with `artifactType`
//! `application/vnd.dev.sigstore.bundle.v0.3+json`, the empty config, the bundle as its
//! one layer, the image as its `subject`, and cosign's annotations
//! (`dev.sigstore.bundle.content`, `dev.sigstore.bundle.predicateType`). A registry
//! that indexes subjects says so (`OCI-Subject`); on one that does not, the
//! `sha256-<hex>` tag's index (the referrers tag schema) gets the descriptor added.

use custody_evidence::sigstore::{BUNDLE_V03, bundle_v03};
use custody_evidence::{Digest, Envelope, PublicKey, SubjectSpec};
use custody_http::client::Config;
use custody_http::net::Net;
use custody_http::oci::{
    Credentials, EMPTY, INDEX, MANIFEST, MANIFEST_ACCEPT, Registry, split_name,
};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::Outcome;

/// Where to push, and as whom.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub net: Net,
    /// Replaces `https://<registry host>` (tests: `http://127.0.0.1:PORT`).
    pub registry_url: Option<String>,
    pub creds: Credentials,
}

/// The largest manifest or index read: referrer lists stay small.
const MAX_BYTES: usize = 4 << 20;

/// Attaches every record of `outcome` to the image `subject` names
/// (`registry/repo@sha256:…`). The referrer manifests' digests, in record order.
pub async fn attach(
    outcome: &Outcome,
    subject: &str,
    key: &PublicKey,
    opts: &AttachOptions,
) -> Result<Vec<String>, String> {
    let Ok(SubjectSpec::Image { name, digest }) = SubjectSpec::parse(subject) else {
        return Err(format!(
            "--oci-attach needs an image subject by digest (`registry/repo@sha256:…`), not `{subject}`"
        ));
    };
    let (host, repo) = split_name(&name);
    let base = opts
        .registry_url
        .clone()
        .unwrap_or_else(|| format!("https://{host}"));
    let cfg = Config {
        attempts: 2,
        body_limit: MAX_BYTES,
        ..Config::default()
    };
    let mut reg = Registry::new(&opts.net, &base, &repo, opts.creds.clone(), true, cfg)
        .map_err(|e| format!("{base}: {e}"))?;
    // the subject descriptor: the image manifest's media type and size, as the registry has it
    let url = format!(
        "{}/v2/{repo}/manifests/{digest}",
        base.trim_end_matches('/')
    );
    let (status, headers, image) = reg
        .send(
            Method::GET,
            &url,
            Some(MANIFEST_ACCEPT),
            None,
            Default::default(),
        )
        .await?;
    if status != StatusCode::OK {
        return Err(format!(
            "{host}/{repo}@{digest}: the registry answered {status} for the image manifest"
        ));
    }
    if Digest::of(&image) != digest {
        return Err(format!(
            "{host}/{repo}@{digest}: the registry sent a manifest with another digest"
        ));
    }
    let image_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
        .unwrap_or_else(|| MANIFEST.to_owned());
    let empty = Digest::of(b"{}");
    reg.put_blob(&empty.to_string(), b"{}").await?;
    let mut referrers = Vec::with_capacity(outcome.records.len());
    for r in &outcome.records {
        let env =
            Envelope::from_slice(&r.envelope).map_err(|e| format!("record {}: {e}", r.record))?;
        let bundle = bundle_v03(&env, key);
        let bundle_digest = Digest::of(&bundle);
        reg.put_blob(&bundle_digest.to_string(), &bundle).await?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": BUNDLE_V03,
            "config": {"mediaType": EMPTY, "digest": empty.to_string(), "size": 2},
            "layers": [{
                "mediaType": BUNDLE_V03,
                "digest": bundle_digest.to_string(),
                "size": bundle.len(),
            }],
            "subject": {"mediaType": image_type, "digest": digest.to_string(), "size": image.len()},
            "annotations": {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": r.predicate_type,
                "dev.custody.record": r.record.to_string(),
            },
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
        let manifest_digest = Digest::of(&bytes);
        let answer = reg
            .put_manifest(&manifest_digest.to_string(), MANIFEST, &bytes)
            .await?;
        if !answer.contains_key("oci-subject") {
            add_to_fallback_index(&mut reg, &digest, &manifest, &manifest_digest, bytes.len())
                .await?;
        }
        referrers.push(manifest_digest.to_string());
    }
    Ok(referrers)
}

/// The referrers tag schema: the index under `sha256-<hex>` lists every referrer.
async fn add_to_fallback_index(
    reg: &mut Registry,
    subject: &Digest,
    manifest: &Value,
    manifest_digest: &Digest,
    size: usize,
) -> Result<(), String> {
    let tag = format!("sha256-{}", subject.hex());
    let mut index = match reg.get(&format!("manifests/{tag}"), INDEX).await? {
        (StatusCode::OK, body) => serde_json::from_slice::<Value>(&body)
            .map_err(|e| format!("the referrers index {tag} is not JSON: {e}"))?,
        (StatusCode::NOT_FOUND, _) => {
            json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": []})
        }
        (s, _) => {
            return Err(format!(
                "the referrers index {tag}: the registry answered {s}"
            ));
        }
    };
    let list = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| format!("the referrers index {tag} has no manifests list"))?;
    let d = manifest_digest.to_string();
    if !list
        .iter()
        .any(|m| m.get("digest").and_then(Value::as_str) == Some(d.as_str()))
    {
        list.push(json!({
            "mediaType": MANIFEST,
            "digest": d,
            "size": size,
            "artifactType": BUNDLE_V03,
            "annotations": manifest.get("annotations").cloned().unwrap_or(Value::Null),
        }));
    }
    let bytes = serde_json::to_vec(&index).map_err(|e| e.to_string())?;
    reg.put_manifest(&tag, INDEX, &bytes).await?;
    Ok(())
}
