//! What a reader learns of writes: a counter that moves whenever the
//! gallery may have changed, and whether it is being told at once.
//!
//! The read API keeps rendered listings and drops them when this counter
//! moves, so a cache can be on by default and still never show a listing
//! older than the last commit. Each store moves it its own way:
//!
//! - SQLite (local mode): after each of its own commits, and every read of
//!   the epoch first asks the file whether another connection committed
//!   (another process such as `catdog relabel`, or another store on the same
//!   file), through `PRAGMA data_version`: a few microseconds, no I/O.
//! - PostgreSQL (list-images, one instance of many): the database sends a
//!   notification in the same transaction as every change to the gallery's
//!   state row, which a dedicated connection listens for. While that
//!   connection is down the feed is not live: readers then keep pages only
//!   for a short bound, and the state row is polled instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A shared handle: clones see the same counter.
#[derive(Clone, Debug)]
pub struct ChangeFeed {
    inner: Arc<FeedState>,
}

struct FeedState {
    epoch: AtomicU64,
    live: AtomicBool,
    probe: Option<Box<dyn ChangeProbe>>,
}

impl std::fmt::Debug for FeedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedState")
            .field("epoch", &self.epoch)
            .field("live", &self.live)
            .field("probe", &self.probe.is_some())
            .finish()
    }
}

/// Asked on every read of the epoch, for changes no one announces.
pub trait ChangeProbe: Send + Sync + 'static {
    /// Whether the data changed since the last call (`true` when unsure).
    fn changed_since_last_asked(&self) -> bool;
}

impl ChangeFeed {
    /// A feed that starts live or not.
    pub fn new(live: bool) -> Self {
        Self::build(live, None)
    }

    /// A live feed that also asks `probe` on every read of the epoch.
    pub fn probing(probe: impl ChangeProbe) -> Self {
        Self::build(true, Some(Box::new(probe)))
    }

    fn build(live: bool, probe: Option<Box<dyn ChangeProbe>>) -> Self {
        Self {
            inner: Arc::new(FeedState {
                epoch: AtomicU64::new(0),
                live: AtomicBool::new(live),
                probe,
            }),
        }
    }

    /// The current count of changes seen. Read it *before* reading the data
    /// a page is made of: a change committed while the page is rendered then
    /// leaves the page already out of date, never kept as current.
    pub fn epoch(&self) -> u64 {
        if let Some(probe) = &self.inner.probe
            && probe.changed_since_last_asked()
        {
            self.changed();
        }
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// Whether every commit moves the epoch within moments. When not, a
    /// reader may only keep what it read for a bounded time.
    pub fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::Acquire)
    }

    /// Something changed (or may have: a lost notification counts too).
    pub fn changed(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The feed went up or down. Either way changes may have been missed in
    /// between, so the epoch moves too.
    pub fn set_live(&self, live: bool) {
        self.inner.live.store(live, Ordering::Release);
        self.changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_counter_and_going_up_or_down_counts_as_a_change() {
        let feed = ChangeFeed::new(false);
        let reader = feed.clone();
        let before = reader.epoch();
        feed.changed();
        assert_eq!(reader.epoch(), before + 1);
        assert!(!reader.is_live());
        feed.set_live(true);
        assert!(reader.is_live());
        assert_eq!(reader.epoch(), before + 2);
    }

    /// Says "changed" on the calls whose number is listed.
    struct Scripted {
        calls: std::sync::atomic::AtomicUsize,
        changed_on: &'static [usize],
    }

    impl ChangeProbe for Scripted {
        fn changed_since_last_asked(&self) -> bool {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.changed_on.contains(&call)
        }
    }

    #[test]
    fn a_probe_is_asked_on_every_read_and_moves_the_epoch_when_it_saw_a_change() {
        let feed = ChangeFeed::probing(Scripted {
            calls: Default::default(),
            changed_on: &[2, 3],
        });
        let first = feed.epoch();
        assert_eq!(feed.epoch(), first + 1);
        assert_eq!(feed.epoch(), first + 2);
        assert_eq!(feed.epoch(), first + 2);
        assert!(feed.is_live());
    }
}
