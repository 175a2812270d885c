//! PostgreSQL's side of the [`ChangeFeed`]: one connection per process,
//! outside the pool, that `LISTEN`s for the notification migration 0006's
//! trigger sends with every committed change to the gallery.
//!
//! The connection can break (a restart, a failover, a proxy cutting idle
//! connections) and notifications sent meanwhile are lost, so:
//! - going up or down moves the epoch (see [`ChangeFeed::set_live`]);
//! - while down, the gallery's state row is read through the pool every
//!   [`POLL_WHILE_DOWN`] and any change moves the epoch, and readers keep
//!   pages only for their own bound;
//! - a heartbeat notices a connection that hangs without breaking: a
//!   network stall freezes the notifications without an error, and until it
//!   is noticed every kept page would be served as fresh, so it is short.

use std::future::poll_fn;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use deadpool_postgres::Pool;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::ChangeFeed;

/// The channel migration 0006's trigger notifies.
const CHANNEL: &str = "catdog_gallery";

/// How the listening connection shows in `pg_stat_activity`.
pub(crate) const APPLICATION_NAME: &str = "catdog-listings";

/// How often a live connection is asked whether it still answers, and how
/// long it has to answer (at most the store's own timeout). Together they
/// bound how long a stalled connection is trusted: about 3 s, after which
/// readers keep pages only for their own bound. One `SELECT 1` every 2 s per
/// process costs the database nothing measurable.
const HEARTBEAT: Duration = Duration::from_secs(2);
const HEARTBEAT_ANSWER: Duration = Duration::from_secs(1);

/// Reconnection waits double from the first to the last, and start again
/// from the first after a connection that went live.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
const RECONNECT: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(FIRST_RETRY)
    .with_max_delay(LAST_RETRY)
    .with_factor(2.0)
    .without_max_times();

/// How often the state row is read while the connection is down.
const POLL_WHILE_DOWN: Duration = Duration::from_millis(250);

/// Starts listening in the background; the feed goes live once `LISTEN` has
/// been answered. Runs for as long as the process does.
pub(crate) fn spawn(
    mut config: tokio_postgres::Config,
    pool: Pool,
    timeout: Duration,
    feed: ChangeFeed,
) {
    config.application_name(APPLICATION_NAME);
    // The options carry a statement timeout, which LISTEN and the heartbeat
    // never come near; keepalives find a peer that vanished without a word.
    config.keepalives_idle(Duration::from_secs(30));
    tokio::spawn(async move {
        // The wait between connections is not backon's `retry`: the listener
        // runs for ever, and polls the state row while it waits.
        let mut waits = RECONNECT.build();
        let mut last_state = None;
        loop {
            let outcome = listen(&config, timeout, &feed).await;
            if outcome.is_ok() {
                waits = RECONNECT.build();
            }
            let retry = waits.next().unwrap_or(LAST_RETRY);
            if let Err(error) = outcome {
                tracing::warn!(
                    error = %error,
                    retry_in_ms = retry.as_millis() as u64,
                    "the listings' change notifications are down; polling the gallery state",
                );
            }
            let until = tokio::time::Instant::now() + retry;
            while tokio::time::Instant::now() < until {
                match read_state(&pool, timeout).await {
                    Some(state) if last_state.as_ref() != Some(&state) => {
                        if last_state.is_some() {
                            feed.changed();
                        }
                        last_state = Some(state);
                    }
                    Some(_) => {}
                    // Unreadable: the readers' own time bound covers it.
                    None => feed.changed(),
                }
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep(POLL_WHILE_DOWN.min(left)).await;
            }
        }
    });
}

/// One listening connection, from connecting until it breaks. `Ok` when it
/// was live and then ended; `Err` when it failed before or while going live
/// or its heartbeat went unanswered.
async fn listen(
    config: &tokio_postgres::Config,
    timeout: Duration,
    feed: &ChangeFeed,
) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let driven = feed.clone();
    // The connection must be polled for the client's queries to be answered;
    // its notifications come out of the same poll.
    let mut driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => driven.changed(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("the connection broke: {e}"),
                None => return "the connection closed".to_owned(),
            }
        }
    });
    let abort_driver = AbortOnDrop(driver.abort_handle());

    match tokio::time::timeout(timeout, client.batch_execute(&format!("LISTEN {CHANNEL}"))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("LISTEN failed: {e}")),
        Err(_) => {
            return Err(format!(
                "LISTEN unanswered after {} ms",
                timeout.as_millis()
            ));
        }
    }
    feed.set_live(true);
    tracing::info!("listening for the listings' change notifications");
    let ended = loop {
        tokio::select! {
            ended = &mut driver => break ended.unwrap_or_else(|e| e.to_string()),
            () = tokio::time::sleep(HEARTBEAT) => {
                let within = HEARTBEAT_ANSWER.min(timeout);
                let answered = tokio::time::timeout(within, client.simple_query("SELECT 1")).await;
                if !matches!(answered, Ok(Ok(_))) {
                    feed.set_live(false);
                    return Err("the heartbeat went unanswered".to_owned());
                }
            }
        }
    };
    drop(abort_driver);
    feed.set_live(false);
    tracing::warn!(reason = %ended, "the listings' change notifications stopped; reconnecting");
    Ok(())
}

/// The gallery's state row as text, minus the lease (as the trigger sees
/// it), or `None` when it cannot be read in time.
async fn read_state(pool: &Pool, timeout: Duration) -> Option<String> {
    let read = async {
        let client = pool.get().await.ok()?;
        let row = client
            .query_one(
                "SELECT (to_jsonb(g) - 'lease_holder' - 'lease_until')::text \
                 FROM gallery_state g WHERE id = 1",
                &[],
            )
            .await
            .ok()?;
        row.try_get::<_, String>(0).ok()
    };
    tokio::time::timeout(timeout, read).await.ok().flatten()
}

/// Stops the connection's driver when the listening ends, however it ends.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
