//! Callback delivery (mlnode-api §5): each replica streams its own POSTs in order.
//!
//! HTTP < 400 is success. A failure retries the same payload with backoff 1 s, 2 s, 4 s …
//! capped at 30 s, up to 10 attempts, then the payload is dropped. Each POST has a 10 s
//! timeout. All durations are simulated (scaled by the node's clock).

use serde_json::Value;
use tokio::sync::mpsc;

use crate::clock::SimClock;

/// `POC_CALLBACK_MAX_RETRIES`.
pub const MAX_ATTEMPTS: u32 = 10;
/// `POC_CALLBACK_QUEUE_SIZE`.
pub const QUEUE_SIZE: usize = 10_000;

/// One POST to make.
#[derive(Debug, Clone)]
pub struct Callback {
    /// Full URL: `{url}/generated` or `{url}/validated`.
    pub url: String,
    pub body: Value,
}

/// A replica's ordered callback stream.
#[derive(Debug, Clone)]
pub struct CallbackSink {
    tx: mpsc::Sender<Callback>,
}

impl CallbackSink {
    /// Start the delivery task. Must be called inside a tokio runtime.
    pub fn spawn(http: reqwest::Client, clock: SimClock) -> Self {
        let (tx, mut rx) = mpsc::channel::<Callback>(QUEUE_SIZE);
        tokio::spawn(async move {
            while let Some(cb) = rx.recv().await {
                deliver(&http, &clock, &cb).await;
            }
        });
        CallbackSink { tx }
    }

    /// Queue a callback; a full queue drops it (with a warning), as the replica does.
    pub fn send(&self, cb: Callback) {
        if let Err(e) = self.tx.try_send(cb) {
            tracing::warn!(error = %e, "callback queue full or closed; dropping callback");
        }
    }
}

async fn deliver(http: &reqwest::Client, clock: &SimClock, cb: &Callback) {
    let mut backoff = 1.0;
    for attempt in 1..=MAX_ATTEMPTS {
        let res = http
            .post(&cb.url)
            .timeout(clock.network_timeout(10.0))
            .json(&cb.body)
            .send()
            .await;
        match res {
            Ok(r) if r.status().as_u16() < 400 => return,
            Ok(r) => {
                tracing::debug!(url = %cb.url, status = %r.status(), attempt, "callback rejected")
            }
            Err(e) => tracing::debug!(url = %cb.url, error = %e, attempt, "callback failed"),
        }
        if attempt < MAX_ATTEMPTS {
            clock.sleep(backoff).await;
            backoff = (backoff * 2.0).min(30.0);
        }
    }
    tracing::warn!(url = %cb.url, "callback dropped after {MAX_ATTEMPTS} attempts");
}
