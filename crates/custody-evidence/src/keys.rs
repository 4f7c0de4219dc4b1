//! ECDSA P-256 keys: loading (PKCS#8 or SEC1 private PEM, PKIX public PEM), key ids
//! under each convention verifiers use, and the trusted key set.
//!
//! The DSSE `keyid` is an unauthenticated hint. Verifiers disagree on what it should
//! be, and some skip a signature whose non-empty keyid differs from what they compute:
//!
//! | scheme    | value                                                     | who computes it |
//! |-----------|-----------------------------------------------------------|-----------------|
//! | `empty`   | `""`                                                      | cosign (writes it); every verifier that skips the comparison for an empty keyid |
//! | `sslib`   | hex SHA-256 of the canonical JSON key                     | securesystemslib `SSlibKey.from_pem` |
//! | `witness` | hex SHA-256 of the PEM text                               | witness |
//! | `ssh`     | `SHA256:` + unpadded base64 SHA-256 of the SSH wire key   | go-securesystemslib inside cosign |
//! | `hint`    | base64 SHA-256 of the DER SPKI                            | Sigstore bundle `publicKey.hint` |
//!
//! `empty` is the default: go-securesystemslib, cosign, in-toto-golang and the
//! Sigstore verifiers accept it as is, and securesystemslib accepts it when the
//! verifier builds its key with `keyid=""`; every non-empty scheme is rejected by at
//! least one verifier that cannot be told otherwise.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey as EcSigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

use crate::digest::Digest;
use crate::error::{KeyError, SignError};

/// Whatever signs Custody's records: a key in memory ([`SigningKey`]), or a key that
/// never leaves its holder (a KMS, an HSM), behind the same two calls.
///
/// Signatures are ECDSA P-256 / SHA-256 over `msg`, ASN.1 DER encoded, verifiable with
/// [`Signer::public`]. A remote signer checks each signature against that key before it
/// returns it, so a holder that answers with another key's signature fails here, not in
/// an auditor's verification years later.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The public key every signature verifies with.
    fn public(&self) -> &PublicKey;
    /// Signs `msg` (the whole message: the signer hashes it, or sends its digest).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError>;
    /// The key's name for messages: a file, or a key URI. Never key material or a
    /// credential.
    fn name(&self) -> String;
    /// RFC 3161 tokens (DER) over a signature this signer just made, stored with it in
    /// the envelope. None by default; custody-sign's `Timestamped` asks its TSAs.
    fn timestamp(&self, signature: &[u8]) -> Result<Vec<Vec<u8>>, SignError> {
        let _ = signature;
        Ok(Vec::new())
    }
}

/// How the `keyid` of a signature is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyIdScheme {
    #[default]
    Empty,
    Sslib,
    Witness,
    Ssh,
    Hint,
}

impl KeyIdScheme {
    pub const ALL: [KeyIdScheme; 5] = [
        KeyIdScheme::Empty,
        KeyIdScheme::Sslib,
        KeyIdScheme::Witness,
        KeyIdScheme::Ssh,
        KeyIdScheme::Hint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Sslib => "sslib",
            Self::Witness => "witness",
            Self::Ssh => "ssh",
            Self::Hint => "hint",
        }
    }
}

impl FromStr for KeyIdScheme {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| KeyError::UnknownScheme(s.to_owned()))
    }
}

impl fmt::Display for KeyIdScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A P-256 public key and the canonical PEM it is identified by. Two are equal when
/// their keys are, whatever file they were read from (`label`): a key read twice is one
/// key in a [`TrustedKeys`], with one validity.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    pem: String,
    /// Where the key came from (a file name), for messages.
    pub label: String,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}, {})",
            self.label,
            self.keyid(KeyIdScheme::Hint)
        )
    }
}

impl PublicKey {
    /// Parses a PKIX (`BEGIN PUBLIC KEY`) PEM.
    pub fn from_pem(pem: &str, label: impl Into<String>) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| KeyError::PublicKey(e.to_string()))?;
        Self::from_verifying(key, label)
    }

    /// Parses an uncompressed or compressed SEC1 point (what a PKCS#11 token holds).
    pub fn from_sec1(point: &[u8], label: impl Into<String>) -> Result<Self, KeyError> {
        let key =
            VerifyingKey::from_sec1_bytes(point).map_err(|e| KeyError::PublicKey(e.to_string()))?;
        Self::from_verifying(key, label)
    }

    /// Parses a DER SubjectPublicKeyInfo (what a KMS or an HSM hands out).
    pub fn from_spki_der(der: &[u8], label: impl Into<String>) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_der(der)
            .map_err(|e| KeyError::PublicKey(e.to_string()))?;
        Self::from_verifying(key, label)
    }

    fn from_verifying(key: VerifyingKey, label: impl Into<String>) -> Result<Self, KeyError> {
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Self {
            key,
            pem,
            label: label.into(),
        })
    }

    /// The canonical PKIX PEM (64-column base64, LF line endings, final newline), the
    /// same text `cryptography` and securesystemslib produce.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Vec<u8> {
        self.key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The key id under `scheme`.
    pub fn keyid(&self, scheme: KeyIdScheme) -> String {
        match scheme {
            KeyIdScheme::Empty => String::new(),
            KeyIdScheme::Sslib => Digest::of(sslib_canonical_json(&self.pem).as_bytes()).hex(),
            KeyIdScheme::Witness => Digest::of(self.pem.as_bytes()).hex(),
            KeyIdScheme::Ssh => {
                format!(
                    "SHA256:{}",
                    STANDARD_NO_PAD.encode(Digest::of(&self.ssh_wire()).as_bytes())
                )
            }
            KeyIdScheme::Hint => STANDARD.encode(Digest::of(&self.spki_der()).as_bytes()),
        }
    }

    /// True when `keyid` is this key's id under some non-empty scheme.
    pub fn matches_keyid(&self, keyid: &str) -> bool {
        !keyid.is_empty()
            && KeyIdScheme::ALL
                .iter()
                .any(|s| *s != KeyIdScheme::Empty && self.keyid(*s) == keyid)
    }

    /// The SSH wire encoding of an `ecdsa-sha2-nistp256` key (RFC 5656 §3.1).
    fn ssh_wire(&self) -> Vec<u8> {
        let point = self.key.to_encoded_point(false);
        let mut out = Vec::with_capacity(104);
        for field in [
            b"ecdsa-sha2-nistp256".as_slice(),
            b"nistp256".as_slice(),
            point.as_bytes(),
        ] {
            out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(field);
        }
        out
    }

    /// Verifies an ASN.1 DER signature (or, leniently, a raw 64-byte `r||s`) over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let parsed = Signature::from_der(sig).or_else(|_| Signature::from_slice(sig));
        match parsed {
            Ok(sig) => self.key.verify(msg, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// A raw 64-byte `r || s` signature (PKCS#11, JOSE) as ASN.1 DER, the encoding every
/// DSSE verifier expects; `None` when it is not one.
pub fn raw_signature_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    Signature::from_slice(raw)
        .ok()
        .map(|s| s.to_der().as_bytes().to_vec())
}

/// securesystemslib's canonical JSON of an ECDSA key: keys sorted, no whitespace,
/// only `\` and `"` escaped (OLPC canonical JSON), so the PEM's newlines stay raw.
fn sslib_canonical_json(pem: &str) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"{{"keytype":"ecdsa","keyval":{{"public":"{}"}},"scheme":"ecdsa-sha2-nistp256"}}"#,
        esc(pem)
    )
}

/// A P-256 private key. Its `Debug` never shows key material.
#[derive(Clone)]
pub struct SigningKey {
    key: EcSigningKey,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(<redacted>, public {:?})", self.public)
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self::from_ec(EcSigningKey::random(&mut rand_core::OsRng))
    }

    fn from_ec(key: EcSigningKey) -> Self {
        let verifying = *key.verifying_key();
        // Encoding a valid point never fails; fall back to an empty PEM label rather than panic.
        let public = PublicKey::from_verifying(verifying, "").unwrap_or_else(|_| PublicKey {
            key: verifying,
            pem: String::new(),
            label: String::new(),
        });
        Self { key, public }
    }

    /// From the raw 32-byte scalar (big endian).
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        EcSigningKey::from_slice(bytes)
            .map(Self::from_ec)
            .map_err(|e| KeyError::PrivateKey(e.to_string()))
    }

    /// Parses a PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pem = pem.trim();
        if let Ok(k) = EcSigningKey::from_pkcs8_pem(pem) {
            return Ok(Self::from_ec(k));
        }
        match p256::SecretKey::from_sec1_pem(pem) {
            Ok(k) => Ok(Self::from_ec(EcSigningKey::from(k))),
            Err(_) if pem.contains("ENCRYPTED") => Err(KeyError::PrivateKey(
                "encrypted private keys are not supported; decrypt it first".into(),
            )),
            // Never echo the input: it may be key material.
            Err(_) => Err(KeyError::PrivateKey(
                "the PEM did not decode as PKCS#8 or SEC1 on curve P-256".into(),
            )),
        }
    }

    /// PKCS#8 PEM of the private key. Callers write it with mode 0600.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Deterministic (RFC 6979) ECDSA P-256 / SHA-256 signature, ASN.1 DER encoded.
    pub fn sign_der(&self, msg: &[u8]) -> Vec<u8> {
        let sig: Signature = self.key.sign(msg);
        sig.to_der().as_bytes().to_vec()
    }
}

impl<S: Signer + ?Sized> Signer for std::sync::Arc<S> {
    fn public(&self) -> &PublicKey {
        (**self).public()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        (**self).sign(msg)
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn timestamp(&self, signature: &[u8]) -> Result<Vec<Vec<u8>>, SignError> {
        (**self).timestamp(signature)
    }
}

impl Signer for SigningKey {
    fn public(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.sign_der(msg))
    }
    fn name(&self) -> String {
        "the signing key".into()
    }
}

/// When a trusted key's signatures count: each bound optional, RFC 3339 instants from
/// a trusted-keys file. A signature counts when it was made at or after `not_before`, at
/// or before `not_after`, and before `revoked_at`.
///
/// The time a signature was made is the record's `recordedAt`, which the key's holder
/// wrote: a revocation dated from when the key may first have been exposed is what
/// keeps a thief's backdated records out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validity {
    pub not_before: Option<jiff::Timestamp>,
    pub not_after: Option<jiff::Timestamp>,
    pub revoked_at: Option<jiff::Timestamp>,
    /// Why the key was revoked, for messages.
    pub reason: Option<String>,
}

impl Validity {
    /// No bound: the key counts whenever it signed.
    pub fn is_unbounded(&self) -> bool {
        self.not_before.is_none() && self.not_after.is_none() && self.revoked_at.is_none()
    }

    /// Why a signature made at `at` does not count; `None` when it does. A bounded key
    /// and no time (a statement without a Custody record) do not count: there is
    /// nothing to judge the bounds by.
    pub fn refuses(&self, at: Option<jiff::Timestamp>) -> Option<String> {
        self.refuses_as(at, "the record was made")
    }

    /// [`Validity::refuses`], naming the time as `what` ("the record was made", "the
    /// signature was timestamped by …").
    pub fn refuses_as(&self, at: Option<jiff::Timestamp>, what: &str) -> Option<String> {
        if self.is_unbounded() {
            return None;
        }
        let Some(at) = at else {
            return Some(
                "the key is only trusted for a period, and the statement carries no time (no Custody record) to place it in".into(),
            );
        };
        if let Some(revoked) = self.revoked_at
            && at >= revoked
        {
            let why = self
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            return Some(format!(
                "the key was revoked at {revoked}{why} and {what} at {at}"
            ));
        }
        if let Some(nb) = self.not_before
            && at < nb
        {
            return Some(format!("{what} at {at}, before the key's notBefore {nb}"));
        }
        if let Some(na) = self.not_after
            && at > na
        {
            return Some(format!("{what} at {at}, after the key's notAfter {na}"));
        }
        None
    }
}

/// The set of public keys a verifier trusts, each with its [`Validity`], and the
/// timestamp authorities whose RFC 3161 tokens give a signature its trusted time.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
    /// Parallel to `keys`.
    validity: Vec<Validity>,
    authorities: crate::timestamp::Authorities,
    require_timestamp: bool,
}

impl TrustedKeys {
    pub fn new(keys: Vec<PublicKey>) -> Self {
        let mut out = Self::default();
        keys.into_iter().for_each(|k| out.push(k));
        out
    }
    /// Adds a key trusted whenever it signed; a key already in the set keeps its
    /// validity.
    pub fn push(&mut self, key: PublicKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
            self.validity.push(Validity::default());
        }
    }
    /// Adds a key with bounds; a key already in the set takes these bounds (the
    /// trusted-keys file is the more specific statement about it).
    pub fn push_with(&mut self, key: PublicKey, validity: Validity) {
        match self.keys.iter().position(|k| *k == key) {
            Some(i) => {
                if let Some(v) = self.validity.get_mut(i) {
                    *v = validity;
                }
            }
            None => {
                self.keys.push(key);
                self.validity.push(validity);
            }
        }
    }
    /// The bounds of `key`, when it is in the set.
    pub fn validity(&self, key: &PublicKey) -> Option<&Validity> {
        self.keys
            .iter()
            .position(|k| k == key)
            .and_then(|i| self.validity.get(i))
    }
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
    /// The TSAs trusted for timestamps; empty when none is configured.
    pub fn authorities(&self) -> &crate::timestamp::Authorities {
        &self.authorities
    }
    pub fn authorities_mut(&mut self) -> &mut crate::timestamp::Authorities {
        &mut self.authorities
    }
    /// Whether every signature must carry a timestamp from a trusted TSA, whatever its
    /// key's bounds (a revoked key's signatures need one whenever TSAs are configured).
    pub fn require_timestamp(&self) -> bool {
        self.require_timestamp
    }
    pub fn set_require_timestamp(&mut self, on: bool) {
        self.require_timestamp = on;
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_pkcs8_and_sec1() {
        let k = SigningKey::generate();
        let pem = k.to_pkcs8_pem().unwrap();
        let k2 = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(k.public().pem(), k2.public().pem());
        let sec1 = p256::SecretKey::from_pkcs8_pem(&pem)
            .unwrap()
            .to_sec1_pem(LineEnding::LF)
            .unwrap();
        let k3 = SigningKey::from_pem(&sec1).unwrap();
        assert_eq!(k.public().pem(), k3.public().pem());
        let pubk = PublicKey::from_pem(k.public().pem(), "x").unwrap();
        assert_eq!(&pubk.pem, k.public().pem());
    }

    #[test]
    fn debug_never_shows_private_material() {
        let k = SigningKey::generate();
        let pem = k.to_pkcs8_pem().unwrap();
        let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&body));
    }

    #[test]
    fn bad_private_key_message_does_not_echo_input() {
        let secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETTOPSECRET\n-----END PRIVATE KEY-----\n";
        let e = SigningKey::from_pem(secret).unwrap_err().to_string();
        assert!(!e.contains("TOPSECRET"), "{e}");
    }

    #[test]
    fn keyids_differ_by_scheme_and_match() {
        let k = SigningKey::generate();
        let p = k.public();
        assert_eq!(p.keyid(KeyIdScheme::Empty), "");
        assert_eq!(p.keyid(KeyIdScheme::Sslib).len(), 64);
        assert!(p.keyid(KeyIdScheme::Ssh).starts_with("SHA256:"));
        for s in KeyIdScheme::ALL {
            assert_eq!(s.as_str().parse::<KeyIdScheme>().unwrap(), s);
            if s != KeyIdScheme::Empty {
                assert!(p.matches_keyid(&p.keyid(s)));
            }
        }
        assert!(!p.matches_keyid(""));
        let other = SigningKey::generate();
        assert!(!p.matches_keyid(&other.public().keyid(KeyIdScheme::Sslib)));
        assert!("nope".parse::<KeyIdScheme>().is_err());
    }
}
