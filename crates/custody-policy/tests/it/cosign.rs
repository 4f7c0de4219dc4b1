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
