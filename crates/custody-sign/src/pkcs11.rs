//! PKCS#11 (an HSM, a smart card, SoftHSM): a P-256 key named by an RFC 7512 URI,
//! through the `cryptoki` crate.
//!
//! `pkcs11:token=LABEL;object=LABEL[;id=%01]?module-path=/path/to/module.so`
//!
//! The PIN comes from `CUSTODY_PKCS11_PIN` (preferred: masked like any CI secret), or the
//! URI's `pin-source` (a file) or `pin-value`, which never appear in a message; the
//! module from `module-path`, else `CUSTODY_PKCS11_MODULE`. The token signs `CKM_ECDSA`
//! over the SHA-256 of the message and answers `r || s`, which is DER-encoded here. The
//! public key is read from the token's public-key object with the same label or id.
//!
//! PKCS#11 modules are shared libraries, loaded at run time: this module is built for
//! dynamically linked targets only. The static musl release binaries refuse `pkcs11:`
//! keys with a message that says so.

use std::fmt;
use std::path::PathBuf;

use crate::SignerError;

#[cfg(not(target_env = "musl"))]
pub use token::Pkcs11Signer;

/// A parsed `pkcs11:` URI. Its `Display` never shows a PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11KeyRef {
    pub token: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub module_path: Option<PathBuf>,
    pin_value: Option<String>,
    pub pin_source: Option<PathBuf>,
}

impl fmt::Debug for Pkcs11KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11KeyRef({self})")
    }
}

impl fmt::Display for Pkcs11KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = Vec::new();
        if let Some(t) = &self.token {
            path.push(format!("token={}", encode(t.as_bytes())));
        }
        if let Some(o) = &self.object {
            path.push(format!("object={}", encode(o.as_bytes())));
        }
        if let Some(id) = &self.id {
            path.push(format!(
                "id={}",
                id.iter().map(|b| format!("%{b:02x}")).collect::<String>()
            ));
        }
        write!(f, "pkcs11:{}", path.join(";"))
    }
}

fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

impl Pkcs11KeyRef {
    /// Parses a whole `pkcs11:` URI (RFC 7512).
    pub fn parse(uri: &str) -> Result<Self, SignerError> {
        let malformed = |reason: String| SignerError::Malformed {
            key: "pkcs11:…".into(),
            reason,
        };
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| malformed("not a pkcs11: URI".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut out = Self {
            token: None,
            object: None,
            id: None,
            module_path: None,
            pin_value: None,
            pin_source: None,
        };
        let text = |name: &str, v: &str| {
            decode(v)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| malformed(format!("`{name}` is not percent-encoded UTF-8")))
        };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| malformed(format!("`{attr}` is not NAME=VALUE")))?;
            match name {
                "token" => out.token = Some(text(name, value)?),
                "object" => out.object = Some(text(name, value)?),
                "id" => {
                    out.id = Some(
                        decode(value)
                            .ok_or_else(|| malformed("`id` is not percent-encoded".into()))?,
                    );
                }
                // RFC 7512 attributes that narrow the search; accepted, not needed
                "manufacturer"
                | "model"
                | "serial"
                | "slot-id"
                | "slot-description"
                | "slot-manufacturer"
                | "library-manufacturer"
                | "library-description"
                | "library-version" => {}
                "type" if value == "private" || value == "public" => {}
                other => return Err(malformed(format!("unknown path attribute `{other}`"))),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| malformed("a query attribute is not NAME=VALUE".into()))?;
            match name {
                "module-path" => out.module_path = Some(PathBuf::from(text(name, value)?)),
                "pin-value" => out.pin_value = Some(text(name, value)?),
                "pin-source" => {
                    let v = text(name, value)?;
                    let v = v.strip_prefix("file:").unwrap_or(&v).to_owned();
                    out.pin_source = Some(PathBuf::from(v));
                }
                "module-name" => {}
                other => return Err(malformed(format!("unknown query attribute `{other}`"))),
            }
        }
        if out.object.is_none() && out.id.is_none() {
            return Err(malformed(
                "name the key with `object=LABEL` or `id=…`".into(),
            ));
        }
        Ok(out)
    }
}

/// What the environment adds to a `pkcs11:` URI.
#[derive(Default, Clone)]
pub struct Pkcs11Options {
    /// `CUSTODY_PKCS11_MODULE`, when the URI has no `module-path`.
    pub module: Option<PathBuf>,
    /// `CUSTODY_PKCS11_PIN`: wins over the URI's PIN.
    pub pin: Option<String>,
}

impl fmt::Debug for Pkcs11Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Options")
            .field("module", &self.module)
            .field("pin", &self.pin.as_ref().map(|_| "****"))
            .finish()
    }
}

/// The signer itself: only where shared libraries can be loaded.
#[cfg(not(target_env = "musl"))]
mod token {
    use std::fmt;
    use std::sync::Mutex;

    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
    use cryptoki::session::{Session, UserType};
    use cryptoki::types::AuthPin;
    use custody_evidence::{Digest, PublicKey, SignError, Signer};

    use super::{Pkcs11KeyRef, Pkcs11Options};
    use crate::SignerError;

    /// The DER of the P-256 curve's OID, as `CKA_EC_PARAMS` holds it.
    const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

    /// A P-256 key on a PKCS#11 token as a [`Signer`].
    pub struct Pkcs11Signer {
        name: String,
        public: PublicKey,
        key: ObjectHandle,
        /// A session is used by one thread at a time.
        session: Mutex<Session>,
        _context: Pkcs11,
    }

    impl fmt::Debug for Pkcs11Signer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Pkcs11Signer")
                .field("key", &self.name)
                .field("public", &self.public)
                .finish_non_exhaustive()
        }
    }

    impl Pkcs11Signer {
        /// Loads the module, logs in, finds the key pair and signs a probe.
        pub fn open(key: &Pkcs11KeyRef, opts: &Pkcs11Options) -> Result<Self, SignerError> {
            let name = key.to_string();
            let fail = |reason: String| {
                SignerError::Key(SignError {
                    key: name.clone(),
                    reason,
                })
            };
            let module = key
                .module_path
                .clone()
                .or_else(|| opts.module.clone())
                .ok_or_else(|| {
                    fail("no PKCS#11 module: add ?module-path=/path/to/module.so or set CUSTODY_PKCS11_MODULE".into())
                })?;
            let pin = match (&opts.pin, &key.pin_value, &key.pin_source) {
                (Some(p), _, _) | (None, Some(p), _) => p.clone(),
                (None, None, Some(file)) => std::fs::read_to_string(file)
                    .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                    .map_err(|e| fail(format!("reading the PIN from {}: {e}", file.display())))?,
                (None, None, None) => {
                    return Err(fail(
                        "no PIN: set CUSTODY_PKCS11_PIN (or pin-source in the URI)".into(),
                    ));
                }
            };
            let context = Pkcs11::new(&module).map_err(|e| {
                fail(format!(
                    "cannot load the PKCS#11 module {}: {e}",
                    module.display()
                ))
            })?;
            match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
                Ok(())
                | Err(cryptoki::error::Error::Pkcs11(
                    cryptoki::error::RvError::CryptokiAlreadyInitialized,
                    _,
                )) => {}
                Err(e) => return Err(fail(format!("initializing the module: {e}"))),
            }
            let slots = context
                .get_slots_with_token()
                .map_err(|e| fail(format!("listing the tokens: {e}")))?;
            let slot = slots
                .into_iter()
                .find(|s| match &key.token {
                    None => true,
                    Some(label) => context
                        .get_token_info(*s)
                        .is_ok_and(|i| i.label().trim_end() == label),
                })
                .ok_or_else(|| {
                    fail(format!(
                        "no token {} in the module",
                        key.token.as_deref().unwrap_or("at all")
                    ))
                })?;
            let session = context
                .open_ro_session(slot)
                .map_err(|e| fail(format!("opening a session: {e}")))?;
            session
                .login(UserType::User, Some(&AuthPin::new(pin.into())))
                .map_err(|e| fail(format!("logging in to the token: {e}")))?;
            let find = |class: ObjectClass| -> Result<ObjectHandle, SignerError> {
                let mut template = vec![Attribute::Class(class), Attribute::KeyType(KeyType::EC)];
                if let Some(label) = &key.object {
                    template.push(Attribute::Label(label.as_bytes().to_vec()));
                }
                if let Some(id) = &key.id {
                    template.push(Attribute::Id(id.clone()));
                }
                let found = session
                    .find_objects(&template)
                    .map_err(|e| fail(format!("searching the token: {e}")))?;
                let what = if class == ObjectClass::PRIVATE_KEY {
                    "private"
                } else {
                    "public"
                };
                match found.as_slice() {
                    [one] => Ok(*one),
                    [] => Err(fail(format!("no EC {what} key with that label or id"))),
                    _ => Err(fail(format!(
                        "{} EC {what} keys match: add `id=` to the URI",
                        found.len()
                    ))),
                }
            };
            let private = find(ObjectClass::PRIVATE_KEY)?;
            let public_handle = find(ObjectClass::PUBLIC_KEY)?;
            let attrs = session
                .get_attributes(
                    public_handle,
                    &[AttributeType::EcParams, AttributeType::EcPoint],
                )
                .map_err(|e| fail(format!("reading the public key: {e}")))?;
            let (mut params, mut point) = (None, None);
            for a in attrs {
                match a {
                    Attribute::EcParams(p) => params = Some(p),
                    Attribute::EcPoint(p) => point = Some(p),
                    _ => {}
                }
            }
            if params.as_deref() != Some(P256_PARAMS) {
                return Err(fail(
                    "the key is not on curve P-256 (Custody signs with ECDSA P-256)".into(),
                ));
            }
            // CKA_EC_POINT is the point wrapped in a DER OCTET STRING (some modules omit it)
            let point = point.unwrap_or_default();
            let sec1 = match point.as_slice() {
                [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
                raw => raw,
            };
            let public = PublicKey::from_sec1(sec1, name.clone())
                .map_err(|e| fail(format!("the token's public key: {e}")))?;
            let signer = Self {
                name,
                public,
                key: private,
                session: Mutex::new(session),
                _context: context,
            };
            signer.sign(b"custody signer probe v1")?;
            Ok(signer)
        }
    }

    impl Signer for Pkcs11Signer {
        fn public(&self) -> &PublicKey {
            &self.public
        }

        fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
            let fail = |reason: String| SignError {
                key: self.name.clone(),
                reason,
            };
            let digest = Digest::of(msg);
            let raw = {
                let session = self
                    .session
                    .lock()
                    .map_err(|_| fail("the token session is poisoned".into()))?;
                session
                    .sign(&Mechanism::Ecdsa, self.key, digest.as_bytes())
                    .map_err(|e| fail(format!("the token refused to sign: {e}")))?
            };
            let der = custody_evidence::keys::raw_signature_to_der(&raw).ok_or_else(|| {
                fail(format!(
                    "the token answered a {}-byte signature, not r || s",
                    raw.len()
                ))
            })?;
            if !self.public.verify(msg, &der) {
                return Err(fail(
                    "the token's signature does not verify with its public key".into(),
                ));
            }
            Ok(der)
        }

        fn name(&self) -> String {
            self.name.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_print_without_the_pin() {
        let k = Pkcs11KeyRef::parse(
            "pkcs11:token=Custody%20CI;object=evidence;id=%01%a2?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=123456",
        )
        .unwrap();
        assert_eq!(k.token.as_deref(), Some("Custody CI"));
        assert_eq!(k.object.as_deref(), Some("evidence"));
        assert_eq!(k.id.as_deref(), Some(&[0x01, 0xa2][..]));
        assert_eq!(
            k.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        let shown = format!("{k} {k:?}");
        assert!(!shown.contains("123456"), "{shown}");
        assert_eq!(
            k.to_string(),
            "pkcs11:token=Custody%20CI;object=evidence;id=%01%a2"
        );
    }

    #[test]
    fn bad_uris_are_refused_without_echoing_them() {
        for bad in [
            "pkcs11:token=t",
            "pkcs11:object=x;color=red",
            "pkcs11:object=x?pin-value=secret&what=1",
            "pkcs11:object=%zz",
        ] {
            let e = Pkcs11KeyRef::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
