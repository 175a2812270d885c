//! Local mode's stand-in for Pub/Sub: an in-process queue that delivers each
//! published message to the push handler as the same envelope, under the
//! same rules as a push subscription:
//!
//! - a 2xx answer acknowledges the message;
//! - any other answer (or none) redelivers it after an exponential backoff;
//! - after [`QueueOptions::max_attempts`] deliveries it becomes a dead letter,
//!   appended to a file that survives restarts (`catdog dead-letters`).
//!
//! Messages waiting in memory are lost if the process stops; their images
//! stay pending and ingestion's sweep of unpublished images publishes them
//! again, as it does for a publish to Pub/Sub that failed.

mod dead_letters;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{Semaphore, mpsc, watch};
use tower::ServiceExt as _;

use catdog_core::pubsub::{ImageMessage, PublishError, Publisher, PushEnvelope};

pub use dead_letters::{DeadLetter, DeadLetterError, DeadLetters};

/// How the queue delivers.
#[derive(Clone, Debug)]
pub struct QueueOptions {
    /// Deliveries of one message before it becomes a dead letter.
    pub max_attempts: u32,
    /// Wait before the second delivery; doubled for each one after.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Deliveries under way at once.
    pub concurrency: usize,
    /// Named in each envelope, as a push subscription would be.
    pub subscription: String,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            concurrency: std::thread::available_parallelism().map_or(1, usize::from),
            subscription: "projects/local/subscriptions/classify-image".to_owned(),
        }
    }
}

impl QueueOptions {
    /// The wait before delivery number `attempt + 1`: exponential between
    /// the two bounds, as Pub/Sub's push retry policy has it. A schedule, not
    /// a retry loop: each message carries its own count between deliveries.
    fn backoff(&self, attempt: u32) -> Duration {
        ExponentialBuilder::new()
            .with_min_delay(self.first_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_backoff)
    }
}

/// Counts since the queue started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueProgress {
    pub published: u64,
    pub acknowledged: u64,
    pub dead_lettered: u64,
}

impl QueueProgress {
    /// Messages published and not yet acknowledged or dead-lettered.
    pub fn outstanding(&self) -> u64 {
        self.published - self.acknowledged - self.dead_lettered
    }
}

struct Delivery {
    envelope: PushEnvelope,
    message: ImageMessage,
    /// Deliveries made so far.
    attempts: u32,
}

/// The queue. Publishing never waits for delivery.
pub struct LocalQueue {
    sender: mpsc::UnboundedSender<Delivery>,
    progress: watch::Sender<QueueProgress>,
    next_message_id: AtomicU64,
    subscription: String,
}

impl LocalQueue {
    /// Starts delivering each message as a push envelope to `POST route` on
    /// `push` (classify-image's push route, handed in so the queue does not
    /// need to know its consumer).
    pub fn start(
        push: Router,
        route: &'static str,
        options: QueueOptions,
        dead_letters: DeadLetters,
    ) -> Arc<Self> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (progress, _) = watch::channel(QueueProgress::default());
        let queue = Arc::new(Self {
            sender: sender.clone(),
            progress: progress.clone(),
            next_message_id: AtomicU64::new(1),
            subscription: options.subscription.clone(),
        });
        let worker = Worker {
            push,
            route,
            options: Arc::new(options),
            dead_letters: Arc::new(dead_letters),
            progress,
            redeliver: sender.downgrade(),
        };
        tokio::spawn(worker.run(receiver));
        queue
    }

    pub fn progress(&self) -> QueueProgress {
        *self.progress.borrow()
    }

    /// Follows the counts as they change.
    pub fn watch_progress(&self) -> watch::Receiver<QueueProgress> {
        self.progress.subscribe()
    }

    /// Resolves once every message published so far is acknowledged or dead.
    pub async fn drained(&self) {
        let mut progress = self.progress.subscribe();
        // The sender lives in `self`, so the channel cannot close under us.
        let _ = progress.wait_for(|p| p.outstanding() == 0).await;
    }
}

#[async_trait]
impl Publisher for LocalQueue {
    async fn publish(&self, message: &ImageMessage) -> Result<(), PublishError> {
        let id = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let envelope = PushEnvelope::wrap(message, &format!("local-{id}"), &self.subscription);
        self.progress.send_modify(|p| p.published += 1);
        let delivery = Delivery {
            envelope,
            message: message.clone(),
            attempts: 0,
        };
        self.sender.send(delivery).map_err(|_| {
            self.progress.send_modify(|p| p.published -= 1);
            PublishError::Failed("the local queue has stopped".to_owned())
        })
    }
}

struct Worker {
    push: Router,
    route: &'static str,
    options: Arc<QueueOptions>,
    dead_letters: Arc<DeadLetters>,
    progress: watch::Sender<QueueProgress>,
    /// Weak, so the queue stops once its owner and every pending retry are gone.
    redeliver: mpsc::WeakUnboundedSender<Delivery>,
}

impl Worker {
    async fn run(self, mut receiver: mpsc::UnboundedReceiver<Delivery>) {
        let permits = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let this = Arc::new(self);
        while let Some(delivery) = receiver.recv().await {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let this = Arc::clone(&this);
            tokio::spawn(async move {
                let answer = this.deliver(&delivery.envelope).await;
                drop(permit);
                this.settle(delivery, answer).await;
            });
        }
    }

    /// One delivery: `Ok` when acknowledged, else the status and what it said.
    async fn deliver(&self, envelope: &PushEnvelope) -> Result<(), (Option<u16>, String)> {
        let body = serde_json::to_vec(envelope).map_err(|e| (None, e.to_string()))?;
        let request = Request::post(self.route)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .map_err(|e| (None, e.to_string()))?;
        let response = match self.push.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Err((Some(status.as_u16()), detail))
    }

    async fn settle(&self, mut delivery: Delivery, answer: Result<(), (Option<u16>, String)>) {
        delivery.attempts += 1;
        let message_id = delivery.envelope.message.message_id.clone();
        let image_id = delivery.message.image_id;
        let (status, detail) = match answer {
            Ok(()) => {
                self.progress.send_modify(|p| p.acknowledged += 1);
                return;
            }
            Err(failure) => failure,
        };
        if delivery.attempts >= self.options.max_attempts {
            tracing::error!(%image_id, message_id, status, detail, attempts = delivery.attempts, "dead letter");
            let letter = DeadLetter::new(
                &delivery.envelope,
                delivery.message,
                delivery.attempts,
                status,
                detail,
            );
            if let Err(e) = self.dead_letters.append(&letter).await {
                tracing::error!(%image_id, error = %e, "could not keep the dead letter");
            }
            self.progress.send_modify(|p| p.dead_lettered += 1);
            return;
        }
        let wait = self.options.backoff(delivery.attempts);
        tracing::warn!(%image_id, message_id, status, detail, attempt = delivery.attempts, ?wait, "not acknowledged; will redeliver");
        tokio::time::sleep(wait).await;
        match self.redeliver.upgrade() {
            Some(sender) if sender.send(delivery).is_ok() => {}
            _ => {
                tracing::warn!(%image_id, "the queue stopped before redelivery; the sweep will publish it again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let options = QueueOptions {
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
            ..QueueOptions::default()
        };
        let waits: Vec<u64> = (1..=5).map(|a| options.backoff(a).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 10, 10]);
    }
}
