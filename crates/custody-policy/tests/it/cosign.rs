//! cosign signatures (legacy `sha256-<digest>.sig` tag layout) in a real OCI registry:
//! Debian's docker-registry on loopback, started by `cargo xtask test`, which passes its
//! address as CUSTODY_OCI_REGISTRY. The test pushes an image manifest, signs its digest
//! the way cosign does (simple-signing payload, ECDSA P-256 DER, base64 annotation),
//! and checks verification and each way it must fail.

use base64::Engine as _;
use custody_evidence::{Digest, SigningKey};
use custody_policy::facts::cosign::{self, CosignConfig};
use custody_test_support::closed_port;
use serde_json::json;

use crate::support::rand_suffix;

fn registry() -> Option<String> {
    match std::env::var("CUSTODY_OCI_REGISTRY") {
        Ok(a) if !a.is_empty() => {
            assert!(
                a.starts_with("127.0.0.1:") || a.starts_with("[::1]:"),
                "loopback only: {a}"
            );
            Some(a)
        }
        _ => {
            eprintln!(
                "CUSTODY_OCI_REGISTRY is not set: cosign registry tests not run (cargo xtask test sets it)"
            );
            None
        }
    }
}

const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A cosign v3 image signature: a Sigstore bundle v0.3 whose DSSE envelope holds an
/// in-toto statement of `predicate` about `signed`, signed by `key` (cosign's
/// `signDigestBundle`: digest-only subject, empty predicate, no keyid).
fn cosign_bundle(key: &SigningKey, signed: &Digest, predicate: &str) -> Vec<u8> {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": signed.hex()}, "annotations": {}}],
        "predicateType": predicate,
        "predicate": {},
    });
    let payload = serde_json::to_vec(&statement).unwrap();
    let pae = custody_evidence::pae("application/vnd.in-toto+json", &payload);
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::to_vec(&json!({
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": key.public().keyid(custody_evidence::KeyIdScheme::Hint)}},
        "dsseEnvelope": {
            "payload": b64.encode(&payload),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": b64.encode(key.sign_der(&pae))}],
        },
    }))
    .unwrap()
}

/// cosign's referrer manifest for a bundle (`WriteReferrer`): empty config, the bundle
/// as the one layer, the image as `subject`.
fn referrer_manifest(
    config: &str,
    layer: &str,
    layer_size: usize,
    subject: &Digest,
    subject_size: usize,
    predicate: &str,
) -> serde_json::Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": BUNDLE_V03,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2, "artifactType": BUNDLE_V03},
        "layers": [{"mediaType": BUNDLE_V03, "digest": layer, "size": layer_size}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject.to_string(), "size": subject_size},
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate,
            "org.opencontainers.image.created": "2026-12-07T12:00:00Z",
        },
    })
}

struct Push {
    http: custody_http::client::Client,
    base: String,
    repo: String,
}

impl Push {
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        content_type: Option<&'static str>,
        body: Vec<u8>,
    ) -> http::Response<bytes::Bytes> {
        let mut headers = http::HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert("content-type", http::HeaderValue::from_static(ct));
        }
        self.http
            .send(
                method,
                &url::Url::parse(url).unwrap(),
                &headers,
                body.into(),
                None,
            )
            .await
            .unwrap()
    }

    async fn blob(&self, bytes: &[u8]) -> String {
        let digest = Digest::of(bytes).to_string();
        let rsp = self
            .send(
                http::Method::POST,
                &format!("{}/v2/{}/blobs/uploads/", self.base, self.repo),
                None,
                Vec::new(),
            )
            .await;
        assert_eq!(rsp.status(), 202);
        let location = rsp.headers()["location"].to_str().unwrap().to_owned();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let rsp = self
            .send(
                http::Method::PUT,
                &format!("{url}{sep}digest={digest}"),
                Some("application/octet-stream"),
                bytes.to_vec(),
            )
            .await;
        assert_eq!(rsp.status(), 201, "{}", String::from_utf8_lossy(rsp.body()));
        digest
    }

    async fn manifest(&self, reference: &str, manifest: &serde_json::Value) -> String {
        let bytes = serde_json::to_vec(manifest).unwrap();
        let rsp = self
            .send(
                http::Method::PUT,
                &format!("{}/v2/{}/manifests/{reference}", self.base, self.repo),
                Some("application/vnd.oci.image.manifest.v1+json"),
                bytes.clone(),
            )
            .await;
        assert_eq!(rsp.status(), 201, "{}", String::from_utf8_lossy(rsp.body()));
        Digest::of(&bytes).to_string()
    }

    /// An image: a config blob and one layer; returns its manifest digest.
    async fn image(&self) -> Digest {
        let config = self.blob(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#).await;
        let layer = self
            .blob(format!("layer {}", rand_suffix()).as_bytes())
            .await;
        let d = self
            .manifest(
                "v1",
                &json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 80},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 12}],
                }),
            )
            .await;
        Digest::parse(&d).unwrap()
    }

    async fn put(
        &self,
        reference: &str,
        media_type: &'static str,
        body: &serde_json::Value,
    ) -> String {
        let bytes = serde_json::to_vec(body).unwrap();
        let rsp = self
            .send(
                http::Method::PUT,
                &format!("{}/v2/{}/manifests/{reference}", self.base, self.repo),
                Some(media_type),
                bytes.clone(),
            )
            .await;
        assert_eq!(rsp.status(), 201, "{}", String::from_utf8_lossy(rsp.body()));
        Digest::of(&bytes).to_string()
    }

    /// Attaches a cosign v3 signature of `signed` the way cosign v3 does on a registry
    /// without the referrers API (cosign's `WriteReferrer`, go-containerregistry's
    /// fallback): a Sigstore bundle v0.3 (DSSE, in-toto statement of predicate type
    /// `predicate`, subject `signed`) as the one layer of a manifest whose `subject` is
    /// `subject_of`, listed in the OCI index under the tag `sha256-<hex of subject_of>`.
    async fn sign_bundle(
        &self,
        key: &SigningKey,
        signed: &Digest,
        subject_of: &Digest,
        predicate: &str,
    ) {
        let bundle = cosign_bundle(key, signed, predicate);
        let layer = self.blob(&bundle).await;
        let config = self.blob(b"{}").await;
        let subject_size = self
            .send(
                http::Method::GET,
                &format!("{}/v2/{}/manifests/{subject_of}", self.base, self.repo),
                None,
                Vec::new(),
            )
            .await
            .body()
            .len();
        let bundle_type = BUNDLE_V03;
        let manifest = referrer_manifest(
            &config,
            &layer,
            bundle.len(),
            subject_of,
            subject_size,
            predicate,
        );
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = Digest::of(&bytes).to_string();
        self.put(
            &digest,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await;
        // the fallback index: earlier entries kept, this one added
        let tag = format!("sha256-{}", subject_of.hex());
        let mut accept = http::HeaderMap::new();
        accept.insert(
            "accept",
            http::HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
        );
        let old = self
            .http
            .send(
                http::Method::GET,
                &url::Url::parse(&format!("{}/v2/{}/manifests/{tag}", self.base, self.repo))
                    .unwrap(),
                &accept,
                bytes::Bytes::new(),
                None,
            )
            .await
            .unwrap();
        let mut manifests = if old.status() == 200 {
            serde_json::from_slice::<serde_json::Value>(old.body()).unwrap()["manifests"].clone()
        } else {
            json!([])
        };
        manifests.as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": bytes.len(),
            "digest": digest,
            "artifactType": bundle_type,
        }));
        self.put(
            &tag,
            "application/vnd.oci.image.index.v1+json",
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}),
        )
        .await;
    }

    /// Attaches a cosign signature of `signed` (a digest) under the `.sig` tag of `tag_for`.
    async fn sign(&self, key: &SigningKey, signed: &Digest, tag_for: &Digest, reference: &str) {
        let payload = serde_json::to_vec(&json!({
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": signed.to_string()},
                "type": "cosign container image signature",
            },
            "optional": null,
        }))
        .unwrap();
        let sig = base64::engine::general_purpose::STANDARD.encode(key.sign_der(&payload));
        let payload_digest = self.blob(&payload).await;
        let config = self.blob(b"{}").await;
        self.manifest(
            &format!("sha256-{}.sig", tag_for.hex()),
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
                "layers": [{
                    "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                    "digest": payload_digest,
                    "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": sig},
                }],
            }),
        )
        .await;
    }
}

#[tokio::test]
async fn cosign_signatures_verify_and_fail_for_each_reason() {
    let Some(addr) = registry() else { return };
    let repo = format!("acme/app-{}", rand_suffix());
    let push = Push {
        http: custody_http::client::Client::new(
            &custody_http::net::Net::default(),
            custody_http::client::Config {
                https_only: false,
                ..Default::default()
            },
        )
        .unwrap(),
        base: format!("http://{addr}"),
        repo: repo.clone(),
    };
    let name = format!("{addr}/{repo}");
    let key = SigningKey::generate();
    let cfg = |keys: Vec<custody_evidence::PublicKey>| CosignConfig {
        keys,
        registry_url: Some(format!("http://{addr}")),
        username: None,
        password: None,
        net: custody_http::net::Net::default(),
    };
    let trusted = cfg(vec![key.public().clone()]);

    // signed with the trusted key: verified
    let image = push.image().await;
    push.sign(&key, &image, &image, &name).await;
    let fact = cosign::check(&trusted, &name, &image).await;
    assert_eq!(fact.signatures.len(), 1, "{fact:?}");
    assert_eq!(fact.signatures[0].manifest_digest, image.to_string());
    assert_eq!(fact.signatures[0].docker_reference, name);
    assert_eq!(fact.reference, format!("{name}:sha256-{}.sig", image.hex()));

    // the same signature, checked with another key: not verified
    let other = SigningKey::generate();
    let fact = cosign::check(&cfg(vec![other.public().clone()]), &name, &image).await;
    assert!(fact.signatures.is_empty());
    assert!(fact.problems[0].contains("does not verify"), "{fact:?}");

    // signed by an untrusted key
    let image2 = push.image().await;
    push.sign(&other, &image2, &image2, &name).await;
    let fact = cosign::check(&trusted, &name, &image2).await;
    assert!(
        fact.signatures.is_empty() && fact.problems[0].contains("does not verify"),
        "{fact:?}"
    );

    // a valid signature of another digest, attached to this one's tag
    let image3 = push.image().await;
    push.sign(&key, &image, &image3, &name).await;
    let fact = cosign::check(&trusted, &name, &image3).await;
    assert!(fact.signatures.is_empty());
    assert!(
        fact.problems[0].contains(&format!("signs {image}, not {image3}")),
        "{fact:?}"
    );

    // not signed at all
    let image4 = push.image().await;
    let fact = cosign::check(&trusted, &name, &image4).await;
    assert!(fact.signatures.is_empty());
    assert!(
        fact.problems[0].contains("not signed with cosign"),
        "{fact:?}"
    );

    // cosign v3: a Sigstore bundle as an OCI 1.1 referrer (the tag-schema fallback of
    // a registry without the referrers API, as Debian's docker-registry 2.8 is)
    let image5 = push.image().await;
    push.sign_bundle(
        &key,
        &image5,
        &image5,
        "https://sigstore.dev/cosign/sign/v1",
    )
    .await;
    let fact = cosign::check(&trusted, &name, &image5).await;
    assert_eq!(fact.signatures.len(), 1, "{fact:?}");
    assert_eq!(fact.signatures[0].manifest_digest, image5.to_string());
    assert_eq!(fact.reference, format!("{name}@{image5} (OCI referrers)"));
    // the same bundle with another key: refused
    let fact = cosign::check(&cfg(vec![other.public().clone()]), &name, &image5).await;
    assert!(fact.signatures.is_empty());
    assert!(
        fact.problems
            .iter()
            .any(|p| p.contains("does not verify with any trusted cosign key")),
        "{fact:?}"
    );
    // a bundle by another key beside the good one: the good one still counts, the other is named
    push.sign_bundle(
        &other,
        &image5,
        &image5,
        "https://sigstore.dev/cosign/sign/v1",
    )
    .await;
    let fact = cosign::check(&trusted, &name, &image5).await;
    assert_eq!(fact.signatures.len(), 1, "{fact:?}");
    assert!(
        fact.problems.iter().any(|p| p.contains("does not verify")),
        "{fact:?}"
    );
    // legacy and bundle signatures together both count
    push.sign(&key, &image5, &image5, &name).await;
    let fact = cosign::check(&trusted, &name, &image5).await;
    assert_eq!(fact.signatures.len(), 2, "{fact:?}");
    // a bundle whose statement signs another image, attached to this one
    let image6 = push.image().await;
    push.sign_bundle(&key, &image, &image6, "https://sigstore.dev/cosign/sign/v1")
        .await;
    let fact = cosign::check(&trusted, &name, &image6).await;
    assert!(fact.signatures.is_empty());
    assert!(
        fact.problems
            .iter()
            .any(|p| p.contains(&format!("signs {image}, not {image6}"))),
        "{fact:?}"
    );
    // an attestation by the trusted key is not a signature
    let image7 = push.image().await;
    push.sign_bundle(&key, &image7, &image7, "https://slsa.dev/provenance/v1")
        .await;
    let fact = cosign::check(&trusted, &name, &image7).await;
    assert!(fact.signatures.is_empty());
    assert!(
        fact.problems
            .iter()
            .any(|p| p.contains("not a cosign signature")),
        "{fact:?}"
    );

    // nothing listening: a problem, not a hang or a panic
    let closed = closed_port();
    let mut gone = trusted.clone();
    gone.registry_url = Some(format!("http://{closed}"));
    let fact = cosign::check(&gone, &name, &image).await;
    assert!(
        fact.problems[0].contains("registry unreachable"),
        "{fact:?}"
    );

    // behind TLS inspection (issue 18): the registry answers with a private CA's
    // certificate; `--ca-file` makes it trusted, and without it the rule says why
    let ca = custody_test_support::TestCa::new("Registry inspection CA");
    let front = custody_test_support::TlsFront::start(&ca, addr.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path(), "ca");
    let mut inspected = trusted.clone();
    inspected.registry_url = Some(front.url());
    inspected.net =
        custody_http::net::Net::new(&[ca_file], custody_http::net::ProxySettings::default())
            .unwrap();
    let fact = cosign::check(&inspected, &name, &image).await;
    assert_eq!(fact.signatures.len(), 1, "{fact:?}");
    inspected.net = custody_http::net::Net::default();
    let fact = cosign::check(&inspected, &name, &image).await;
    assert!(fact.signatures.is_empty());
    assert!(
        fact.problems[0].contains("not trusted") && fact.problems[0].contains("--ca-file"),
        "{fact:?}"
    );
}

/// A registry with the referrers API (OCI distribution 1.1), as a loopback stand-in:
/// the signature is found through `GET /v2/<repo>/referrers/<digest>`, with no `.sig`
/// tag and no fallback tag.
#[tokio::test]
async fn cosign_v3_signatures_are_found_through_the_referrers_api() {
    let key = SigningKey::generate();
    let image = Digest::of(b"an image manifest");
    let bundle = cosign_bundle(&key, &image, "https://sigstore.dev/cosign/sign/v1");
    let bundle_digest = Digest::of(&bundle).to_string();
    let config = Digest::of(b"{}").to_string();
    let manifest = serde_json::to_string(&referrer_manifest(
        &config,
        &bundle_digest,
        bundle.len(),
        &image,
        17,
        "https://sigstore.dev/cosign/sign/v1",
    ))
    .unwrap();
    let manifest_digest = Digest::of(manifest.as_bytes()).to_string();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(), "artifactType": BUNDLE_V03},
            // something else referring to the image: skipped, not a problem
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(b"sbom").to_string(), "size": 4, "artifactType": "application/spdx+json"},
        ],
    })
    .to_string();
    let server = custody_test_support::Server::start(&[
        (format!("/v2/acme/app/referrers/{image}"), 200, index),
        (
            format!("/v2/acme/app/manifests/{manifest_digest}"),
            200,
            manifest,
        ),
        (
            format!("/v2/acme/app/blobs/{bundle_digest}"),
            200,
            String::from_utf8(bundle).unwrap(),
        ),
    ]);
    let cfg = |k: &SigningKey| CosignConfig {
        keys: vec![k.public().clone()],
        registry_url: Some(server.url("")),
        username: None,
        password: None,
        net: custody_http::net::Net::default(),
    };
    let fact = cosign::check(&cfg(&key), "registry.example/acme/app", &image).await;
    assert_eq!(fact.signatures.len(), 1, "{fact:?}");
    assert!(fact.reference.ends_with("(OCI referrers)"), "{fact:?}");
    let other = SigningKey::generate();
    let fact = cosign::check(&cfg(&other), "registry.example/acme/app", &image).await;
    assert!(fact.signatures.is_empty());
    assert!(
        fact.problems.iter().any(|p| p.contains("does not verify")),
        "{fact:?}"
    );
    assert!(
        server.targets().iter().any(|t| t.contains("/referrers/")),
        "{:?}",
        server.targets()
    );
}
