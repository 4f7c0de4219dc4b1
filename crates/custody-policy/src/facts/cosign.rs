//! cosign signatures in an OCI registry, in both layouts cosign writes, verified with
//! static cosign public keys:
//!
//! - **legacy** (cosign v1, v2): the signature manifest is the tag `sha256-<hex>.sig` of
//!   the image's repository; each layer is a simple-signing payload whose annotation
//!   `dev.cosignproject.cosign/signature` is the base64 ECDSA P-256 / SHA-256 signature
//!   (DER) of the layer's bytes; the payload must name the deployed digest.
//! - **Sigstore bundles as OCI 1.1 referrers** (cosign v3's default): a manifest whose
//!   `subject` is the image and whose one layer is a bundle v0.3 holding a DSSE envelope
//!   of an in-toto statement (predicate type `https://sigstore.dev/cosign/sign/v1`) whose
//!   subject is the image digest. Found through the referrers API
//!   (`GET /v2/<repo>/referrers/<digest>`), or, on a registry without it, the OCI index
//!   under the tag `sha256-<hex>` (the tag schema fallback).
//!
//! Like `cosign verify --key K --insecure-ignore-tlog`: no transparency log or
//! certificate is consulted (the trust is in the static key). Unlike cosign, a bundle
//! counts as a signature only with the signature predicate type: an attestation (SLSA
//! provenance, an SBOM) by the same key is not an approval of the image.

use base64::Engine as _;
use custody_evidence::{Digest, PublicKey};
use custody_http::client::Config as HttpConfig;
use custody_http::net::Net;
use custody_http::oci::{Credentials, INDEX, Registry};
use http::StatusCode;
use serde::Deserialize;

use super::{CONNECT_TIMEOUT, REQUEST_TIMEOUT, Secret};
use crate::input::{CosignFact, CosignSignature};

const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// The layer (and artifact) media type of cosign v3's bundles, every version.
const BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// The predicate type of a cosign v3 image signature.
const COSIGN_SIGN: &str = "https://sigstore.dev/cosign/sign/v1";
/// Payloads and manifests larger than this are refused unread: a signature is small.
const MAX_BYTES: usize = 4 << 20;

/// Where and how to look.
#[derive(Debug, Clone)]
pub struct CosignConfig {
    pub keys: Vec<PublicKey>,
    /// Replaces `https://<registry host>` (tests: `http://127.0.0.1:PORT`).
    pub registry_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Trusted roots and proxy.
    pub net: Net,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

/// An OCI index: the referrers API's answer, or the fallback tag's.
#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(rename = "artifactType", default)]
    artifact_type: String,
}

/// A referrer manifest: its subject and layers.
#[derive(Deserialize)]
struct Referrer {
    subject: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    type_: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference", default)]
    docker_reference: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// `registry host` and `repository` of an image name (`ghcr.io/acme/app`); Docker Hub
/// names without a host get Docker's defaults.
pub use custody_http::oci::split_name;

/// Looks up and verifies the cosign signatures of `name@digest`. Never an error: what
/// could not be checked is a problem in the fact, and the policy denies on it.
pub async fn check(cfg: &CosignConfig, name: &str, digest: &Digest) -> CosignFact {
    let (host, repo) = split_name(name);
    let tag = format!("sha256-{}.sig", digest.hex());
    let reference = format!("{host}/{repo}:{tag}");
    let mut fact = CosignFact {
        reference: reference.clone(),
        signatures: Vec::new(),
        problems: Vec::new(),
    };
    if cfg.keys.is_empty() {
        fact.problems.push("no cosign public key given".into());
        return fact;
    }
    let base = cfg
        .registry_url
        .clone()
        .unwrap_or_else(|| format!("https://{host}"));
    let creds = Credentials {
        username: cfg.username.clone(),
        password: cfg.password.clone(),
    };
    let config = HttpConfig {
        connect_timeout: CONNECT_TIMEOUT,
        timeout: REQUEST_TIMEOUT,
        attempts: 2,
        body_limit: MAX_BYTES,
        ..HttpConfig::default()
    };
    let http = match Registry::new(&cfg.net, &base, &repo, creds, false, config) {
        Ok(c) => c,
        Err(e) => {
            fact.problems.push(format!("http client: {e}"));
            return fact;
        }
    };
    let mut reg = http;
    let old = legacy(&mut reg, cfg, &tag, &reference, digest, &mut fact).await;
    if old == Lookup::Unreachable {
        return fact;
    }
    let legacy_signatures = fact.signatures.len();
    let new = referrers(&mut reg, cfg, digest, &mut fact).await;
    if legacy_signatures == 0 && !fact.signatures.is_empty() {
        fact.reference = format!("{host}/{}@{digest} (OCI referrers)", reg.repo());
    }
    if old == Lookup::Missing && new == Lookup::Missing {
        // neither layout is there (and neither added a problem but this one): say it once
        fact.problems = vec![format!(
            "no signature manifest {reference} and no Sigstore bundle referring to {digest} (the image is not signed with cosign)"
        )];
    }
    fact
}

#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    /// Nothing of this layout is there.
    Missing,
    /// Something was there; its signatures and problems are in the fact.
    Looked,
    /// The registry could not be asked.
    Unreachable,
}

/// The legacy `.sig` tag.
async fn legacy(
    reg: &mut Registry,
    cfg: &CosignConfig,
    tag: &str,
    reference: &str,
    digest: &Digest,
    fact: &mut CosignFact,
) -> Lookup {
    let manifest = match reg.get(&format!("manifests/{tag}"), MANIFEST_ACCEPT).await {
        Ok((s, body)) if s.is_success() => body,
        Ok((StatusCode::NOT_FOUND, _)) => {
            fact.problems
                .push(format!("no signature manifest {reference}"));
            return Lookup::Missing;
        }
        Ok((s, _)) => {
            fact.problems
                .push(format!("{reference}: the registry answered {s}"));
            return Lookup::Looked;
        }
        Err(e) => {
            fact.problems.push(format!("registry unreachable: {e}"));
            return Lookup::Unreachable;
        }
    };
    let manifest: Manifest = match serde_json::from_slice(&manifest) {
        Ok(m) => m,
        Err(e) => {
            fact.problems
                .push(format!("{reference}: not an image manifest ({e})"));
            return Lookup::Looked;
        }
    };
    for (i, layer) in manifest.layers.iter().enumerate() {
        match verify_layer(reg, cfg, layer, digest).await {
            Ok(sig) => fact.signatures.push(sig),
            Err(p) => fact.problems.push(format!("signature {i}: {p}")),
        }
    }
    if manifest.layers.is_empty() {
        fact.problems
            .push(format!("{reference} holds no signatures"));
    }
    Lookup::Looked
}

/// Sigstore bundles referring to the image: the referrers API, else the fallback tag.
async fn referrers(
    reg: &mut Registry,
    cfg: &CosignConfig,
    digest: &Digest,
    fact: &mut CosignFact,
) -> Lookup {
    let api = reg.get(&format!("referrers/{digest}"), INDEX).await;
    let index = match api {
        Ok((s, body)) if s.is_success() => body,
        // no referrers API (404, or 400 on some registries): the tag schema
        Ok((StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST, _)) => {
            match reg
                .get(&format!("manifests/sha256-{}", digest.hex()), INDEX)
                .await
            {
                Ok((s, body)) if s.is_success() => body,
                Ok((StatusCode::NOT_FOUND, _)) => return Lookup::Missing,
                Ok((s, _)) => {
                    fact.problems.push(format!(
                        "referrers tag sha256-{}: the registry answered {s}",
                        digest.hex()
                    ));
                    return Lookup::Looked;
                }
                Err(e) => {
                    fact.problems.push(format!("referrers: {e}"));
                    return Lookup::Looked;
                }
            }
        }
        Ok((s, _)) => {
            fact.problems
                .push(format!("referrers of {digest}: the registry answered {s}"));
            return Lookup::Looked;
        }
        Err(e) => {
            fact.problems.push(format!("referrers: {e}"));
            return Lookup::Looked;
        }
    };
    let index: Index = match serde_json::from_slice(&index) {
        Ok(i) => i,
        Err(e) => {
            fact.problems
                .push(format!("referrers of {digest}: not an OCI index ({e})"));
            return Lookup::Looked;
        }
    };
    let bundles: Vec<&Descriptor> = index
        .manifests
        .iter()
        // cosign filters on the layer, not the artifact type; an entry that names
        // another artifact type is something else (an SBOM, a notation signature)
        .filter(|d| d.artifact_type.is_empty() || d.artifact_type.starts_with(BUNDLE_PREFIX))
        .collect();
    if bundles.is_empty() {
        return Lookup::Missing;
    }
    for d in bundles {
        match verify_referrer(reg, cfg, &d.digest, digest).await {
            Ok(Some(sig)) => fact.signatures.push(sig),
            Ok(None) => {}
            Err(p) => fact.problems.push(format!("bundle {}: {p}", d.digest)),
        }
    }
    Lookup::Looked
}

/// One referrer: `Ok(None)` when it is not a Sigstore bundle at all (skipped, as cosign
/// does).
async fn verify_referrer(
    reg: &mut Registry,
    cfg: &CosignConfig,
    manifest_digest: &str,
    digest: &Digest,
) -> Result<Option<CosignSignature>, String> {
    let want = Digest::parse(manifest_digest).map_err(|e| format!("manifest digest: {e}"))?;
    let (status, body) = reg
        .get(&format!("manifests/{manifest_digest}"), MANIFEST_ACCEPT)
        .await?;
    if !status.is_success() {
        return Err(format!("the registry answered {status}"));
    }
    if Digest::of(&body) != want {
        return Err("the manifest does not match its digest".into());
    }
    let m: Referrer = serde_json::from_slice(&body).map_err(|e| format!("not a manifest ({e})"))?;
    let layer = match m.layers.as_slice() {
        [l] if l.media_type.starts_with(BUNDLE_PREFIX) => l,
        _ => return Ok(None),
    };
    // the referrer must be about this image: a bundle listed under another image's
    // fallback tag is not a signature of this one
    if m.subject.as_ref().map(|s| s.digest.as_str()) != Some(digest.to_string().as_str()) {
        return Err(format!("its subject is not {digest}"));
    }
    let blob_digest = Digest::parse(&layer.digest).map_err(|e| format!("layer digest: {e}"))?;
    let (status, bundle) = reg.get(&format!("blobs/{}", layer.digest), "*/*").await?;
    if !status.is_success() {
        return Err(format!("bundle blob: the registry answered {status}"));
    }
    if Digest::of(&bundle) != blob_digest {
        return Err("the bundle does not match its digest".into());
    }
    let env =
        custody_evidence::sigstore::envelope_from_bundle(&bundle).map_err(|e| e.to_string())?;
    let trusted = custody_evidence::TrustedKeys::new(cfg.keys.clone());
    let verified = custody_evidence::verify_envelope(&env, &trusted).map_err(|e| match e {
        custody_evidence::VerifyError::NoTrustedSignature { .. } => {
            "the signature does not verify with any trusted cosign key".to_owned()
        }
        other => other.to_string(),
    })?;
    if verified.statement.predicate_type != COSIGN_SIGN {
        return Err(format!(
            "a bundle of predicate type {}, not a cosign signature ({COSIGN_SIGN})",
            verified.statement.predicate_type
        ));
    }
    verified.statement.require_subject(digest).map_err(|_| {
        format!(
            "the bundle signs {}, not {digest}",
            subjects(&verified.statement)
        )
    })?;
    Ok(Some(CosignSignature {
        key: verified.signer.label.clone(),
        manifest_digest: digest.to_string(),
        docker_reference: String::new(),
    }))
}

fn subjects(st: &custody_evidence::Statement) -> String {
    let d: Vec<String> = st
        .subject_digests()
        .iter()
        .map(ToString::to_string)
        .collect();
    if d.is_empty() {
        "no digest".into()
    } else {
        d.join(", ")
    }
}

async fn verify_layer(
    reg: &mut Registry,
    cfg: &CosignConfig,
    layer: &Layer,
    digest: &Digest,
) -> Result<CosignSignature, String> {
    if layer.media_type != SIMPLE_SIGNING {
        return Err(format!(
            "media type {} is not a simple-signing payload",
            layer.media_type
        ));
    }
    let sig_b64 = layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| format!("no {SIGNATURE_ANNOTATION} annotation"))?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig_b64.trim())
        .map_err(|e| format!("the signature is not base64 ({e})"))?;
    let want = Digest::parse(&layer.digest).map_err(|e| format!("layer digest: {e}"))?;
    let (status, payload) = reg.get(&format!("blobs/{}", layer.digest), "*/*").await?;
    if !status.is_success() {
        return Err(format!(
            "payload {}: the registry answered {status}",
            layer.digest
        ));
    }
    if Digest::of(&payload) != want {
        return Err(format!(
            "payload {} does not match its digest",
            layer.digest
        ));
    }
    let key = cfg
        .keys
        .iter()
        .find(|k| k.verify(&payload, &sig))
        .ok_or("the signature does not verify with any trusted cosign key")?;
    let p: Payload = serde_json::from_slice(&payload)
        .map_err(|e| format!("payload is not simple signing JSON ({e})"))?;
    if p.critical.type_ != "cosign container image signature" {
        return Err(format!("payload type `{}`", p.critical.type_));
    }
    let signed = p.critical.image.docker_manifest_digest;
    if signed != digest.to_string() {
        return Err(format!("the payload signs {signed}, not {digest}"));
    }
    Ok(CosignSignature {
        key: key.label.clone(),
        manifest_digest: signed,
        docker_reference: p.critical.identity.docker_reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_like_docker() {
        assert_eq!(
            split_name("ghcr.io/acme/app"),
            ("ghcr.io".into(), "acme/app".into())
        );
        assert_eq!(
            split_name("127.0.0.1:5000/acme/app:1.0"),
            ("127.0.0.1:5000".into(), "acme/app".into())
        );
        assert_eq!(
            split_name("alpine"),
            ("registry-1.docker.io".into(), "library/alpine".into())
        );
        assert_eq!(
            split_name("acme/app"),
            ("registry-1.docker.io".into(), "acme/app".into())
        );
        assert_eq!(
            split_name("localhost/app"),
            ("localhost".into(), "app".into())
        );
    }
}
