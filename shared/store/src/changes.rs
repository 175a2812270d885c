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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A shared handle: clones see the same counter.
#[derive(Clone, Debug)]
pub struct ChangeFeed {
    inner: Arc<FeedState>,
}

struct FeedState {
    epoch: AtomicU64,
    live: AtomicBool,
    probe: Option<Probing>,
}

/// A probe and the bookkeeping that lets concurrent readers share one
/// asking of it (see [`ChangeFeed::epoch`]).
struct Probing {
    probe: Box<dyn ChangeProbe>,
    /// Held while the probe is asked: one asking at a time.
    asking: Mutex<()>,
    /// How many askings have begun; each takes the next number.
    begun: AtomicU64,
    /// The number of the last asking that is over, its change counted.
    ended: AtomicU64,
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
                probe: probe.map(|probe| Probing {
                    probe,
                    asking: Mutex::new(()),
                    begun: AtomicU64::new(0),
                    ended: AtomicU64::new(0),
                }),
            }),
        }
    }

    /// The current count of changes seen. Read it *before* reading the data
    /// a page is made of: a change committed while the page is rendered then
    /// leaves the page already out of date, never kept as current.
    ///
    /// With a probe, the epoch read counts every commit made before this
    /// call, yet concurrent callers share askings: an asking that began
    /// after this call did sees all this call must see, so a caller that
    /// waited while one ran and ended need not ask again. On SQLite an
    /// asking takes two file locks on the WAL index: 5–7% of the CPU of a
    /// cached listing under load, in a profile of `catdog serve`.
    pub fn epoch(&self) -> u64 {
        if let Some(probing) = &self.inner.probe {
            let begun_on_arrival = probing.begun.load(Ordering::Acquire);
            let _asking = probing
                .asking
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Askings are numbered as they begin, one at a time; one
            // numbered above what had begun when this call arrived began
            // after it.
            if probing.ended.load(Ordering::Acquire) <= begun_on_arrival {
                let number = probing.begun.fetch_add(1, Ordering::AcqRel) + 1;
                if probing.probe.changed_since_last_asked() {
                    self.changed();
                }
                probing.ended.store(number, Ordering::Release);
            }
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

    /// A file whose version a writer moves. The probe keeps, in order, the
    /// version at which each of its askings saw a change.
    struct Versioned {
        version: Arc<AtomicU64>,
        last: AtomicU64,
        changes_seen_at: Arc<Mutex<Vec<u64>>>,
    }

    impl ChangeProbe for Versioned {
        fn changed_since_last_asked(&self) -> bool {
            let version = self.version.load(Ordering::SeqCst);
            let changed = self.last.swap(version, Ordering::SeqCst) != version;
            if changed {
                self.changes_seen_at.lock().unwrap().push(version);
            }
            changed
        }
    }

    #[test]
    fn readers_sharing_askings_still_count_every_commit_made_before_they_asked() {
        let version = Arc::new(AtomicU64::new(0));
        let changes_seen_at = Arc::new(Mutex::new(Vec::new()));
        let feed = ChangeFeed::probing(Versioned {
            version: Arc::clone(&version),
            last: AtomicU64::new(0),
            changes_seen_at: Arc::clone(&changes_seen_at),
        });
        let writer = {
            let version = Arc::clone(&version);
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    version.fetch_add(1, Ordering::SeqCst);
                    std::thread::yield_now();
                }
            })
        };
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (feed, version, changes_seen_at) = (
                    feed.clone(),
                    Arc::clone(&version),
                    Arc::clone(&changes_seen_at),
                );
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let committed = version.load(Ordering::SeqCst);
                        // The epoch counts changes seen, one per asking that
                        // saw one, in order: the last counted must have been
                        // seen at `committed` or later.
                        let epoch = feed.epoch() as usize;
                        if committed > 0 {
                            let seen_at = changes_seen_at.lock().unwrap();
                            assert!(
                                epoch >= 1 && seen_at[epoch - 1] >= committed,
                                "epoch {epoch} misses version {committed}"
                            );
                        }
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        for reader in readers {
            reader.join().unwrap();
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
