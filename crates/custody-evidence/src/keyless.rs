//! Keyless Sigstore bundles (v0.1 to v0.3), verified offline against a pinned trusted
//! root (`trusted_root.json`, as `gh attestation trusted-root` prints it): what
//! `actions/attest` and `cosign` without `--key` write.
//!
//! A bundle counts when all of this holds:
//! 1. **A trusted time.** At least one of: the Rekor entry's signed entry timestamp
//!    (SET, the log's signature over the entry and its `integratedTime`), or an
//!    RFC 3161 timestamp over the signature from a TSA of the trusted root.
//! 2. **The Fulcio chain.** The signing certificate has the `codeSigning` usage and a
//!    path to a certificate authority of the root, every certificate valid at that
//!    time, and the authority's `validFor` covering it.
//! 3. **The signature.** The certificate's key verifies the DSSE signature over PAE
//!    (or, for a message signature, the artifact digest).
//! 4. **The log entry.** Its body is this signature, by this certificate, over this
//!    payload (`dsse` 0.0.1, `intoto` 0.0.2, `hashedrekord` 0.0.1); its inclusion
//!    proof leads to the root hash of a checkpoint the log's key signed, or its SET
//!    verifies; the log is one of the root's.
//! 5. **The identity.** The certificate's issuer (Fulcio's OID 1.3.6.1.4.1.57264.1.8,
//!    or the legacy .1.1) and subject alternative name match the caller's policy.
//!
//! Not checked: the certificate's SCTs (the CT logs of the root); Rekor v2 entries.
//! Parsing is x509-cert's, paths and certificate signatures rustls-webpki's, the log's
//! ECDSA P-256 signatures p256's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::pkcs8::DecodePublicKey as _;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::dsse::{Envelope, pae};
use crate::statement::Statement;
use crate::timestamp;

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), as the DER value bytes webpki compares.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// Fulcio's OIDC issuer extension: v2 (a DER UTF8String) and v1 (raw bytes).
const FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const FULCIO_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// Why a keyless bundle does not verify. Each names the step that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeylessError {
    #[error("not a Sigstore bundle Custody reads: {0}")]
    Malformed(String),
    #[error("the trusted root is not usable: {0}")]
    Root(String),
    #[error("no trusted time: {0}")]
    NoTime(String),
    #[error("the signing certificate does not chain to the trusted root's Fulcio: {0}")]
    Chain(String),
    #[error("the signature does not verify with the signing certificate: the bundle was altered")]
    Signature,
    #[error("the transparency log entry does not match or does not verify: {0}")]
    Log(String),
    #[error("the certificate's identity is {found}, not the one the policy requires ({expected})")]
    Identity { expected: String, found: String },
}

fn bad(e: impl std::fmt::Display) -> KeylessError {
    KeylessError::Malformed(e.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<TlogJson>,
    #[serde(default)]
    certificate_authorities: Vec<CaJson>,
    #[serde(default)]
    timestamp_authorities: Vec<CaJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    public_key: KeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyJson {
    raw_bytes: Option<String>,
    key_details: Option<String>,
    valid_for: Option<ValidFor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaJson {
    cert_chain: ChainJson,
    valid_for: Option<ValidFor>,
}

#[derive(Deserialize)]
struct ChainJson {
    certificates: Vec<RawJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJson {
    raw_bytes: String,
}

#[derive(Deserialize, Clone, Copy, Default)]
struct ValidFor {
    start: Option<jiff::Timestamp>,
    end: Option<jiff::Timestamp>,
}

impl ValidFor {
    fn covers(&self, t: jiff::Timestamp) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

struct Log {
    id: Vec<u8>,
    key: p256::ecdsa::VerifyingKey,
    valid: ValidFor,
}

struct Fulcio {
    anchor: TrustAnchor<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    valid: ValidFor,
}

/// A Sigstore trusted root: the Fulcio authorities, Rekor logs and TSAs a keyless
/// bundle is checked against.
pub struct TrustedRoot {
    logs: Vec<Log>,
    fulcio: Vec<Fulcio>,
    tsas: timestamp::Authorities,
}

impl std::fmt::Debug for TrustedRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedRoot")
            .field("logs", &self.logs.len())
            .field("fulcio", &self.fulcio.len())
            .field("tsas", &self.tsas.len())
            .finish()
    }
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    STANDARD.decode(s.trim()).map_err(|e| e.to_string())
}

impl TrustedRoot {
    /// Reads a `trusted_root.json` (media type `application/vnd.dev.sigstore.trustedroot+json`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeylessError> {
        let root = |m: String| KeylessError::Root(m);
        let r: RootJson = serde_json::from_slice(bytes).map_err(|e| root(e.to_string()))?;
        if !r
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(root(format!("media type `{}`", r.media_type)));
        }
        let mut logs = Vec::new();
        for t in &r.tlogs {
            // Rekor v1 signs with ECDSA P-256; other log keys (Rekor v2's Ed25519) are
            // not read, so their entries find no log
            if t.public_key.key_details.as_deref() != Some("PKIX_ECDSA_P256_SHA_256") {
                continue;
            }
            let Some(raw) = &t.public_key.raw_bytes else {
                continue;
            };
            let der = b64(raw).map_err(root)?;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(&der)
                .map_err(|e| root(format!("a log key: {e}")))?;
            logs.push(Log {
                id: b64(&t.log_id.key_id).map_err(root)?,
                key,
                valid: t.public_key.valid_for.unwrap_or_default(),
            });
        }
        let mut fulcio = Vec::new();
        for ca in &r.certificate_authorities {
            let mut chain = ca
                .cert_chain
                .certificates
                .iter()
                .map(|c| b64(&c.raw_bytes).map(CertificateDer::from))
                .collect::<Result<Vec<_>, _>>()
                .map_err(root)?;
            // leaf first: the last certificate is the authority's root
            let Some(top) = chain.pop() else { continue };
            let anchor = webpki::anchor_from_trusted_cert(&top)
                .map_err(|e| root(format!("a Fulcio certificate: {e:?}")))?
                .to_owned();
            fulcio.push(Fulcio {
                anchor,
                intermediates: chain,
                valid: ca.valid_for.unwrap_or_default(),
            });
        }
        let mut tsas = timestamp::Authorities::default();
        for ca in &r.timestamp_authorities {
            for c in &ca.cert_chain.certificates {
                tsas.add_der(CertificateDer::from(b64(&c.raw_bytes).map_err(root)?))
                    .map_err(|e| root(e.to_string()))?;
            }
        }
        if fulcio.is_empty() {
            return Err(root("no certificate authority".into()));
        }
        Ok(Self { logs, fulcio, tsas })
    }
}

/// Who a keyless signature must come from: the OIDC issuer, and the subject
/// alternative name (a workflow URI, an e-mail address) exactly or by prefix. `None`
/// everywhere ([`Identity::default`]) accepts any signer: for callers that judge the
/// identity themselves (policy-check hands it to the policy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub issuer: Option<String>,
    pub san: Option<String>,
    pub san_prefix: Option<String>,
}

impl Identity {
    fn describe(&self) -> String {
        let san = match (&self.san, &self.san_prefix) {
            (Some(s), _) => s.clone(),
            (None, Some(p)) => format!("{p}*"),
            (None, None) => "any".into(),
        };
        format!(
            "issuer {}, SAN {san}",
            self.issuer.as_deref().unwrap_or("any")
        )
    }
}

/// What a keyless bundle says, once verified.
#[derive(Debug, Clone)]
pub struct KeylessVerified {
    /// The DSSE statement; `None` for a message signature.
    pub statement: Option<Statement>,
    /// The artifact digest a message signature signs (SHA-256, hex).
    pub message_digest: Option<String>,
    pub issuer: String,
    pub san: String,
    /// The earliest trusted time (log or TSA).
    pub time: jiff::Timestamp,
    /// The Rekor log index of the entry, when there is one.
    pub log_index: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleJson {
    media_type: String,
    verification_material: Material,
    dsse_envelope: Option<Envelope>,
    message_signature: Option<MessageSignature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    certificate: Option<RawJson>,
    x509_certificate_chain: Option<ChainJson>,
    #[serde(default)]
    tlog_entries: Vec<TlogEntry>,
    timestamp_verification_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignature {
    message_digest: MessageDigest,
    signature: String,
}

#[derive(Deserialize)]
struct MessageDigest {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogEntry {
    log_index: String,
    log_id: LogIdJson,
    kind_version: KindVersion,
    integrated_time: String,
    inclusion_promise: Option<Promise>,
    inclusion_proof: Option<Proof>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
struct KindVersion {
    kind: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Proof {
    log_index: String,
    root_hash: String,
    tree_size: String,
    hashes: Vec<String>,
    checkpoint: Option<Checkpoint>,
}

#[derive(Deserialize)]
struct Checkpoint {
    envelope: String,
}

/// Whether a bundle's verification material is a certificate (keyless).
pub fn is_keyless(bundle: &[u8]) -> bool {
    serde_json::from_slice::<BundleJson>(bundle).is_ok_and(|b| {
        b.verification_material.certificate.is_some()
            || b.verification_material.x509_certificate_chain.is_some()
    })
}

/// Verifies a keyless bundle offline against `root`, requiring `identity`.
pub fn verify_keyless(
    bundle: &[u8],
    root: &TrustedRoot,
    identity: &Identity,
) -> Result<KeylessVerified, KeylessError> {
    let b: BundleJson = serde_json::from_slice(bundle).map_err(bad)?;
    if !b
        .media_type
        .starts_with("application/vnd.dev.sigstore.bundle")
    {
        return Err(bad(format!("media type `{}`", b.media_type)));
    }
    let m = &b.verification_material;
    let leaf_der = match (&m.certificate, &m.x509_certificate_chain) {
        (Some(c), _) => b64(&c.raw_bytes).map_err(bad)?,
        (None, Some(chain)) => b64(&chain
            .certificates
            .first()
            .ok_or_else(|| bad("an empty certificate chain"))?
            .raw_bytes)
        .map_err(bad)?,
        (None, None) => return Err(bad("no certificate: not a keyless bundle")),
    };
    let leaf = CertificateDer::from(leaf_der.clone());
    let ee = EndEntityCert::try_from(&leaf).map_err(|e| KeylessError::Chain(format!("{e:?}")))?;

    // what was signed, and the signature
    let (signature, content) = match (&b.dsse_envelope, &b.message_signature) {
        (Some(env), None) => {
            let [s] = env.signatures.as_slice() else {
                return Err(bad("a keyless DSSE bundle carries exactly one signature"));
            };
            let sig = b64(&s.sig).map_err(bad)?;
            let payload = env.payload_bytes().map_err(bad)?;
            (sig, Content::Dsse(env, payload))
        }
        (None, Some(ms)) => {
            if ms.message_digest.algorithm != "SHA2_256" {
                return Err(bad(format!(
                    "message digest algorithm {}",
                    ms.message_digest.algorithm
                )));
            }
            let digest = b64(&ms.message_digest.digest).map_err(bad)?;
            (b64(&ms.signature).map_err(bad)?, Content::Message(digest))
        }
        _ => return Err(bad("neither one DSSE envelope nor one message signature")),
    };
    // 3. the signature, with the certificate's key
    let signed = match &content {
        Content::Dsse(env, payload) => {
            let msg = pae(&env.payload_type, payload);
            [
                webpki::ring::ECDSA_P256_SHA256,
                webpki::ring::ECDSA_P384_SHA384,
                webpki::ring::ED25519,
            ]
            .iter()
            .any(|alg| ee.verify_signature(*alg, &msg, &signature).is_ok())
        }
        Content::Message(digest) => {
            let cert = Certificate::from_der(&leaf_der).map_err(bad)?;
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(bad)?;
            // P-256, or P-384 (older Sigstore clients' keys), over the SHA-256 digest
            if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(&spki) {
                p256::ecdsa::DerSignature::from_bytes(&signature)
                    .is_ok_and(|sig| k.verify_prehash(digest, &sig).is_ok())
            } else if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(&spki) {
                p384::ecdsa::DerSignature::from_bytes(&signature)
                    .is_ok_and(|sig| k.verify_prehash(digest, &sig).is_ok())
            } else {
                false
            }
        }
    };
    if !signed {
        return Err(KeylessError::Signature);
    }

    // 4. the log entries, and 1. the times they and the TSAs vouch for
    let mut times = Vec::new();
    let mut log_index = None;
    let mut log_errors = Vec::new();
    for entry in &m.tlog_entries {
        match check_entry(entry, root, &leaf_der, &signature, &content) {
            Ok((time, index)) => {
                log_index.get_or_insert(index);
                times.extend(time);
            }
            Err(e) => log_errors.push(e),
        }
    }
    if let Some(e) = log_errors.into_iter().next() {
        return Err(KeylessError::Log(e));
    }
    if m.tlog_entries.is_empty() {
        return Err(KeylessError::Log(
            "the bundle carries no transparency log entry".into(),
        ));
    }
    if let Some(tvd) = &m.timestamp_verification_data {
        for stamp in timestamp::tokens_in_material(&serde_json::json!({
            "timestampVerificationData": tvd
        })) {
            let der = b64(&stamp).map_err(bad)?;
            if let Ok(v) = timestamp::verify(&der, &signature, &root.tsas) {
                times.push(v.time);
            }
        }
    }
    let Some(time) = times.iter().min().copied() else {
        return Err(KeylessError::NoTime(
            "neither a signed entry timestamp from a trusted log nor an RFC 3161 timestamp from a trusted TSA".into(),
        ));
    };

    // 2. the Fulcio chain, at every trusted time
    for t in &times {
        let unix = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(t.as_second()).unwrap_or(0),
        ));
        let path = |ca: &Fulcio| {
            ee.verify_for_usage(
                timestamp::CHAIN_ALGS,
                std::slice::from_ref(&ca.anchor),
                &ca.intermediates,
                unix,
                KeyUsage::required(EKU_CODE_SIGNING),
                None,
                None,
            )
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
        };
        let mut why = "no Fulcio authority of the root was valid then".to_owned();
        let ok = root
            .fulcio
            .iter()
            .filter(|ca| ca.valid.covers(*t))
            .any(|ca| match path(ca) {
                Ok(()) => true,
                Err(e) => {
                    why = e;
                    false
                }
            });
        if !ok {
            return Err(KeylessError::Chain(format!("at {t}: {why}")));
        }
    }

    // 5. the identity
    let cert = Certificate::from_der(&leaf_der).map_err(bad)?;
    let (issuer, san) = identity_of(&cert)?;
    let san_ok = match (&identity.san, &identity.san_prefix) {
        (Some(want), _) => *want == san,
        (None, Some(prefix)) => san.starts_with(prefix.as_str()),
        (None, None) => true,
    };
    if identity.issuer.as_ref().is_some_and(|i| *i != issuer) || !san_ok {
        return Err(KeylessError::Identity {
            expected: identity.describe(),
            found: format!("issuer {issuer}, SAN {san}"),
        });
    }
    let (statement, message_digest) = match content {
        Content::Dsse(_, payload) => (Some(Statement::from_slice(&payload).map_err(bad)?), None),
        Content::Message(d) => (None, Some(hex(&d))),
    };
    Ok(KeylessVerified {
        statement,
        message_digest,
        issuer,
        san,
        time,
        log_index,
    })
}

enum Content<'a> {
    Dsse(&'a Envelope, Vec<u8>),
    Message(Vec<u8>),
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The issuer and the first URI or e-mail SAN of a Fulcio certificate.
fn identity_of(cert: &Certificate) -> Result<(String, String), KeylessError> {
    let exts = cert.tbs_certificate.extensions.as_deref().unwrap_or(&[]);
    let ext = |oid: &str| exts.iter().find(|e| e.extn_id.to_string() == oid);
    let issuer = if let Some(e) = ext(FULCIO_ISSUER_V2) {
        x509_cert::der::asn1::Utf8StringRef::from_der(e.extn_value.as_bytes())
            .map(|s| s.as_str().to_owned())
            .map_err(bad)?
    } else if let Some(e) = ext(FULCIO_ISSUER_V1) {
        String::from_utf8(e.extn_value.as_bytes().to_vec()).map_err(bad)?
    } else {
        return Err(bad(
            "the certificate names no OIDC issuer (not a Fulcio certificate)",
        ));
    };
    let san = cert
        .tbs_certificate
        .get::<SubjectAltName>()
        .map_err(bad)?
        .and_then(|(_, san)| {
            san.0.into_iter().find_map(|n| match n {
                GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                GeneralName::Rfc822Name(m) => Some(m.to_string()),
                _ => None,
            })
        })
        .ok_or_else(|| bad("the certificate has no URI or e-mail subject alternative name"))?;
    Ok((issuer, san))
}

/// Checks one Rekor entry: its log is trusted, its body is this signature by this
/// certificate over this content, and its SET or its inclusion proof (to a checkpoint
/// the log signed) verifies. The SET's time is trusted; a proof alone gives none.
fn check_entry(
    e: &TlogEntry,
    root: &TrustedRoot,
    leaf_der: &[u8],
    signature: &[u8],
    content: &Content<'_>,
) -> Result<(Option<jiff::Timestamp>, u64), String> {
    let id = b64(&e.log_id.key_id)?;
    let index: u64 = e
        .log_index
        .parse()
        .map_err(|_| "a bad logIndex".to_owned())?;
    let integrated: i64 = e
        .integrated_time
        .parse()
        .map_err(|_| "a bad integratedTime".to_owned())?;
    let at = jiff::Timestamp::from_second(integrated).map_err(|e| e.to_string())?;
    let log = root
        .logs
        .iter()
        .find(|l| l.id == id && l.valid.covers(at))
        .ok_or("the entry's log is not one of the trusted root's")?;
    let body = b64(&e.canonicalized_body)?;
    check_body(&e.kind_version, &body, leaf_der, signature, content)?;

    let mut time = None;
    if let Some(p) = &e.inclusion_promise {
        let canonical = format!(
            r#"{{"body":"{}","integratedTime":{integrated},"logID":"{}","logIndex":{index}}}"#,
            e.canonicalized_body.trim(),
            hex(&id)
        );
        let sig = p256::ecdsa::DerSignature::from_bytes(&b64(&p.signed_entry_timestamp)?)
            .map_err(|e| e.to_string())?;
        log.key
            .verify(canonical.as_bytes(), &sig)
            .map_err(|_| "the signed entry timestamp does not verify with the log's key")?;
        time = Some(at);
    }
    match &e.inclusion_proof {
        Some(p) => check_proof(p, &body, log, time.is_some())?,
        None if time.is_none() => {
            return Err(
                "the entry has neither a signed entry timestamp nor an inclusion proof".into(),
            );
        }
        None => {}
    }
    Ok((time, index))
}

/// The proof's path must lead to its root hash, and that root must be one the log
/// signed (a checkpoint); a v0.1 bundle's proof may lack the checkpoint when the
/// entry's SET (`promised`) already vouches for it.
fn check_proof(p: &Proof, body: &[u8], log: &Log, promised: bool) -> Result<(), String> {
    let index: u64 = p.log_index.parse().map_err(|_| "a bad proof logIndex")?;
    let size: u64 = p.tree_size.parse().map_err(|_| "a bad treeSize")?;
    let root = b64(&p.root_hash)?;
    let hashes = p
        .hashes
        .iter()
        .map(|h| b64(h))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = Sha256::new()
        .chain_update([0u8])
        .chain_update(body)
        .finalize();
    if !inclusion(index, size, &leaf, &hashes, &root) {
        return Err("the inclusion proof does not lead to its root hash".into());
    }
    match &p.checkpoint {
        Some(cp) => check_checkpoint(&cp.envelope, log, size, &root),
        None if promised => Ok(()),
        None => {
            Err("the inclusion proof has no checkpoint, and no SET vouches for the entry".into())
        }
    }
}

/// RFC 9162 §2.1.3.2: the audit path from leaf `index` to the root of a tree of `size`.
pub(crate) fn inclusion(index: u64, size: u64, leaf: &[u8], path: &[Vec<u8>], root: &[u8]) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut sn) = (index, size - 1);
    let mut r = leaf.to_vec();
    for p in path {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = Sha256::new()
                .chain_update([1u8])
                .chain_update(p)
                .chain_update(&r)
                .finalize()
                .to_vec();
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = Sha256::new()
                .chain_update([1u8])
                .chain_update(&r)
                .chain_update(p)
                .finalize()
                .to_vec();
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// A Rekor checkpoint (a C2SP signed note): its origin line, size and root hash, and a
/// signature line by the log's key (key hint: the first four bytes of its log id).
fn check_checkpoint(note: &str, log: &Log, size: u64, root: &[u8]) -> Result<(), String> {
    let (text, sigs) = note
        .split_once("\n\n")
        .ok_or("the checkpoint is not a signed note")?;
    let text = format!("{text}\n");
    let mut lines = text.lines();
    let _origin = lines.next().ok_or("an empty checkpoint")?;
    let n: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("the checkpoint has no tree size")?;
    let hash = lines
        .next()
        .and_then(|l| b64(l).ok())
        .ok_or("the checkpoint has no root hash")?;
    if n != size || hash != root {
        return Err(format!(
            "the checkpoint is for tree size {n}, another tree than the proof's ({size})"
        ));
    }
    let hint = log.id.get(..4).unwrap_or_default();
    let signed = sigs.lines().any(|line| {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return false;
        };
        let Some((_, sig)) = rest.rsplit_once(' ') else {
            return false;
        };
        let Ok(raw) = b64(sig) else { return false };
        let (h, der) = raw.split_at(raw.len().min(4));
        h == hint
            && p256::ecdsa::DerSignature::from_bytes(der)
                .is_ok_and(|s| log.key.verify(text.as_bytes(), &s).is_ok())
    });
    if !signed {
        return Err("the checkpoint is not signed by the log's key".into());
    }
    Ok(())
}

/// The entry's body must be about this signature, certificate and content.
fn check_body(
    kv: &KindVersion,
    body: &[u8],
    leaf_der: &[u8],
    signature: &[u8],
    content: &Content<'_>,
) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the entry body: {e}"))?;
    let spec = v.get("spec").unwrap_or(&serde_json::Value::Null);
    let pem_is_leaf = |b64_pem: Option<&str>| {
        b64_pem
            .and_then(|p| b64(p).ok())
            .and_then(|pem| CertificateDer::pem_slice_iter_first(&pem))
            .is_some_and(|der| der.as_ref() == leaf_der)
    };
    let sig_is = |s: Option<&str>| {
        s.and_then(|s| b64(s).ok()).is_some_and(|raw| {
            raw == signature
                // intoto 0.0.2 stores the envelope's base64 signature, base64 again
                || b64(&String::from_utf8_lossy(&raw)).is_ok_and(|r| r == signature)
        })
    };
    let payload_hash_is = |p: &[u8]| {
        spec.pointer("/payloadHash/value")
            .or_else(|| spec.pointer("/content/payloadHash/value"))
            .and_then(|h| h.as_str())
            .is_some_and(|h| h == hex(&Sha256::digest(p)))
    };
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let any_signer = |list: &str, sig: &str, verifier: &str| {
        spec.pointer(list)
            .and_then(|s| s.as_array())
            .is_some_and(|l| {
                l.iter().any(|s| {
                    sig_is(field(s, sig).as_deref()) && pem_is_leaf(field(s, verifier).as_deref())
                })
            })
    };
    let ok = match (kv.kind.as_str(), kv.version.as_str(), content) {
        // the list of signatures, and the names of a signature's and a verifier's field
        ("dsse", "0.0.1", Content::Dsse(_, payload)) => {
            payload_hash_is(payload) && any_signer("/signatures", "signature", "verifier")
        }
        ("intoto", "0.0.2", Content::Dsse(_, payload)) => {
            payload_hash_is(payload)
                && any_signer("/content/envelope/signatures", "sig", "publicKey")
        }
        ("hashedrekord", "0.0.1", Content::Message(digest)) => {
            sig_is(spec.pointer("/signature/content").and_then(|s| s.as_str()))
                && pem_is_leaf(
                    spec.pointer("/signature/publicKey/content")
                        .and_then(|s| s.as_str()),
                )
                && spec
                    .pointer("/data/hash/value")
                    .and_then(|h| h.as_str())
                    .is_some_and(|h| h == hex(digest))
        }
        (kind, version, _) => {
            return Err(format!(
                "a `{kind}` {version} entry, which Custody does not read for this content"
            ));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the `{}` entry is not about this signature, certificate and content",
            kv.kind
        ))
    }
}

trait PemFirst {
    fn pem_slice_iter_first(pem: &[u8]) -> Option<CertificateDer<'static>>;
}

impl PemFirst for CertificateDer<'static> {
    fn pem_slice_iter_first(pem: &[u8]) -> Option<CertificateDer<'static>> {
        use rustls_pki_types::pem::PemObject as _;
        CertificateDer::pem_slice_iter(pem).next()?.ok()
    }
}

#[cfg(test)]
#[path = "keyless_tests.rs"]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusion_proofs_follow_rfc_9162() {
        // a tree of 5 leaves; prove leaf 2
        let h = |d: &[u8]| Sha256::digest(d).to_vec();
        let leaf = |i: u8| h(&[&[0u8][..], &[i]].concat());
        let node = |a: &[u8], b: &[u8]| h(&[&[1u8][..], a, b].concat());
        let l: Vec<Vec<u8>> = (0..5).map(leaf).collect();
        let n01 = node(&l[0], &l[1]);
        let n23 = node(&l[2], &l[3]);
        let n0123 = node(&n01, &n23);
        let root = node(&n0123, &l[4]);
        let path = vec![l[3].clone(), n01.clone(), l[4].clone()];
        assert!(inclusion(2, 5, &l[2], &path, &root));
        assert!(!inclusion(3, 5, &l[2], &path, &root));
        assert!(!inclusion(2, 5, &l[1], &path, &root));
        assert!(
            !inclusion(2, 4, &l[2], &path, &root),
            "a path too long for the tree"
        );
        assert!(inclusion(4, 5, &l[4], std::slice::from_ref(&n0123), &root));
        assert!(!inclusion(5, 5, &l[4], std::slice::from_ref(&n0123), &root));
    }
}
