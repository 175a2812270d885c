//! First pages of the listings, kept rendered until the gallery changes.
//!
//! Every visitor of the gallery asks for the same few first pages, and each
//! answer costs a database round trip (100 to 250 µs of PostgreSQL's time in
//! the benchmarks, depending on the machine) plus serialising the page. So
//! a rendered page and its ETag are kept, and dropped the moment the store's
//! [`ChangeFeed`] says the gallery changed: a listing read here is never
//! older than the last commit the feed has heard of. A burst of identical
//! requests after a change costs one query: those that arrive while it runs
//! wait for it (single flight) instead of all asking the database at once.
//!
//! When the feed is not live (PostgreSQL's notification connection is down)
//! a page is kept at most `LISTING_CACHE_MS`, the bound on how stale a
//! listing may then be; zero turns keeping off altogether. Errors are not
//! kept: the next request asks the database again. But the requests that
//! were already waiting for a render that failed get its error at once, so
//! a database that is down fails a burst together instead of one request
//! after another, each waiting out the database timeout. Cursor pages are
//! not cached: few visitors share them.
//!
//! `/api/v1/stats` is kept the same way, under [`ListingKey::Stats`], in a
//! cache made with [`ListingCache::bounded`]: its counts of pending and
//! failed pictures also move with writes the feed does not carry, so it is
//! kept at most `LISTING_CACHE_MS` even while the feed is live. That still
//! makes its cost (it counts the whole table) one query per instance per
//! bound at most, whatever the number of visitors.
//!
//! A hit is the common case and takes no lock a writer holds for long: a
//! shared read of the map, then of the slot's kept listing. Only a miss
//! queues on the slot's render lock.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderValue;

use catdog_core::domain::Category;
use catdog_store::ChangeFeed;

/// A listing as it is sent: its ETag and its JSON body. Both are shared
/// buffers, so handing a kept listing to a response copies no bytes.
#[derive(Clone, Debug)]
pub struct RenderedListing {
    pub etag: HeaderValue,
    pub body: Bytes,
}

/// Which first page: the listings that many visitors share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListingKey {
    /// `GET /images?limit=…`
    Original { limit: u32 },
    /// `GET /api/v1/images?category=…&limit=…` without a cursor.
    FirstPage {
        category: Option<Category>,
        limit: u32,
    },
    /// `GET /api/v1/stats`.
    Stats,
}

/// At most this many listings are kept. The possible keys are few (a
/// category and a limit of 1 to 100), but a caller cycling through them all
/// should not make the process hold hundreds of pages.
const MAX_ENTRIES: usize = 64;

/// One listing.
struct Slot<E> {
    /// The kept page, when it was rendered and the feed's epoch before it
    /// was; read by every hit.
    kept: RwLock<Option<Kept>>,
    /// Held by the request that renders, so the others wait for its page
    /// (single flight). It holds the last render's failure, for those who
    /// waited for that render.
    rendering: tokio::sync::Mutex<Option<(Instant, E)>>,
}

struct Kept {
    at: Instant,
    epoch: u64,
    listing: RenderedListing,
}

/// When a kept page is still the gallery's: nothing changed since the
/// epoch it was rendered at and, unless the feed is live, it is younger
/// than the bound.
#[derive(Clone)]
struct Freshness {
    feed: ChangeFeed,
    bound_when_not_live: Duration,
    /// Apply the bound even while the feed is live.
    always_bounded: bool,
}

impl Freshness {
    fn holds(&self, kept: &Kept) -> bool {
        kept.epoch == self.feed.epoch()
            && ((self.feed.is_live() && !self.always_bounded)
                || kept.at.elapsed() < self.bound_when_not_live)
    }
}

impl<E> Slot<E> {
    fn new() -> Self {
        Self {
            kept: RwLock::new(None),
            rendering: tokio::sync::Mutex::new(None),
        }
    }

    fn fresh(&self, freshness: &Freshness) -> Option<RenderedListing> {
        // A poisoned lock only means a panic elsewhere while it was held;
        // the value inside is always whole (it is replaced in one store).
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        kept.as_ref()
            .filter(|kept| freshness.holds(kept))
            .map(|kept| kept.listing.clone())
    }

    fn keep(&self, epoch: u64, listing: RenderedListing) {
        *self.kept.write().unwrap_or_else(PoisonError::into_inner) = Some(Kept {
            at: Instant::now(),
            epoch,
            listing,
        });
    }
}

pub struct ListingCache<E> {
    freshness: Freshness,
    slots: RwLock<HashMap<ListingKey, Arc<Slot<E>>>>,
}

impl<E: Clone> ListingCache<E> {
    /// Keeps each listing until `feed` moves, and at most
    /// `bound_when_not_live` while the feed is not live; a zero bound turns
    /// caching off.
    pub fn new(feed: ChangeFeed, bound_when_not_live: Duration) -> Self {
        Self::with(feed, bound_when_not_live, false)
    }

    /// Keeps each entry until `feed` moves and at most `bound`, live or
    /// not: for answers that also depend on writes the feed does not carry.
    pub fn bounded(feed: ChangeFeed, bound: Duration) -> Self {
        Self::with(feed, bound, true)
    }

    fn with(feed: ChangeFeed, bound_when_not_live: Duration, always_bounded: bool) -> Self {
        Self {
            freshness: Freshness {
                feed,
                bound_when_not_live,
                always_bounded,
            },
            slots: RwLock::new(HashMap::new()),
        }
    }

    /// Whether a page under `key` is answered from the cache (and so also
    /// its revalidations, which then need no database round trip of their
    /// own).
    pub fn serves(&self, key: Option<ListingKey>) -> bool {
        key.is_some() && !self.freshness.bound_when_not_live.is_zero()
    }

    /// The listing under `key` if one is kept and fresh; never renders nor
    /// makes room. What the fast lane answers from.
    pub fn fresh(&self, key: ListingKey) -> Option<RenderedListing> {
        if !self.serves(Some(key)) {
            return None;
        }
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)?
            .fresh(&self.freshness)
    }

    /// The listing under `key`: kept if it is fresh, else rendered (once,
    /// however many callers are waiting for it) and kept. Without a key, or
    /// with caching off, or when the cache is full of fresh listings, it is
    /// simply rendered.
    pub async fn get_or_render<F>(
        &self,
        key: Option<ListingKey>,
        render: F,
    ) -> Result<RenderedListing, E>
    where
        F: Future<Output = Result<RenderedListing, E>>,
    {
        let Some(slot) = key
            .filter(|_| self.serves(key))
            .and_then(|key| self.slot(key))
        else {
            return render.await;
        };
        if let Some(listing) = slot.fresh(&self.freshness) {
            return Ok(listing);
        }
        let asked_at = Instant::now();
        let mut last_failure = slot.rendering.lock().await;
        // Whoever held the lock before may have just rendered it.
        if let Some(listing) = slot.fresh(&self.freshness) {
            return Ok(listing);
        }
        if let Some((failed_at, error)) = &*last_failure
            && *failed_at >= asked_at
        {
            return Err(error.clone());
        }
        // Read before the data is: a change committed during the render
        // leaves this page stale at once instead of kept as current.
        let epoch = self.freshness.feed.epoch();
        match render.await {
            Ok(listing) => {
                slot.keep(epoch, listing.clone());
                *last_failure = None;
                Ok(listing)
            }
            Err(error) => {
                *last_failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// The slot for `key`, made if there is room. Room is made by dropping
    /// slots whose listing has expired and that no request is using.
    fn slot(&self, key: ListingKey) -> Option<Arc<Slot<E>>> {
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Some(Arc::clone(slot));
        }
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(&key) {
            return Some(Arc::clone(slot));
        }
        if slots.len() >= MAX_ENTRIES {
            let freshness = &self.freshness;
            slots.retain(|_, slot| Arc::strong_count(slot) > 1 || slot.fresh(freshness).is_some());
            if slots.len() >= MAX_ENTRIES {
                return None;
            }
        }
        let slot = Arc::new(Slot::new());
        slots.insert(key, Arc::clone(&slot));
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A cache told of every change at once, keeping pages for a minute
    /// when it is not.
    fn live_cache() -> (ChangeFeed, ListingCache<String>) {
        let feed = ChangeFeed::new(true);
        let cache = ListingCache::new(feed.clone(), Duration::from_secs(60));
        (feed, cache)
    }

    fn original(limit: u32) -> ListingKey {
        ListingKey::Original { limit }
    }

    fn listing(n: usize) -> RenderedListing {
        RenderedListing {
            etag: HeaderValue::try_from(format!("\"{n}\"")).unwrap(),
            body: Bytes::from(n.to_string()),
        }
    }

    /// Renders listing number `n`, where `n` counts the renders so far.
    async fn counted(renders: &AtomicUsize) -> Result<RenderedListing, String> {
        let n = renders.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(listing(n))
    }

    #[tokio::test]
    async fn a_fresh_listing_is_rendered_once_for_many_concurrent_callers() {
        let cache = Arc::new(live_cache().1);
        let renders = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let (cache, renders) = (Arc::clone(&cache), Arc::clone(&renders));
                tokio::spawn(async move {
                    cache
                        .get_or_render(Some(original(10)), counted(&renders))
                        .await
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap().etag, "\"1\"");
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        // Another key is another listing.
        let other = cache
            .get_or_render(Some(original(20)), counted(&renders))
            .await
            .unwrap();
        assert_eq!(other.etag, "\"2\"");
    }

    fn first_page() -> Option<ListingKey> {
        Some(ListingKey::FirstPage {
            category: None,
            limit: 24,
        })
    }

    /// The first page's ETag, rendering it (counted) when it is not kept.
    async fn first_page_etag(cache: &ListingCache<String>, renders: &AtomicUsize) -> HeaderValue {
        cache
            .get_or_render(first_page(), counted(renders))
            .await
            .unwrap()
            .etag
    }

    #[tokio::test]
    async fn a_change_drops_the_kept_listing_at_once() {
        let (feed, cache) = live_cache();
        let renders = AtomicUsize::new(0);
        let etag = || first_page_etag(&cache, &renders);
        assert_eq!(etag().await, "\"1\"");
        assert_eq!(etag().await, "\"1\"", "kept while nothing changes");
        feed.changed();
        assert_eq!(etag().await, "\"2\"", "rendered again after a change");
        assert_eq!(etag().await, "\"2\"");
    }

    #[tokio::test]
    async fn a_change_during_the_render_leaves_that_page_stale() {
        let (feed, cache) = live_cache();
        let renders = AtomicUsize::new(0);
        let changing_meanwhile = async {
            let page = counted(&renders).await;
            // A commit lands after the query read the data, before the
            // page is kept.
            feed.changed();
            page
        };
        let first = cache.get_or_render(first_page(), changing_meanwhile).await;
        assert_eq!(first.unwrap().etag, "\"1\"");
        let next = cache.get_or_render(first_page(), counted(&renders)).await;
        assert_eq!(next.unwrap().etag, "\"2\"", "the stale page was not kept");
    }

    #[tokio::test]
    async fn without_a_live_feed_a_listing_is_kept_at_most_the_bound() {
        let feed = ChangeFeed::new(false);
        let cache = ListingCache::new(feed.clone(), Duration::from_millis(50));
        let renders = AtomicUsize::new(0);
        let etag = || first_page_etag(&cache, &renders);
        assert_eq!(etag().await, "\"1\"");
        assert_eq!(etag().await, "\"1\"");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(etag().await, "\"2\"", "expired after the bound");
        feed.changed();
        assert_eq!(etag().await, "\"3\"", "and a change still drops it");
        // Going live again counts as a change, then pages outlive the bound.
        feed.set_live(true);
        assert_eq!(etag().await, "\"4\"");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(etag().await, "\"4\"");
    }

    #[tokio::test]
    async fn errors_are_not_kept() {
        let cache = live_cache().1;
        let renders = AtomicUsize::new(0);
        let key = || Some(original(10));
        let failed = cache
            .get_or_render(key(), async {
                Err::<RenderedListing, _>("database down".to_owned())
            })
            .await;
        assert_eq!(failed.unwrap_err(), "database down");
        let next = cache.get_or_render(key(), counted(&renders)).await.unwrap();
        assert_eq!(next.etag, "\"1\"");
    }

    #[tokio::test]
    async fn callers_waiting_for_a_failed_render_get_its_error_without_rendering_again() {
        let cache = Arc::new(live_cache().1);
        let renders = Arc::new(AtomicUsize::new(0));
        let failing = |renders: Arc<AtomicUsize>| async move {
            renders.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err::<RenderedListing, _>("database down".to_owned())
        };
        let first = {
            let (cache, renders) = (Arc::clone(&cache), Arc::clone(&renders));
            tokio::spawn(async move {
                cache
                    .get_or_render(Some(original(10)), failing(renders))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let (cache, renders) = (Arc::clone(&cache), Arc::clone(&renders));
                tokio::spawn(async move {
                    cache
                        .get_or_render(Some(original(10)), failing(renders))
                        .await
                })
            })
            .collect();
        assert_eq!(first.await.unwrap().unwrap_err(), "database down");
        for caller in waiting {
            assert_eq!(caller.await.unwrap().unwrap_err(), "database down");
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        // A caller that comes later asks again.
        let later = cache
            .get_or_render(Some(original(10)), counted(&renders))
            .await
            .unwrap();
        assert_eq!(later.etag, "\"2\"");
    }

    #[tokio::test]
    async fn without_a_key_or_when_off_every_call_renders() {
        let renders = AtomicUsize::new(0);
        let on = live_cache().1;
        on.get_or_render(None, counted(&renders)).await.unwrap();
        on.get_or_render(None, counted(&renders)).await.unwrap();
        let off = ListingCache::new(ChangeFeed::new(true), Duration::ZERO);
        off.get_or_render(Some(original(1)), counted(&renders))
            .await
            .unwrap();
        off.get_or_render(Some(original(1)), counted(&renders))
            .await
            .unwrap();
        assert_eq!(renders.load(Ordering::SeqCst), 4);
        // What the handlers ask before answering a revalidation themselves.
        assert!(on.serves(Some(original(1))));
        assert!(!on.serves(None));
        assert!(!off.serves(Some(original(1))));
    }

    #[tokio::test]
    async fn the_number_of_kept_listings_is_bounded() {
        let cache = live_cache().1;
        let renders = AtomicUsize::new(0);
        for limit in 0..MAX_ENTRIES + 10 {
            cache
                .get_or_render(Some(original(limit as u32)), counted(&renders))
                .await
                .unwrap();
        }
        assert_eq!(cache.slots.read().unwrap().len(), MAX_ENTRIES);
        // The kept ones are still served from the cache.
        let before = renders.load(Ordering::SeqCst);
        cache
            .get_or_render(Some(original(0)), counted(&renders))
            .await
            .unwrap();
        assert_eq!(renders.load(Ordering::SeqCst), before);
    }
}
