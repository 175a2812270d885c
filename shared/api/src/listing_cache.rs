//! First pages of the listings, kept rendered for a moment.
//!
//! Every visitor of the gallery asks for the same few first pages, and each
//! answer costs a database round trip (100 to 250 µs of PostgreSQL's time in
//! the benchmarks, depending on the machine) plus serialising the page.
//! Keeping the rendered body and its ETag for `LISTING_CACHE_MS` turns a
//! burst of identical requests into one query: those that arrive while it
//! runs wait for it (single flight) instead of all asking the database at
//! once.
//!
//! A cached page can be at most that long older than the database, far less
//! than the `max-age` a browser or CDN already keeps it for, and far less
//! than the time between ingestions. Errors are not kept: the next request
//! asks the database again. But the requests that were already waiting for
//! a render that failed get its error at once, so a database that is down
//! fails a burst together instead of one request after another, each
//! waiting out the database timeout. Cursor pages are not cached: few
//! visitors share them.
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
}

/// At most this many listings are kept. The possible keys are few (a
/// category and a limit of 1 to 100), but a caller cycling through them all
/// should not make the process hold hundreds of pages.
const MAX_ENTRIES: usize = 64;

/// One listing.
struct Slot<E> {
    /// The kept page and when it was rendered; read by every hit.
    kept: RwLock<Option<(Instant, RenderedListing)>>,
    /// Held by the request that renders, so the others wait for its page
    /// (single flight). It holds the last render's failure, for those who
    /// waited for that render.
    rendering: tokio::sync::Mutex<Option<(Instant, E)>>,
}

impl<E> Slot<E> {
    fn new() -> Self {
        Self {
            kept: RwLock::new(None),
            rendering: tokio::sync::Mutex::new(None),
        }
    }

    fn fresh(&self, keep_for: Duration) -> Option<RenderedListing> {
        // A poisoned lock only means a panic elsewhere while it was held;
        // the value inside is always whole (it is replaced in one store).
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        kept.as_ref()
            .filter(|(at, _)| at.elapsed() < keep_for)
            .map(|(_, listing)| listing.clone())
    }

    fn keep(&self, listing: RenderedListing) {
        *self.kept.write().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), listing));
    }
}

pub struct ListingCache<E> {
    keep_for: Duration,
    slots: RwLock<HashMap<ListingKey, Arc<Slot<E>>>>,
}

impl<E: Clone> ListingCache<E> {
    /// Keeps each listing for `keep_for`; zero turns caching off.
    pub fn new(keep_for: Duration) -> Self {
        Self {
            keep_for,
            slots: RwLock::new(HashMap::new()),
        }
    }

    /// Whether a page under `key` is answered from the cache (and so also
    /// its revalidations, which then need no database round trip of their
    /// own).
    pub fn serves(&self, key: Option<ListingKey>) -> bool {
        key.is_some() && !self.keep_for.is_zero()
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
        if let Some(listing) = slot.fresh(self.keep_for) {
            return Ok(listing);
        }
        let asked_at = Instant::now();
        let mut last_failure = slot.rendering.lock().await;
        // Whoever held the lock before may have just rendered it.
        if let Some(listing) = slot.fresh(self.keep_for) {
            return Ok(listing);
        }
        if let Some((failed_at, error)) = &*last_failure
            && *failed_at >= asked_at
        {
            return Err(error.clone());
        }
        match render.await {
            Ok(listing) => {
                slot.keep(listing.clone());
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
            let keep_for = self.keep_for;
            slots.retain(|_, slot| Arc::strong_count(slot) > 1 || slot.fresh(keep_for).is_some());
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
        let cache = Arc::new(ListingCache::new(Duration::from_secs(60)));
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

    #[tokio::test]
    async fn an_expired_listing_is_rendered_again() {
        let cache = ListingCache::new(Duration::from_millis(50));
        let renders = AtomicUsize::new(0);
        let etag = || async {
            let key = Some(ListingKey::FirstPage {
                category: None,
                limit: 24,
            });
            cache
                .get_or_render(key, counted(&renders))
                .await
                .unwrap()
                .etag
        };
        assert_eq!(etag().await, "\"1\"");
        assert_eq!(etag().await, "\"1\"");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(etag().await, "\"2\"");
    }

    #[tokio::test]
    async fn errors_are_not_kept() {
        let cache = ListingCache::new(Duration::from_secs(60));
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
        let cache = Arc::new(ListingCache::new(Duration::from_secs(60)));
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
        let on = ListingCache::new(Duration::from_secs(60));
        on.get_or_render(None, counted(&renders)).await.unwrap();
        on.get_or_render(None, counted(&renders)).await.unwrap();
        let off = ListingCache::new(Duration::ZERO);
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
        let cache = ListingCache::new(Duration::from_secs(60));
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
