//! The one retry loop of the gate's store and platform calls.

use std::future::Future;
use std::time::Duration;

/// Runs `f` up to `attempts` times, waiting `backoff` before the second try and twice
/// as long before each next one. `describe` says what an error was and whether asking
/// again could help (a 4xx will not change; a transport error or a 5xx may). The error
/// is `"{what} failed {n} times: {last}"`, or `"{what} failed: {error}"` when it was not
/// worth another try.
pub(crate) async fn retry<T, E, F, Fut>(
    what: &str,
    attempts: u32,
    backoff: Duration,
    f: F,
    describe: impl Fn(&E) -> (String, bool),
) -> Result<T, String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let attempts = attempts.max(1);
    let mut wait = backoff;
    let mut n = 0;
    loop {
        n += 1;
        let e = match f().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let (text, again) = describe(&e);
        tracing::warn!(attempt = n, attempts, error = %text, "{what} failed");
        if !again {
            return Err(format!("{what} failed: {text}"));
        }
        if n >= attempts {
            return Err(format!("{what} failed {attempts} times: {text}"));
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}
