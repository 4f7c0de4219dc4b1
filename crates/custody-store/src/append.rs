//! Appending a signed record to its chain: read the head, link, sign, store; when a
//! concurrent writer took the position first, read the new head and sign again.

use std::future::Future;

use custody_evidence::{
    ChainLink, Digest, KeyIdScheme, RecordInfo, ResourceDescriptor, Signer, Statement,
    sign_statement,
};

use crate::{EvidenceStore, PutOutcome, Retention, StoreError};

/// How many times a record is re-linked after losing a race for a chain position. A
/// chain normally has one writer (one job); this bounds the pathological case.
const MAX_ATTEMPTS: u32 = 100;

/// What to sign, without its chain link (the store decides that).
#[derive(Debug, Clone)]
pub struct Draft {
    pub subject: Vec<ResourceDescriptor>,
    pub predicate_type: String,
    pub predicate: serde_json::Map<String, serde_json::Value>,
    pub record: RecordInfo,
}

/// The stored record.
#[derive(Debug, Clone)]
pub struct Appended {
    pub outcome: PutOutcome,
    pub envelope: Vec<u8>,
    pub link: ChainLink,
}

/// A failed append: the error, and the signed envelope when the store may hold it
/// (its put was sent and failed on the way, so the write may have happened, and only
/// its answer was lost). Writing that same envelope again is always safe; signing the
/// record anew would store it twice if the first write did land.
#[derive(Debug)]
pub struct AppendFailure {
    pub error: StoreError,
    pub in_doubt: Option<Vec<u8>>,
}

/// Links `draft` to the head of `chain_id`, signs and stores it.
pub async fn append_record<S: EvidenceStore>(
    store: &S,
    key: &dyn Signer,
    scheme: KeyIdScheme,
    chain_id: &str,
    draft: Draft,
    retention: &Retention,
) -> Result<Appended, StoreError> {
    append_or_doubt(store, key, scheme, chain_id, draft, retention)
        .await
        .map_err(|f| f.error)
}

/// [`append_record`], keeping the envelope whose write is in doubt when it fails.
pub async fn append_or_doubt<S: EvidenceStore>(
    store: &S,
    key: &dyn Signer,
    scheme: KeyIdScheme,
    chain_id: &str,
    mut draft: Draft,
    retention: &Retention,
) -> Result<Appended, AppendFailure> {
    let sure = |error| AppendFailure {
        error,
        in_doubt: None,
    };
    let mut last_err = None;
    for attempt in 0..MAX_ATTEMPTS {
        let head = store.chain_head(chain_id).await.map_err(sure)?;
        if attempt == 0
            && let Some((_, d)) = head
        {
            repair_head(store, &d, retention).await;
        }
        let link = ChainLink {
            id: chain_id.to_owned(),
            sequence: head.map_or(0, |(seq, _)| seq + 1),
            previous: head.map(|(_, d): (u64, Digest)| d),
        };
        draft.record.chain = link.clone();
        let statement = Statement::new(
            draft.subject.clone(),
            draft.predicate_type.clone(),
            draft.predicate.clone(),
            &draft.record,
        )
        .map_err(|e| sure(StoreError::Invalid(e.to_string())))?;
        let envelope = sign_statement(&statement, key, scheme)
            .map_err(|e| sure(StoreError::Invalid(e.to_string())))?
            .to_vec();
        match store.put_record(&envelope, retention).await {
            Ok(outcome) => {
                return Ok(Appended {
                    outcome,
                    envelope,
                    link,
                });
            }
            Err(e @ (StoreError::ChainConflict { .. } | StoreError::ChainBroken { .. })) => {
                last_err = Some(e);
                backoff(attempt).await;
            }
            Err(error) => {
                let in_doubt = error.is_transient().then_some(envelope);
                return Err(AppendFailure { error, in_doubt });
            }
        }
    }
    Err(sure(last_err.unwrap_or_else(|| {
        StoreError::Invalid("chain append did not run".into())
    })))
}

/// The chain head's writer may have been killed after its chain entry and before its
/// index pointers or its log index: the record is stored and linked, but no query finds
/// it. Storing its envelope again (every step of a put is idempotent) writes what is
/// missing. Best effort: a head that cannot be repaired here (a spool, whose records
/// the target store sequences; a store error) is left for `custody log verify` to name.
async fn repair_head<S: EvidenceStore>(store: &S, head: &Digest, retention: &Retention) {
    if !matches!(crate::log::log_index(store, head).await, Ok(None)) {
        return;
    }
    if let Ok(envelope) = store.get_object(head).await {
        let _ = store.put_record(&envelope, retention).await;
    }
}

/// A short randomized pause so racing writers stop colliding. The jitter comes from
/// the clock and the process id; it only spreads retries, it guards nothing.
fn backoff(attempt: u32) -> Pause {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(nanos ^ std::process::id().rotate_left(16));
    let cap_ms = 2u64 << attempt.min(5);
    Pause::new(std::time::Duration::from_micros(seed % (cap_ms * 1000)))
}

/// What a [`Pause`] shares with its helper thread: done, and the task to wake.
type PauseState = std::sync::Arc<std::sync::Mutex<(bool, Option<std::task::Waker>)>>;

/// An async pause that works on any executor (the store runs under tokio, the fuzz
/// targets' and tests' `block_on` have no timer) and never blocks the executor's
/// thread: a helper thread sleeps and wakes the task. Used only when writers collide.
struct Pause {
    duration: std::time::Duration,
    state: Option<PauseState>,
}

impl Pause {
    fn new(duration: std::time::Duration) -> Self {
        Self {
            duration,
            state: None,
        }
    }
}

impl Future for Pause {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let duration = self.duration;
        let state = self.state.get_or_insert_with(|| {
            let state: PauseState = std::sync::Arc::default();
            let wake = std::sync::Arc::clone(&state);
            std::thread::spawn(move || {
                std::thread::sleep(duration);
                let mut s = wake
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                s.0 = true;
                if let Some(w) = s.1.take() {
                    w.wake();
                }
            });
            state
        });
        let mut s = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.0 {
            std::task::Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            std::task::Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {

    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// The pause finishes on an executor without a timer, waking its task instead of
    /// blocking the thread: the first poll returns at once.
    #[test]
    fn a_pause_wakes_its_task_on_any_executor() {
        let mut pause = std::pin::pin!(super::Pause::new(std::time::Duration::from_millis(5)));
        let woken = Arc::new(Unpark(std::thread::current()));
        let waker = Waker::from(woken);
        let mut cx = Context::from_waker(&waker);
        assert!(pause.as_mut().poll(&mut cx).is_pending());
        let mut polls = 1;
        while pause.as_mut().poll(&mut cx).is_pending() {
            std::thread::park();
            polls += 1;
        }
        assert!(
            polls >= 2,
            "done only after the helper thread woke the task"
        );
        assert!(matches!(pause.as_mut().poll(&mut cx), Poll::Ready(())));
    }
}
