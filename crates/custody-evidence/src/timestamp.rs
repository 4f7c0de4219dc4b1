//! RFC 3161 timestamps over envelope signatures: the request a signer sends a TSA, the
//! checks on its reply, and the offline verification of a stored token against the TSA
//! certificates a verifier trusts. No I/O: the HTTP round trip is custody-sign's.
//!
//! A token's message imprint is the SHA-256 of one signature's bytes (as Sigstore's
//! bundles do), so its time is an upper bound on when that signature was made: the
//! trusted time a key's validity is judged at. The TSA's reply (`TimeStampResp`, the
//! form Sigstore stores) travels inside the envelope, in the signature's DSSE 1.1
//! `extension` of kind [`VERIFICATION_MATERIAL_KIND`] (a Sigstore
//! `VerificationMaterial`, where `timestampVerificationData.rfc3161Timestamps[]
//! .signedTimestamp` holds it), so the record and its timestamps are one write-once
//! object, and the envelope digest the chain links to covers them.
//!
//! Parsing is RustCrypto's (`cms`, `x509-tsp`); the TSA's certificate path (anchored in
//! the configured certificates, valid at the token's time, with the critical
//! `id-kp-timeStamping` usage) and the token's signature are checked by rustls-webpki
//! on ring, for RSA and ECDSA TSAs alike.

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::Certificate;
use x509_cert::der::asn1::{Int, ObjectIdentifier, OctetString};
use x509_cert::der::{Any, Decode, Encode};
use x509_cert::spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

/// The DSSE signature extension kind that carries Sigstore verification material.
pub const VERIFICATION_MATERIAL_KIND: &str =
    "application/vnd.dev.sigstore.verificationmaterial;version=0.3";
/// The media type of a request to a TSA.
pub const QUERY_MEDIA_TYPE: &str = "application/timestamp-query";
/// The media type of a TSA's reply.
pub const REPLY_MEDIA_TYPE: &str = "application/timestamp-reply";
/// The longest token accepted: real ones, with a chain, are a few KiB.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-kp-timeStamping (1.3.6.1.5.5.7.3.8), as the DER value bytes webpki compares.
const EKU_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// Every signature algorithm a certificate path may use (a TSA's, Fulcio's).
pub(crate) static CHAIN_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::ring::ED25519,
];

/// Why a timestamp could not be made or does not verify. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("the timestamp is not a valid RFC 3161 token: {0}")]
    Malformed(String),
    #[error("the TSA did not grant the timestamp (status {status}{text})")]
    NotGranted { status: String, text: String },
    #[error("the timestamp covers other bytes than this signature (its message imprint differs)")]
    Imprint,
    #[error("the TSA's reply does not carry the nonce of the request: a replayed reply")]
    Nonce,
    #[error("the timestamp uses hash algorithm {0}, which is not supported (SHA-256/384/512)")]
    UnsupportedHash(String),
    #[error("the timestamp is signed with algorithm {0}, which is not supported")]
    UnsupportedSignature(String),
    #[error("the token does not carry the TSA certificate it names, nor is it configured")]
    NoSignerCertificate,
    #[error("the TSA certificate `{subject}` is not trusted: {reason}")]
    Untrusted { subject: String, reason: String },
    #[error("the TSA certificate `{subject}` has no path to a trusted TSA certificate")]
    UnknownAuthority { subject: String },
    #[error("the TSA's signature over the timestamp does not verify: the token was altered")]
    BadSignature,
    #[error("the TSA certificates are not usable: {0}")]
    Config(String),
}

impl TimestampError {
    /// Whether the token is simply from a TSA this verifier does not trust (which a
    /// record signed for several verifiers may carry), rather than broken.
    pub fn is_unknown_authority(&self) -> bool {
        matches!(self, Self::UnknownAuthority { .. })
    }
}

fn malformed(e: impl std::fmt::Display) -> TimestampError {
    TimestampError::Malformed(e.to_string())
}

/// A request for a timestamp over one signature, and what its reply must echo.
#[derive(Debug, Clone)]
pub struct Request {
    /// The DER `TimeStampReq` to POST as [`QUERY_MEDIA_TYPE`].
    pub der: Vec<u8>,
    signature: Vec<u8>,
    nonce: Int,
}

/// Builds the request for a timestamp over `signature`: SHA-256 imprint, `nonce`
/// (random per request) and `certReq` so the token carries the TSA's certificate.
pub fn request(signature: &[u8], nonce: [u8; 8]) -> Result<Request, TimestampError> {
    // a positive INTEGER in its minimal encoding (DER; OpenSSL refuses padding): the
    // top byte is 0x40..=0x7f, which leaves 62 random bits
    let mut n = nonce;
    n[0] = (n[0] & 0x3f) | 0x40;
    let nonce = Int::new(&n).map_err(malformed)?;
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: imprint(signature)?,
        req_policy: None,
        nonce: Some(nonce.clone()),
        cert_req: true,
        extensions: None,
    };
    Ok(Request {
        der: req.to_der().map_err(malformed)?,
        signature: signature.to_vec(),
        nonce,
    })
}

fn imprint(signature: &[u8]) -> Result<MessageImprint, TimestampError> {
    Ok(MessageImprint {
        hash_algorithm: AlgorithmIdentifier {
            oid: ID_SHA256,
            parameters: Some(Any::null()),
        },
        hashed_message: OctetString::new(Sha256::digest(signature).to_vec()).map_err(malformed)?,
    })
}

/// Checks a TSA's reply to `req` and returns what is stored: the reply itself (DER
/// `TimeStampResp`, as Sigstore's `signedTimestamp` holds it), granted, over this
/// signature, with this request's nonce. The TSA's certificate is checked at
/// verification, against the verifier's configuration.
pub fn accept_reply(req: &Request, reply: &[u8]) -> Result<Vec<u8>, TimestampError> {
    let token = granted_token(reply)?;
    let info = parse(&token)?.info;
    if info.nonce.as_ref() != Some(&req.nonce) {
        return Err(TimestampError::Nonce);
    }
    check_imprint(&info.message_imprint, &req.signature)?;
    Ok(reply.to_vec())
}

/// The token (DER `ContentInfo`) of a granted `TimeStampResp`.
fn granted_token(reply: &[u8]) -> Result<Vec<u8>, TimestampError> {
    let resp = TimeStampResp::from_der(reply).map_err(malformed)?;
    let status = resp.status.status as u8;
    if status > 1 {
        let text = resp
            .status
            .status_string
            .as_ref()
            .map(|s| {
                let parts: Vec<String> = s.iter().map(|t| t.to_string()).collect();
                format!(": {}", parts.join("; "))
            })
            .unwrap_or_default();
        return Err(TimestampError::NotGranted {
            status: format!("{:?}", resp.status.status),
            text,
        });
    }
    resp.time_stamp_token
        .ok_or_else(|| malformed("the reply is granted but carries no token"))?
        .to_der()
        .map_err(malformed)
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The TSA's time: the signature existed by then.
    pub time: jiff::Timestamp,
    /// The TSA certificate's subject, for messages and reports.
    pub authority: String,
}

struct Parsed {
    signed: SignedData,
    info: TstInfo,
    econtent: Vec<u8>,
}

/// Parses a stored timestamp: a `TimeStampResp` (what Custody and Sigstore store), or
/// a bare token.
fn parse(stored: &[u8]) -> Result<Parsed, TimestampError> {
    if stored.len() > MAX_TOKEN_LEN {
        return Err(malformed(format!(
            "{} bytes, more than the {MAX_TOKEN_LEN} accepted",
            stored.len()
        )));
    }
    let ci = match ContentInfo::from_der(stored) {
        Ok(ci) => ci,
        Err(_) => ContentInfo::from_der(&granted_token(stored)?).map_err(malformed)?,
    };
    if ci.content_type != ID_SIGNED_DATA {
        return Err(malformed(format!(
            "content type {} is not SignedData",
            ci.content_type
        )));
    }
    let signed: SignedData = ci.content.decode_as().map_err(malformed)?;
    if signed.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(malformed(format!(
            "encapsulated content {} is not TSTInfo",
            signed.encap_content_info.econtent_type
        )));
    }
    let econtent = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("no TSTInfo"))?
        .decode_as::<OctetString>()
        .map_err(malformed)?
        .into_bytes();
    let info = TstInfo::from_der(&econtent).map_err(malformed)?;
    Ok(Parsed {
        signed,
        info,
        econtent,
    })
}

fn hash(alg: &ObjectIdentifier, bytes: &[u8]) -> Result<Vec<u8>, TimestampError> {
    Ok(match *alg {
        ID_SHA256 => Sha256::digest(bytes).to_vec(),
        ID_SHA384 => Sha384::digest(bytes).to_vec(),
        ID_SHA512 => Sha512::digest(bytes).to_vec(),
        other => return Err(TimestampError::UnsupportedHash(other.to_string())),
    })
}

fn check_imprint(imprint: &MessageImprint, signature: &[u8]) -> Result<(), TimestampError> {
    let want = hash(&imprint.hash_algorithm.oid, signature)?;
    if imprint.hashed_message.as_bytes() != want.as_slice() {
        return Err(TimestampError::Imprint);
    }
    Ok(())
}

/// The TSA certificates a verifier trusts. Every configured certificate is a trust
/// anchor (a TSA's root or an issuing CA one chooses to trust) and also offered as an
/// intermediate, so a file may hold a whole chain.
#[derive(Debug, Clone, Default)]
pub struct Authorities {
    anchors: Vec<TrustAnchor<'static>>,
    certs: Vec<CertificateDer<'static>>,
}

impl Authorities {
    /// Adds every certificate of a PEM text.
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<usize, TimestampError> {
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TimestampError::Config(e.to_string()))?;
            self.add_der(cert)?;
            n += 1;
        }
        if n == 0 {
            return Err(TimestampError::Config(
                "no PEM certificate (-----BEGIN CERTIFICATE-----) found".into(),
            ));
        }
        Ok(n)
    }

    /// Adds one DER certificate.
    pub fn add_der(&mut self, cert: CertificateDer<'static>) -> Result<(), TimestampError> {
        let anchor = webpki::anchor_from_trusted_cert(&cert)
            .map_err(|e| TimestampError::Config(format!("{e:?}")))?
            .to_owned();
        if !self.certs.contains(&cert) {
            self.anchors.push(anchor);
            self.certs.push(cert);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }
}

/// Verifies a stored timestamp (a `TimeStampResp`, or a bare token) over `signature` against the trusted TSAs, offline: the imprint is
/// this signature's hash; the signed attributes bind the TSTInfo; the TSA's signature
/// verifies with the certificate the token names; that certificate has the
/// `id-kp-timeStamping` usage and a path to a configured certificate, every
/// certificate on it valid at the token's time.
pub fn verify(
    token: &[u8],
    signature: &[u8],
    authorities: &Authorities,
) -> Result<Verified, TimestampError> {
    let Parsed {
        signed,
        info,
        econtent,
    } = parse(token)?;
    check_imprint(&info.message_imprint, signature)?;
    let [signer] = signed.signer_infos.0.as_slice() else {
        return Err(malformed(format!(
            "{} signers, RFC 3161 wants one",
            signed.signer_infos.0.len()
        )));
    };
    // the signed attributes bind the content: its type and its digest
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| malformed("no signed attributes"))?;
    let attr = |oid: ObjectIdentifier| {
        attrs
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.iter().next())
            .ok_or_else(|| malformed(format!("signed attribute {oid} is missing")))
    };
    let content_type: ObjectIdentifier = attr(ID_CONTENT_TYPE)?.decode_as().map_err(malformed)?;
    if content_type != ID_CT_TST_INFO {
        return Err(malformed(
            "the signed content-type attribute is not TSTInfo",
        ));
    }
    let digest: OctetString = attr(ID_MESSAGE_DIGEST)?.decode_as().map_err(malformed)?;
    if digest.as_bytes() != hash(&signer.digest_alg.oid, &econtent)?.as_slice() {
        return Err(TimestampError::BadSignature);
    }
    // the certificate the signer names, from the token or the configuration; a
    // self-signed certificate the token carries (its root) is no link of a path: only
    // a configured one is trusted
    let token_certs: Vec<CertificateDer<'static>> = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c)
                if c.tbs_certificate.subject != c.tbs_certificate.issuer =>
            {
                c.to_der().ok().map(CertificateDer::from)
            }
            _ => None,
        })
        .collect();
    let pool: Vec<CertificateDer<'static>> = token_certs
        .iter()
        .chain(&authorities.certs)
        .cloned()
        .collect();
    let signer_der = pool
        .iter()
        .find(|der| Certificate::from_der(der).is_ok_and(|cert| names_signer(&cert, &signer.sid)))
        .ok_or(TimestampError::NoSignerCertificate)?;
    let cert = Certificate::from_der(signer_der).map_err(malformed)?;
    let subject = common_name(&cert.tbs_certificate.subject);
    let untrusted = |reason: String| TimestampError::Untrusted {
        subject: subject.clone(),
        reason,
    };
    let ee = EndEntityCert::try_from(signer_der).map_err(|e| untrusted(format!("{e:?}")))?;
    let unix = info.gen_time.to_unix_duration();
    let time = jiff::Timestamp::from_second(i64::try_from(unix.as_secs()).unwrap_or(i64::MAX))
        .map_err(malformed)?;
    ee.verify_for_usage(
        CHAIN_ALGS,
        &authorities.anchors,
        &pool,
        UnixTime::since_unix_epoch(unix),
        KeyUsage::required(EKU_TIME_STAMPING),
        None,
        None,
    )
    .map_err(|e| match e {
        webpki::Error::UnknownIssuer => TimestampError::UnknownAuthority {
            subject: subject.clone(),
        },
        other => untrusted(format!("{other:?}")),
    })?;
    let msg = attrs.to_der().map_err(malformed)?;
    let sig = signer.signature.as_bytes();
    let candidates = signature_algs(&signer.signature_algorithm.oid, &signer.digest_alg.oid)?;
    if !candidates
        .iter()
        .any(|alg| ee.verify_signature(*alg, &msg, sig).is_ok())
    {
        return Err(TimestampError::BadSignature);
    }
    Ok(Verified {
        time,
        authority: subject,
    })
}

/// `CN=<common name>` of a certificate's subject, for messages. Not x509-cert's RFC
/// 4514 `Display`: that one names attributes from const-oid's table of every OID, which
/// would add it to every binary that verifies a timestamp (BENCHMARKS.md).
fn common_name(name: &x509_cert::name::Name) -> String {
    const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == CN)
        .map(|atv| format!("CN={}", String::from_utf8_lossy(atv.value.value())))
        .unwrap_or_else(|| "a certificate without a common name".to_owned())
}

fn names_signer(cert: &Certificate, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(is) => {
            cert.tbs_certificate.issuer == is.issuer
                && cert.tbs_certificate.serial_number == is.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate
            .get::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, own)| own == *ski),
    }
}

/// The algorithms a CMS signer's (signature, digest) pair may mean: ECDSA names its
/// hash, RSA often says only `rsaEncryption` and leaves the hash to the digest.
fn signature_algs(
    sig: &ObjectIdentifier,
    digest: &ObjectIdentifier,
) -> Result<Vec<&'static dyn SignatureVerificationAlgorithm>, TimestampError> {
    use webpki::ring as r;
    Ok(match (*sig, *digest) {
        (ECDSA_SHA256, _) => vec![r::ECDSA_P256_SHA256, r::ECDSA_P384_SHA256],
        (ECDSA_SHA384, _) => vec![r::ECDSA_P256_SHA384, r::ECDSA_P384_SHA384],
        (SHA256_WITH_RSA, _) | (RSA_ENCRYPTION, ID_SHA256) => {
            vec![r::RSA_PKCS1_2048_8192_SHA256]
        }
        (SHA384_WITH_RSA, _) | (RSA_ENCRYPTION, ID_SHA384) => {
            vec![r::RSA_PKCS1_2048_8192_SHA384]
        }
        (SHA512_WITH_RSA, _) | (RSA_ENCRYPTION, ID_SHA512) => {
            vec![r::RSA_PKCS1_2048_8192_SHA512]
        }
        (other, _) => return Err(TimestampError::UnsupportedSignature(other.to_string())),
    })
}

/// The timestamps a DSSE signature's Sigstore verification material carries (base64
/// DER `TimeStampResp`s in `timestampVerificationData.rfc3161Timestamps[].signedTimestamp`).
pub fn tokens_in_material(material: &serde_json::Value) -> Vec<String> {
    material
        .pointer("/timestampVerificationData/rfc3161Timestamps")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|t| t.get("signedTimestamp")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Sigstore verification material with a public-key hint and these tokens (base64).
pub fn material(hint: &str, tokens: &[String]) -> serde_json::Value {
    let stamps: Vec<serde_json::Value> = tokens
        .iter()
        .map(|t| serde_json::json!({ "signedTimestamp": t }))
        .collect();
    serde_json::json!({
        "publicKey": { "hint": hint },
        "timestampVerificationData": { "rfc3161Timestamps": stamps },
    })
}

#[cfg(test)]
mod tests {
    //! Against replies OpenSSL's TSA (`openssl ts -reply`) made, committed in
    //! `tests/data/tsa` (`tests/timestamp.rs`'s ignored `make_fixtures` writes them; its
    //! other tests run OpenSSL live and cross-check with `openssl ts -verify`).
    use super::*;

    const SIG: &[u8] = include_bytes!("../tests/data/tsa/signature.bin");
    const RSA: &[u8] = include_bytes!("../tests/data/tsa/rsa.tsr");
    const ECDSA: &[u8] = include_bytes!("../tests/data/tsa/ecdsa.tsr");
    const RSA_CA: &[u8] = include_bytes!("../tests/data/tsa/rsa-ca.pem");
    const ECDSA_CA: &[u8] = include_bytes!("../tests/data/tsa/ecdsa-ca.pem");

    fn trusting(pem: &[u8]) -> Authorities {
        let mut a = Authorities::default();
        assert_eq!(a.add_pem(pem).unwrap(), 1);
        a
    }

    #[test]
    fn rsa_and_ecdsa_replies_verify_against_their_roots_only() {
        for (reply, ca, other, name) in [
            (RSA, RSA_CA, ECDSA_CA, "rsa"),
            (ECDSA, ECDSA_CA, RSA_CA, "ecdsa"),
        ] {
            let v = verify(reply, SIG, &trusting(ca)).unwrap();
            assert_eq!(v.authority, format!("CN=Custody Fixture TSA {name}"));
            // the bare token inside verifies the same
            let token = granted_token(reply).unwrap();
            assert_eq!(verify(&token, SIG, &trusting(ca)).unwrap(), v);
            let e = verify(reply, SIG, &trusting(other)).unwrap_err();
            assert!(e.is_unknown_authority(), "{e}");
            assert_eq!(
                verify(reply, b"other bytes", &trusting(ca)),
                Err(TimestampError::Imprint)
            );
            // the same reply accepted only for the request it answers
            let req = request(SIG, [7; 8]).unwrap();
            assert_eq!(accept_reply(&req, reply).unwrap(), reply);
            let replay = request(SIG, [8; 8]).unwrap();
            assert_eq!(accept_reply(&replay, reply), Err(TimestampError::Nonce));
            let other_sig = request(b"x", [7; 8]).unwrap();
            assert_eq!(
                accept_reply(&other_sig, reply),
                Err(TimestampError::Imprint)
            );
        }
    }

    #[test]
    fn no_flipped_byte_changes_what_a_reply_vouches_for() {
        let auth = trusting(RSA_CA);
        let good = verify(RSA, SIG, &auth).unwrap();
        let mut refused = 0;
        for i in 0..RSA.len() {
            let mut bad = RSA.to_vec();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0x01;
            }
            match verify(&bad, SIG, &auth) {
                Err(_) => refused += 1,
                Ok(v) => assert_eq!(v, good, "byte {i}"),
            }
        }
        assert!(refused * 2 > RSA.len(), "{refused} of {}", RSA.len());
    }

    #[test]
    fn bad_configuration_and_oversized_input_are_named() {
        let mut a = Authorities::default();
        assert!(matches!(
            a.add_pem(b"no certificate here"),
            Err(TimestampError::Config(_))
        ));
        assert!(a.is_empty());
        a.add_pem(RSA_CA).unwrap();
        a.add_pem(RSA_CA).unwrap();
        assert_eq!(a.len(), 1, "a certificate added twice counts once");
        let big = vec![0u8; MAX_TOKEN_LEN + 1];
        assert!(matches!(
            verify(&big, SIG, &a),
            Err(TimestampError::Malformed(_))
        ));
        let m = material("hint", &["AAAA".to_owned()]);
        assert_eq!(tokens_in_material(&m), vec!["AAAA".to_owned()]);
        assert!(tokens_in_material(&serde_json::json!({})).is_empty());
    }
}
