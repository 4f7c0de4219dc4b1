//! Witness cosignatures on log checkpoints: C2SP tlog-cosignature, `cosignature/v1`
//! with Ed25519 (signed-note algorithm 0x04).
//!
//! A witness is a party other than the store's operator. It keeps the last checkpoint
//! it cosigned, and cosigns a newer one only when the log's tiles prove the new tree
//! extends the old (append-only). An auditor who requires cosignatures from witnesses
//! they trust (`--witness-key … --min-witnesses N`) cannot be shown a history those
//! witnesses did not see: a store operator who forks the log has to fool every one.
//!
//! A cosignature is a note signature line `— <witness name> base64(key id || u64
//! time || Ed25519 signature)`, where the key id is `SHA-256(name || "\n" || 0x04 ||
//! public key)[:4]` and the signed message is
//! `cosignature/v1\ntime <time>\n<the checkpoint's note text>`. Keys are written like
//! signed-note keys: `<name>+<id>+base64(0x04 || public key)` for the verifier and
//! `PRIVATE+KEY+<name>+<id>+base64(0x04 || seed)` for the signer.
//!
//! Cosignatures are stored write-once beside the checkpoint, one per witness:
//! `log/cosignatures/<size :020>/<key id hex>`. They are not part of the checkpoint
//! file (which is written once, by the log key), so witnesses can come later.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use signed_note::{Note, Signature, VerifierList};

use crate::error::StoreError;
use crate::log::{self, LogVerifier, SignedCheckpoint};
use crate::{EvidenceStore, Retention};

/// The signed-note algorithm byte of an Ed25519 cosignature/v1 key.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Cosignature lines a checkpoint carries at most (a signed note holds 100 lines).
pub const MAX_COSIGNATURES: usize = 64;
/// How far in the future a cosignature's time may be (clock skew).
const FUTURE_SKEW_SECONDS: u64 = 300;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut k = vec![ALG_COSIGNATURE_V1];
    k.extend_from_slice(public.as_bytes());
    signed_note::key_id(name, &k)
}

/// The message a cosignature signs.
fn message(time: u64, text: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {time}\n").into_bytes();
    m.extend_from_slice(text);
    m
}

/// A witness's verifier key: `<name>+<id hex>+base64(0x04 || public key)`.
#[derive(Clone, PartialEq, Eq)]
pub struct WitnessVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl std::fmt::Debug for WitnessVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for WitnessVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut k = vec![ALG_COSIGNATURE_V1];
        k.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, b64().encode(k))
    }
}

impl WitnessVerifier {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "not a witness verifier key ({why}): expected NAME+ID+KEY from `custody log witness-keygen`"
            )
        };
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("three `+`-separated parts"));
        };
        if !signed_note::is_key_name_valid(name) {
            return Err(bad("the name"));
        }
        let id = u32::from_str_radix(id, 16)
            .ok()
            .filter(|_| id.len() == 8)
            .ok_or_else(|| bad("the key id is not 8 hex digits"))?;
        let key = b64()
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&ALG_COSIGNATURE_V1, k)) => k.try_into().map_err(|_| bad("key length"))?,
            Some((1, _)) => {
                return Err(bad(
                    "this is a log (Ed25519 signed-note) key, not a cosignature/v1 key",
                ));
            }
            _ => return Err(bad("unknown algorithm")),
        };
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 key"))?;
        if key_id(name, &key) != id {
            return Err(bad("its key id does not match its name and key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The time of `sig`, if it is this witness's cosignature of the note text `text`.
    fn verify(&self, text: &[u8], sig: &[u8]) -> Option<u64> {
        let (time, sig) = sig.split_first_chunk::<8>()?;
        let time = u64::from_be_bytes(*time);
        let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
        if time > i64::MAX as u64 {
            return None;
        }
        self.key
            .verify(&message(time, text), &sig)
            .ok()
            .map(|()| time)
    }
}

/// A witness's signing key.
pub struct WitnessSigner {
    key: SigningKey,
    verifier: WitnessVerifier,
}

impl std::fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WitnessSigner")
            .field(&self.verifier)
            .finish()
    }
}

impl WitnessSigner {
    /// A new witness key named `name`: (signing key text, verifier key).
    pub fn generate(name: &str) -> Result<(String, WitnessVerifier), String> {
        if !signed_note::is_key_name_valid(name) {
            return Err(format!(
                "`{name}` cannot name a witness: use a non-empty name without spaces or `+` (for example witness.example.org/audit)"
            ));
        }
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let id = key_id(name, &key.verifying_key());
        let mut k = vec![ALG_COSIGNATURE_V1];
        k.extend_from_slice(key.as_bytes());
        let text = format!("PRIVATE+KEY+{name}+{id:08x}+{}", b64().encode(k));
        let signer = Self::parse(&text)?;
        Ok((text, signer.verifier))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            || "not a witness signing key: make one with `custody log witness-keygen`".to_owned();
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let key = b64().decode(key).map_err(|_| bad())?;
        let seed: [u8; 32] = match key.split_first() {
            Some((&ALG_COSIGNATURE_V1, seed)) => seed.try_into().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        let key = SigningKey::from_bytes(&seed);
        let verifier = WitnessVerifier {
            name: name.to_owned(),
            id: key_id(name, &key.verifying_key()),
            key: key.verifying_key(),
        };
        if !signed_note::is_key_name_valid(name) || format!("{:08x}", verifier.id) != id {
            return Err(bad());
        }
        Ok(Self { key, verifier })
    }

    pub fn verifier(&self) -> &WitnessVerifier {
        &self.verifier
    }

    /// Cosigns the note text of a checkpoint at `time` (seconds since the epoch).
    pub fn cosign(&self, text: &[u8], time: u64) -> Result<Signature, String> {
        let sig = self.key.sign(&message(time, text));
        let mut bytes = time.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        Signature::new(self.verifier.name.clone(), self.verifier.id, bytes)
            .map_err(|e| format!("cosignature: {e}"))
    }
}

/// One witness's valid cosignature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cosignature {
    pub witness: String,
    /// When the witness cosigned (seconds since the epoch).
    pub time: u64,
}

/// The cosignatures on a checkpoint note, checked against the witnesses given.
#[derive(Debug, Clone, Default)]
pub struct Cosignatures {
    /// Valid cosignatures, one per witness at most.
    pub valid: Vec<Cosignature>,
    /// Cosignature lines that name a given witness but do not verify.
    pub invalid: Vec<String>,
}

/// Checks the cosignatures of a checkpoint note (already opened with the log key)
/// against `witnesses`. A line that names a witness and fails is reported, not
/// counted; lines of other keys are ignored.
pub fn check_cosignatures(
    note: &[u8],
    log_keys: &[LogVerifier],
    witnesses: &[WitnessVerifier],
    now: u64,
) -> Result<Cosignatures, String> {
    let parsed = Note::from_bytes(note).map_err(|e| format!("not a signed note: {e}"))?;
    let list = VerifierList::new(log_keys.iter().map(LogVerifier::boxed).collect());
    let (_, others) = parsed
        .verify(&list)
        .map_err(|e| format!("its signature does not verify: {e}"))?;
    let mut out = Cosignatures::default();
    for w in witnesses {
        let mut found = false;
        for sig in others
            .iter()
            .filter(|s| s.name() == w.name() && s.id() == w.key_id())
        {
            match w.verify(parsed.text(), sig.signature()) {
                Some(t) if t <= now.saturating_add(FUTURE_SKEW_SECONDS) => {
                    if !found {
                        out.valid.push(Cosignature {
                            witness: w.name().to_owned(),
                            time: t,
                        });
                    }
                    found = true;
                }
                Some(t) => out.invalid.push(format!(
                    "the cosignature of witness {} is dated {t}, in the future",
                    w.name()
                )),
                None => out.invalid.push(format!(
                    "the cosignature of witness {} does not verify: the checkpoint or the cosignature was altered",
                    w.name()
                )),
            }
        }
    }
    Ok(out)
}

fn cosignature_dir(size: u64) -> String {
    format!("cosignatures/{size:020}")
}

/// The checkpoint note of `cp` with every cosignature stored for it appended (at most
/// [`MAX_COSIGNATURES`], in key-id order; lines that are not note signatures are
/// skipped). What `custody export` puts in a bundle.
pub async fn cosigned_note<S: EvidenceStore + ?Sized>(
    store: &S,
    cp: &SignedCheckpoint,
) -> Result<Vec<u8>, StoreError> {
    let dir = cosignature_dir(cp.size);
    let mut names = store.list_log_dir(&dir).await?;
    names.sort();
    let mut note = cp.note.clone();
    let mut added = 0;
    for name in names {
        if added == MAX_COSIGNATURES {
            break;
        }
        let Some(line) = store.get_log_file(&format!("{dir}/{name}")).await? else {
            continue;
        };
        let Some(body) = line.strip_suffix(b"\n") else {
            continue;
        };
        if body.contains(&b'\n') || Signature::from_bytes(body).is_err() {
            continue;
        }
        if note.windows(line.len()).any(|w| w == line.as_slice()) {
            continue;
        }
        note.extend_from_slice(&line);
        added += 1;
    }
    Ok(note)
}

/// What a witness run did.
#[derive(Debug, Clone)]
pub struct WitnessOutcome {
    pub checkpoint: SignedCheckpoint,
    /// The size of the checkpoint the witness had cosigned before (0 when none).
    pub previous: u64,
    pub cosignature: Cosignature,
    /// The checkpoint with every stored cosignature, this one included.
    pub cosigned_note: Vec<u8>,
}

/// Witnesses the store's latest checkpoint: checks that it extends `state` (the last
/// checkpoint this witness cosigned, if any) through the store's tiles, cosigns it and
/// stores the cosignature write-once. A checkpoint that does not extend the state is a
/// fork or a rollback (`StoreError::LogInconsistent`) and is not cosigned. The caller
/// keeps the returned checkpoint's note as the new state.
pub async fn witness<S: EvidenceStore + ?Sized>(
    store: &S,
    log_keys: &[LogVerifier],
    signer: &WitnessSigner,
    state: Option<&[u8]>,
    retention: &Retention,
    now: u64,
) -> Result<WitnessOutcome, StoreError> {
    let latest = log::latest_checkpoint(store, log_keys)
        .await?
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "the log of {} has no checkpoint signed by the log key: nothing to witness",
                store.uri()
            ))
        })?;
    let mut previous = 0;
    if let Some(state) = state {
        let old = SignedCheckpoint::open(state, log_keys)
            .map_err(|e| StoreError::Invalid(format!("the witness state: {e}")))?;
        previous = old.size;
        if old.origin != latest.origin {
            return Err(StoreError::Invalid(format!(
                "the witness state is of log {}, the store's checkpoint of log {}",
                old.origin, latest.origin
            )));
        }
        log::check_consistent(store, &old, &latest).await?;
    }
    let text = Note::from_bytes(&latest.note)
        .map_err(|e| StoreError::Invalid(format!("checkpoint note: {e}")))?
        .text()
        .to_vec();
    let sig = signer.cosign(&text, now).map_err(StoreError::Invalid)?;
    let name = format!(
        "{}/{:08x}",
        cosignature_dir(latest.size),
        signer.verifier().key_id()
    );
    let mut time = now;
    if let Some(existing) = store
        .put_log_file(&name, &sig.to_bytes(), retention)
        .await?
    {
        // cosigned before (a rerun): the stored cosignature stands if it verifies
        let line = existing.strip_suffix(b"\n").unwrap_or(&existing);
        time = Signature::from_bytes(line)
            .ok()
            .filter(|s| s.name() == signer.verifier().name())
            .and_then(|s| signer.verifier().verify(&text, s.signature()))
            .ok_or_else(|| {
                StoreError::LogInconsistent(format!(
                    "log file {name} holds a cosignature that does not verify with this witness's key"
                ))
            })?;
    }
    let cosigned_note = cosigned_note(store, &latest).await?;
    Ok(WitnessOutcome {
        cosignature: Cosignature {
            witness: signer.verifier().name().to_owned(),
            time,
        },
        checkpoint: latest,
        previous,
        cosigned_note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_key() -> (log::LogSigner, LogVerifier) {
        let (s, v) = log::generate_log_key("example.org/log").unwrap();
        (log::LogSigner::parse(&s).unwrap(), v)
    }

    /// `note` with `sig` appended, checked against one log key and one witness at a
    /// fixed "now".
    fn check(
        note: &[u8],
        sig: &Signature,
        log_v: &LogVerifier,
        vkey: &WitnessVerifier,
    ) -> Cosignatures {
        let mut cosigned = note.to_vec();
        cosigned.extend_from_slice(&sig.to_bytes());
        check_cosignatures(
            &cosigned,
            std::slice::from_ref(log_v),
            std::slice::from_ref(vkey),
            1_800_000_000,
        )
        .unwrap()
    }

    #[test]
    fn keys_round_trip_and_reject_a_log_key() {
        let (skey, vkey) = WitnessSigner::generate("witness.example/w1").unwrap();
        let signer = WitnessSigner::parse(&skey).unwrap();
        assert_eq!(signer.verifier(), &vkey);
        assert_eq!(WitnessVerifier::parse(&vkey.to_string()).unwrap(), vkey);
        let (_, log_v) = log_key();
        let err = WitnessVerifier::parse(&log_v.to_string()).unwrap_err();
        assert!(err.contains("log (Ed25519 signed-note) key"), "{err}");
        // a key id that does not match
        let text = vkey.to_string();
        let mut parts: Vec<&str> = text.splitn(3, '+').collect();
        parts[1] = "00000000";
        let err = WitnessVerifier::parse(&parts.join("+")).unwrap_err();
        assert!(err.contains("key id"), "{err}");
    }

    #[test]
    fn a_cosignature_verifies_and_any_change_breaks_it() {
        let (log_signer, log_v) = log_key();
        let note = log::sign_checkpoint_for_test(&log_signer, 7, tlog_tiles::Hash([3; 32]));
        let (skey, vkey) = WitnessSigner::generate("witness.example/w1").unwrap();
        let w = WitnessSigner::parse(&skey).unwrap();
        let text = Note::from_bytes(&note).unwrap().text().to_vec();
        let sig = w.cosign(&text, 1_700_000_000).unwrap();
        let c = check(&note, &sig, &log_v, &vkey);
        assert_eq!(c.valid.len(), 1);
        assert_eq!(c.valid[0].time, 1_700_000_000);
        assert!(c.invalid.is_empty());
        let mut cosigned = note.clone();
        cosigned.extend_from_slice(&sig.to_bytes());
        // the log key alone still opens the cosigned note
        assert!(SignedCheckpoint::open(&cosigned, std::slice::from_ref(&log_v)).is_ok());

        // the cosignature moved to another checkpoint of the same log
        let other = log::sign_checkpoint_for_test(&log_signer, 8, tlog_tiles::Hash([3; 32]));
        let c = check(&other, &sig, &log_v, &vkey);
        assert!(c.valid.is_empty());
        assert_eq!(c.invalid.len(), 1, "{:?}", c.invalid);

        // a time changed in the line
        let mut raw = sig.signature().to_vec();
        raw[7] ^= 1;
        let forged = Signature::new(sig.name().to_owned(), sig.id(), raw).unwrap();
        let c = check(&note, &forged, &log_v, &vkey);
        assert!(c.valid.is_empty());

        // a cosignature from the future
        let late = w.cosign(&text, 1_900_000_000).unwrap();
        let c = check(&note, &late, &log_v, &vkey);
        assert!(c.valid.is_empty());
        assert!(c.invalid[0].contains("future"), "{:?}", c.invalid);

        // another witness's key does not count
        let (_, stranger) = WitnessSigner::generate("witness.example/w2").unwrap();
        let c = check_cosignatures(&cosigned, &[log_v], &[stranger], 1_800_000_000).unwrap();
        assert!(c.valid.is_empty() && c.invalid.is_empty());
    }
}
