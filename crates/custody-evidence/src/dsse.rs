//! DSSE envelopes: PAE, signing and verification.
//!
//! Signatures are ECDSA P-256 / SHA-256 over
//! `PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body`, encoded ASN.1 DER (raw
//! `r||s` fails in securesystemslib, sigstore and cosign). Base64 is written standard
//! with padding and read in either alphabet, padded or not, as the spec requires.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::error::{EvidenceError, SignError, VerifyError};
use crate::keys::{KeyIdScheme, PublicKey, Signer, TrustedKeys};
use crate::statement::Statement;
use crate::timestamp;

/// The only payload type Custody signs and accepts.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// One signature of an envelope. `keyid` is an `Option` so a missing field can be told
/// apart from an empty one; it is always serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: Option<String>,
    pub sig: String,
    /// DSSE 1.1's unauthenticated signature extension. Custody writes Sigstore
    /// verification material here when the signature is timestamped (RFC 3161 tokens
    /// over the signature bytes); absent otherwise, so untimestamped envelopes keep
    /// their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<SignatureExtension>,
}

/// A DSSE signature extension: a `kind` naming how to read `ext`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureExtension {
    pub kind: String,
    pub ext: serde_json::Value,
}

impl EnvelopeSignature {
    /// The RFC 3161 tokens (base64 DER) of this signature's Sigstore verification
    /// material; empty when it has none.
    pub fn timestamps(&self) -> Vec<String> {
        match &self.extension {
            Some(x)
                if x.kind
                    .starts_with("application/vnd.dev.sigstore.verificationmaterial") =>
            {
                timestamp::tokens_in_material(&x.ext)
            }
            _ => Vec::new(),
        }
    }
}

/// A DSSE JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// Pre-Authentication Encoding (DSSE protocol v1).
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

/// Decodes base64 in the standard or URL-safe alphabet, with or without padding.
pub fn decode_b64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let s = s.trim();
    let engines = if s.contains(['-', '_']) {
        [URL_SAFE, URL_SAFE_NO_PAD]
    } else {
        [STANDARD, STANDARD_NO_PAD]
    };
    let [padded, bare] = engines;
    padded.decode(s).or_else(|_| bare.decode(s))
}

impl Envelope {
    /// Parses envelope JSON.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, VerifyError> {
        serde_json::from_slice(bytes).map_err(|e| {
            // a Sigstore bundle is named as one (it would read "missing field payload")
            #[derive(Deserialize)]
            struct Bundle {
                #[serde(rename = "mediaType")]
                media_type: String,
            }
            match serde_json::from_slice::<Bundle>(bytes) {
                Ok(b)
                    if b.media_type
                        .starts_with("application/vnd.dev.sigstore.bundle") =>
                {
                    VerifyError::SigstoreBundle {
                        media_type: b.media_type,
                        reason: "a stored record is a DSSE envelope, never a bundle (`custody verify FILE` takes key-based bundles)".into(),
                    }
                }
                _ => VerifyError::Malformed(e.to_string()),
            }
        })
    }

    /// Compact JSON with a final newline: the exact bytes Custody stores and digests.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, VerifyError> {
        decode_b64(&self.payload).map_err(|e| VerifyError::PayloadBase64(e.to_string()))
    }
}

/// Signs arbitrary bytes as a DSSE envelope of `payload_type`.
pub fn sign_payload(
    payload_type: &str,
    body: &[u8],
    key: &dyn Signer,
    scheme: KeyIdScheme,
) -> Result<Envelope, SignError> {
    let sig = key.sign(&pae(payload_type, body))?;
    let tokens: Vec<String> = key
        .timestamp(&sig)?
        .iter()
        .map(|t| STANDARD.encode(t))
        .collect();
    let extension = (!tokens.is_empty()).then(|| SignatureExtension {
        kind: timestamp::VERIFICATION_MATERIAL_KIND.to_owned(),
        ext: timestamp::material(&key.public().keyid(KeyIdScheme::Hint), &tokens),
    });
    Ok(Envelope {
        payload: STANDARD.encode(body),
        payload_type: payload_type.to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: Some(key.public().keyid(scheme)),
            sig: STANDARD.encode(sig),
            extension,
        }],
    })
}

/// Serializes a statement compactly and signs it as an in-toto DSSE envelope.
pub fn sign_statement(
    statement: &Statement,
    key: &dyn Signer,
    scheme: KeyIdScheme,
) -> Result<Envelope, EvidenceError> {
    let body =
        serde_json::to_vec(statement).map_err(|e| EvidenceError::Serialize(e.to_string()))?;
    Ok(sign_payload(IN_TOTO_PAYLOAD_TYPE, &body, key, scheme)?)
}

/// A verified envelope: the statement, its payload bytes and the key that verified it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub statement: Statement,
    pub payload: Vec<u8>,
    pub signer: PublicKey,
}

/// The most signatures an envelope may carry: each costs a verification per trusted
/// key, and real envelopes carry one or a few (20,000 took 12 s).
pub const MAX_SIGNATURES: usize = 64;

/// Verifies that at least one signature of an in-toto envelope is valid under a trusted
/// key, then parses the statement. Every well-formed signature is tried: one without a
/// `keyid` (DSSE makes it optional; cosign and GitHub attestations omit it) or with
/// bad base64 does not hide a good one after it. The keyid only orders the keys tried:
/// per the DSSE spec it is never a security decision.
pub fn verify_envelope(env: &Envelope, trusted: &TrustedKeys) -> Result<Verified, VerifyError> {
    if trusted.is_empty() {
        return Err(VerifyError::NoKeys);
    }
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(VerifyError::PayloadType {
            found: env.payload_type.clone(),
            expected: IN_TOTO_PAYLOAD_TYPE.to_owned(),
        });
    }
    if env.signatures.is_empty() {
        return Err(VerifyError::NoSignatures);
    }
    if env.signatures.len() > MAX_SIGNATURES {
        return Err(VerifyError::TooManySignatures {
            found: env.signatures.len(),
            max: MAX_SIGNATURES,
        });
    }
    let payload = env.payload_bytes()?;
    let msg = pae(&env.payload_type, &payload);
    let mut malformed = None;
    // parsed once a signature verifies: the time a key's validity is judged at comes
    // from the signed payload only
    let mut statement: Option<Statement> = None;
    let mut not_valid = None;
    for (index, s) in env.signatures.iter().enumerate() {
        let sig = match decode_b64(&s.sig) {
            Ok(sig) => sig,
            Err(e) => {
                malformed.get_or_insert(VerifyError::SignatureBase64 {
                    index,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let keyid = s.keyid.as_deref().unwrap_or_default();
        let (hinted, rest): (Vec<&PublicKey>, Vec<&PublicKey>) = trusted
            .keys()
            .iter()
            .partition(|k| !keyid.is_empty() && k.matches_keyid(keyid));
        for signer in hinted.into_iter().chain(rest) {
            if !signer.verify(&msg, &sig) {
                continue;
            }
            let st = match statement.take() {
                Some(st) => st,
                None => Statement::from_slice(&payload)?,
            };
            let recorded = st.record().map(|r| r.recorded_at);
            let stamped = trusted_time(s, index, &sig, trusted)?;
            match trusted
                .validity(signer)
                .and_then(|v| refuses(v, recorded, stamped.as_ref(), trusted))
            {
                None => {
                    return Ok(Verified {
                        statement: st,
                        payload,
                        signer: signer.clone(),
                    });
                }
                Some(reason) => {
                    // another signature, by a key that counts, may still carry it
                    not_valid.get_or_insert(VerifyError::KeyNotValid {
                        key: signer.label.clone(),
                        reason,
                    });
                    statement = Some(st);
                }
            }
        }
    }
    if let Some(e) = not_valid {
        return Err(e);
    }
    // nothing verified: when no signature could even be read, say why
    match malformed {
        Some(e) if env.signatures.len() == 1 => Err(e),
        _ => Err(VerifyError::NoTrustedSignature {
            keys: trusted.len(),
            signatures: env.signatures.len(),
        }),
    }
}

/// The most timestamps one signature may carry.
pub const MAX_TIMESTAMPS: usize = 8;

/// How far a record's own `recordedAt` may run ahead of its signature's timestamp
/// (clock skew between the job and the TSA) before the claim counts as false.
const SKEW: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// The earliest time a trusted TSA vouches signature `index` existed by, when TSAs are
/// configured and one of its tokens is theirs. A token from a TSA this verifier does
/// not trust is passed over; one that is broken (altered, over other bytes) fails.
fn trusted_time(
    s: &EnvelopeSignature,
    index: usize,
    sig: &[u8],
    trusted: &TrustedKeys,
) -> Result<Option<timestamp::Verified>, VerifyError> {
    if trusted.authorities().is_empty() {
        return Ok(None);
    }
    let fail = |source| VerifyError::Timestamp { index, source };
    let tokens = s.timestamps();
    if tokens.len() > MAX_TIMESTAMPS {
        return Err(fail(timestamp::TimestampError::Malformed(format!(
            "{} timestamps, more than the {MAX_TIMESTAMPS} accepted",
            tokens.len()
        ))));
    }
    let mut best: Option<timestamp::Verified> = None;
    for token in tokens {
        let der = decode_b64(&token)
            .map_err(|e| fail(timestamp::TimestampError::Malformed(e.to_string())))?;
        match timestamp::verify(&der, sig, trusted.authorities()) {
            Ok(v) => {
                if best.as_ref().is_none_or(|b| v.time < b.time) {
                    best = Some(v);
                }
            }
            Err(e) if e.is_unknown_authority() => {}
            Err(e) => return Err(fail(e)),
        }
    }
    Ok(best)
}

/// Why a signature by a key with `validity` does not count, judged at its trusted
/// time: the TSA's when there is one, else the record's own `recordedAt`. With TSAs
/// configured, a revoked key's signature (or any, when timestamps are required) needs
/// a timestamp: a thief can write any `recordedAt`, not a TSA's time.
fn refuses(
    validity: &crate::keys::Validity,
    recorded: Option<jiff::Timestamp>,
    stamped: Option<&timestamp::Verified>,
    trusted: &TrustedKeys,
) -> Option<String> {
    match stamped {
        Some(v) => {
            if let Some(r) = recorded
                && r > v.time + SKEW
            {
                return Some(format!(
                    "the record says it was made at {r}, after its signature was timestamped at {} by {}: its time is false",
                    v.time, v.authority
                ));
            }
            validity.refuses_as(
                Some(v.time),
                &format!("the signature was timestamped by {}", v.authority),
            )
        }
        None if trusted.require_timestamp()
            || (!trusted.authorities().is_empty() && validity.revoked_at.is_some()) =>
        {
            Some(
                "no timestamp from a trusted TSA shows when it was signed, and the trusted keys require one"
                    .to_owned(),
            )
        }
        None => validity.refuses(recorded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::keys::SigningKey;
    use crate::record::RecordInfo;
    use crate::statement::ResourceDescriptor;

    /// The ECDSA P-256 test key of the DSSE protocol document (protocol.md, "Test Vectors").
    fn dsse_spec_key() -> SigningKey {
        // d = 97358161215184420915383655311931858321456579547487070936769975997791359926199
        let d = "d73ec437fd6346e3619c5ebfdfff0f6916804955ad32ac9ac492b0ede1f6ffb7";
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&d[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        SigningKey::from_scalar_bytes(&bytes).unwrap()
    }

    #[test]
    fn pae_matches_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        // Lengths are UTF-8 byte lengths, not characters; an empty body keeps its space.
        assert_eq!(pae("ä", b""), "DSSEv1 2 ä 0 ".as_bytes());
    }

    #[test]
    fn spec_key_signs_the_known_answer() {
        let key = dsse_spec_key();
        let env = sign_payload(
            "http://example.com/HelloWorld",
            b"hello world",
            &key,
            KeyIdScheme::Empty,
        )
        .unwrap();
        assert_eq!(env.payload, "aGVsbG8gd29ybGQ=");
        assert_eq!(
            env.signatures[0].sig,
            "MEQCIANyarEBrVbCdjtsaqyOSHJ14qeRk6CdxfhZ2fjvPEo7AiBR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="
        );
        // The spec publishes the same signature as raw r||s; both encodings verify.
        let raw = STANDARD
            .decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
            .unwrap();
        let msg = pae("http://example.com/HelloWorld", b"hello world");
        assert!(key.public().verify(&msg, &raw));
        assert!(!key.public().verify(b"other", &raw));
    }

    fn statement_for(d: &Digest) -> Statement {
        Statement::new(
            vec![ResourceDescriptor::sha256("artifact", d)],
            "https://custody.dev/evidence/v1",
            serde_json::Map::new(),
            &RecordInfo::for_tests(),
        )
        .unwrap()
    }

    fn trusted(k: &SigningKey) -> TrustedKeys {
        TrustedKeys::new(vec![k.public().clone()])
    }

    #[test]
    fn round_trip_with_every_keyid_scheme() {
        let key = SigningKey::generate();
        let st = statement_for(&Digest::of(b"a"));
        for scheme in KeyIdScheme::ALL {
            let env = sign_statement(&st, &key, scheme).unwrap();
            let parsed = Envelope::from_slice(&env.to_vec()).unwrap();
            let v = verify_envelope(&parsed, &trusted(&key)).unwrap();
            assert_eq!(v.statement, st);
        }
    }

    #[test]
    fn url_safe_and_unpadded_base64_are_accepted() {
        let key = SigningKey::generate();
        let mut env =
            sign_statement(&statement_for(&Digest::of(b"b")), &key, KeyIdScheme::Empty).unwrap();
        let to_url = |s: &str| {
            s.replace('+', "-")
                .replace('/', "_")
                .trim_end_matches('=')
                .to_owned()
        };
        env.payload = to_url(&env.payload);
        env.signatures[0].sig = to_url(&env.signatures[0].sig);
        verify_envelope(&env, &trusted(&key)).unwrap();
    }

    #[test]
    fn tampering_is_rejected_with_a_reason() {
        let key = SigningKey::generate();
        let env =
            sign_statement(&statement_for(&Digest::of(b"c")), &key, KeyIdScheme::Empty).unwrap();
        let t = trusted(&key);

        // a flipped byte in the payload
        let mut body = env.payload_bytes().unwrap();
        body[10] ^= 1;
        let mut e = env.clone();
        e.payload = STANDARD.encode(&body);
        let err = verify_envelope(&e, &t).unwrap_err();
        assert!(
            matches!(err, VerifyError::NoTrustedSignature { .. }),
            "{err}"
        );

        // a flipped byte in the signature
        let mut sig = STANDARD.decode(&env.signatures[0].sig).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        let mut e = env.clone();
        e.signatures[0].sig = STANDARD.encode(&sig);
        assert!(matches!(
            verify_envelope(&e, &t).unwrap_err(),
            VerifyError::NoTrustedSignature { .. }
        ));

        // a changed payloadType
        let mut e = env.clone();
        e.payload_type = "application/vnd.in-toto+jsoN".into();
        let err = verify_envelope(&e, &t).unwrap_err().to_string();
        assert!(err.contains("payloadType"), "{err}");

        // the wrong key
        let other = SigningKey::generate();
        let err = verify_envelope(&env, &trusted(&other))
            .unwrap_err()
            .to_string();
        assert!(err.contains("untrusted key"), "{err}");

        // a missing keyid: DSSE makes it optional (cosign, GitHub attestations)
        let mut e = env.clone();
        e.signatures[0].keyid = None;
        assert!(verify_envelope(&e, &t).is_ok());

        // no signatures, no keys
        let mut e = env.clone();
        e.signatures.clear();
        assert!(matches!(
            verify_envelope(&e, &t).unwrap_err(),
            VerifyError::NoSignatures
        ));
        assert!(matches!(
            verify_envelope(&env, &TrustedKeys::default()).unwrap_err(),
            VerifyError::NoKeys
        ));
    }

    /// Issue 15, item 9: a trusted signature after one without a keyid or with bad
    /// base64 was never tried; 20,000 signatures took 12 s.
    #[test]
    fn every_well_formed_signature_is_tried_and_their_number_is_capped() {
        let key = SigningKey::generate();
        let t = TrustedKeys::new(vec![key.public().clone()]);
        let env =
            sign_statement(&statement_for(&Digest::of(b"d")), &key, KeyIdScheme::Empty).unwrap();
        let good = env.signatures[0].clone();
        let other = sign_statement(
            &statement_for(&Digest::of(b"d")),
            &SigningKey::generate(),
            KeyIdScheme::Empty,
        )
        .unwrap()
        .signatures[0]
            .clone();
        let mut e = env.clone();
        e.signatures = vec![
            EnvelopeSignature {
                keyid: None,
                sig: other.sig.clone(),
                extension: None,
            },
            EnvelopeSignature {
                keyid: Some(String::new()),
                sig: "not base64!".into(),
                extension: None,
            },
            good.clone(),
        ];
        assert!(verify_envelope(&e, &t).is_ok());
        // the twin without the good one fails, naming no trusted signature
        e.signatures.pop();
        assert!(matches!(
            verify_envelope(&e, &t).unwrap_err(),
            VerifyError::NoTrustedSignature { signatures: 2, .. }
        ));
        // a lone unreadable signature is named as such
        let mut lone = env.clone();
        lone.signatures[0].sig = "not base64!".into();
        assert!(matches!(
            verify_envelope(&lone, &t).unwrap_err(),
            VerifyError::SignatureBase64 { index: 0, .. }
        ));
        // too many: refused before any verification
        let mut many = env.clone();
        many.signatures = vec![good; MAX_SIGNATURES + 1];
        let err = verify_envelope(&many, &t).unwrap_err();
        assert!(
            matches!(err, VerifyError::TooManySignatures { found, max } if found == MAX_SIGNATURES + 1 && max == MAX_SIGNATURES),
            "{err}"
        );
    }

    #[test]
    fn a_misleading_keyid_does_not_change_the_outcome() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let mut env =
            sign_statement(&statement_for(&Digest::of(b"d")), &key, KeyIdScheme::Sslib).unwrap();
        // claims to be the other key: verification still finds the real signer
        env.signatures[0].keyid = Some(other.public().keyid(KeyIdScheme::Sslib));
        let keys = TrustedKeys::new(vec![other.public().clone(), key.public().clone()]);
        let v = verify_envelope(&env, &keys).unwrap();
        assert_eq!(v.signer.pem(), key.public().pem());
    }

    #[test]
    fn replay_for_another_subject_is_refused() {
        let key = SigningKey::generate();
        let a = Digest::of(b"artifact a");
        let b = Digest::of(b"artifact b");
        let env = sign_statement(&statement_for(&a), &key, KeyIdScheme::Empty).unwrap();
        let v = verify_envelope(&env, &trusted(&key)).unwrap();
        v.statement.require_subject(&a).unwrap();
        let err = v.statement.require_subject(&b).unwrap_err().to_string();
        assert!(err.contains("replayed"), "{err}");
    }

    /// A statement whose record says it was made at `at`.
    fn statement_at(at: &str) -> Statement {
        let mut record = RecordInfo::for_tests();
        record.recorded_at = at.parse().unwrap();
        Statement::new(
            vec![ResourceDescriptor::sha256("artifact", &Digest::of(b"v"))],
            "https://custody.dev/evidence/v1",
            serde_json::Map::new(),
            &record,
        )
        .unwrap()
    }

    fn bounded(k: &SigningKey, v: crate::keys::Validity) -> TrustedKeys {
        let mut t = TrustedKeys::default();
        t.push_with(k.public().clone(), v);
        t
    }

    #[test]
    fn a_revoked_key_counts_for_records_made_before_its_revocation_only() {
        let key = SigningKey::generate();
        let revoked = crate::keys::Validity {
            revoked_at: Some("2026-03-01T00:00:00Z".parse().unwrap()),
            reason: Some("exposed in a job log".into()),
            ..Default::default()
        };
        let trusted = bounded(&key, revoked);
        let before = sign_statement(
            &statement_at("2026-02-28T23:59:59Z"),
            &key,
            KeyIdScheme::Empty,
        )
        .unwrap();
        verify_envelope(&before, &trusted).unwrap();
        for at in ["2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"] {
            let after = sign_statement(&statement_at(at), &key, KeyIdScheme::Empty).unwrap();
            let e = verify_envelope(&after, &trusted).unwrap_err().to_string();
            assert!(
                e.contains("revoked at 2026-03-01T00:00:00Z (exposed in a job log)")
                    && e.contains(at),
                "{e}"
            );
        }
    }

    #[test]
    fn a_key_counts_inside_its_window_only_and_not_without_a_time() {
        let key = SigningKey::generate();
        let window = crate::keys::Validity {
            not_before: Some("2025-01-01T00:00:00Z".parse().unwrap()),
            not_after: Some("2025-12-31T23:59:59Z".parse().unwrap()),
            ..Default::default()
        };
        let trusted = bounded(&key, window);
        let inside = sign_statement(
            &statement_at("2025-06-01T00:00:00Z"),
            &key,
            KeyIdScheme::Empty,
        )
        .unwrap();
        verify_envelope(&inside, &trusted).unwrap();
        for (at, says) in [
            ("2024-12-31T23:59:59Z", "notBefore"),
            ("2026-01-01T00:00:00Z", "notAfter"),
        ] {
            let env = sign_statement(&statement_at(at), &key, KeyIdScheme::Empty).unwrap();
            let e = verify_envelope(&env, &trusted).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        // a statement without a Custody record has no time to judge the window by
        let mut bare = statement_at("2025-06-01T00:00:00Z");
        bare.record = None;
        let env = sign_statement(&bare, &key, KeyIdScheme::Empty).unwrap();
        let e = verify_envelope(&env, &trusted).unwrap_err().to_string();
        assert!(e.contains("no time"), "{e}");
        // the same key without bounds verifies both
        verify_envelope(&env, &TrustedKeys::new(vec![key.public().clone()])).unwrap();
    }

    #[test]
    fn a_second_signature_by_a_key_that_counts_still_carries_the_envelope() {
        let old = SigningKey::generate();
        let new = SigningKey::generate();
        let st = statement_at("2026-06-01T00:00:00Z");
        let mut env = sign_statement(&st, &old, KeyIdScheme::Empty).unwrap();
        let second = sign_statement(&st, &new, KeyIdScheme::Empty).unwrap();
        env.signatures.extend(second.signatures);
        let mut trusted = bounded(
            &old,
            crate::keys::Validity {
                revoked_at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
                ..Default::default()
            },
        );
        let v = verify_envelope(&env, &trusted).unwrap_err().to_string();
        assert!(v.contains("revoked"), "{v}");
        trusted.push(new.public().clone());
        let v = verify_envelope(&env, &trusted).unwrap();
        assert_eq!(v.signer.pem(), new.public().pem());
        // push never loosens bounds set by push_with
        trusted.push(old.public().clone());
        assert!(!trusted.validity(old.public()).unwrap().is_unbounded());
    }
}
