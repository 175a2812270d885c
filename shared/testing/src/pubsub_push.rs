//! The push half of a Pub/Sub subscription, for tests in the cloud shape:
//! every message the loopback Publisher server received is POSTed to an
//! endpoint as a push envelope, as Pub/Sub does. A 2xx acknowledges it; any
//! other answer (or none) redelivers it with exponential backoff, under the
//! same message id, until `max_attempts`, after which it is dead-lettered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::pubsub_server::PubsubServer;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushCounts {
    /// Messages taken from the server so far.
    pub messages: u64,
    /// Deliveries made (redeliveries included).
    pub deliveries: u64,
    pub acknowledged: u64,
    pub dead_lettered: u64,
}

impl PushCounts {
    pub fn outstanding(&self) -> u64 {
        self.messages - self.acknowledged - self.dead_lettered
    }
}

pub struct PushSubscription {
    counts: Arc<Mutex<PushCounts>>,
    task: tokio::task::JoinHandle<()>,
}

pub struct PushOptions {
    pub endpoint: String,
    pub subscription: String,
    pub max_attempts: u32,
    pub first_backoff: Duration,
}

impl PushSubscription {
    /// Starts pushing what `server` receives to `options.endpoint`.
    pub fn start(server: Arc<PubsubServer>, options: PushOptions) -> Self {
        let counts = Arc::new(Mutex::new(PushCounts::default()));
        let options = Arc::new(options);
        let task = tokio::spawn({
            let counts = Arc::clone(&counts);
            async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("an HTTP client");
                let mut taken = 0;
                loop {
                    let received = server.received();
                    for (index, message) in received.into_iter().enumerate().skip(taken) {
                        counts.lock().unwrap().messages += 1;
                        let body = serde_json::json!({
                            "message": {
                                "data": STANDARD.encode(&message.message.data),
                                "attributes": message.message.attributes.iter().collect::<HashMap<_, _>>(),
                                "messageId": index.to_string(),
                                "message_id": index.to_string(),
                                "publishTime": "2026-11-25T00:00:00.000Z",
                                "publish_time": "2026-11-25T00:00:00.000Z",
                            },
                            "subscription": options.subscription,
                        });
                        tokio::spawn(deliver(
                            client.clone(),
                            Arc::clone(&options),
                            body,
                            Arc::clone(&counts),
                        ));
                        taken = index + 1;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Self { counts, task }
    }

    pub fn counts(&self) -> PushCounts {
        self.counts.lock().unwrap().clone()
    }
}

impl Drop for PushSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn deliver(
    client: reqwest::Client,
    options: Arc<PushOptions>,
    body: serde_json::Value,
    counts: Arc<Mutex<PushCounts>>,
) {
    let mut wait = options.first_backoff;
    for attempt in 1..=options.max_attempts {
        counts.lock().unwrap().deliveries += 1;
        let answer = client.post(&options.endpoint).json(&body).send().await;
        match answer {
            Ok(response) if response.status().is_success() => {
                counts.lock().unwrap().acknowledged += 1;
                return;
            }
            Ok(response) => eprintln!(
                "push attempt {attempt}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ),
            Err(e) => eprintln!("push attempt {attempt}: {e}"),
        }
        if attempt < options.max_attempts {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    counts.lock().unwrap().dead_lettered += 1;
}
