//! First pages of the listings, kept rendered for a moment.
//!
//! Every visitor of the gallery asks for the same few first pages, and each
//! answer costs a database round trip (about 250 µs of PostgreSQL's time in
//! the benchmarks) plus serialising the page. Keeping the rendered body and
//! its ETag for `LISTING_CACHE_MS` turns a burst of identical requests into
//! one query: those that arrive while it runs wait for it (single flight)
//! instead of all asking the database at once.
//!
//! A cached page can be at most that long older than the database, far less
//! than the `max-age` a browser or CDN already keeps it for, and far less
//! than the time between ingestions. Errors are not kept: the next request
//! asks the database again. But the requests that were already waiting for
//! a render that failed get its error at once, so a database that is down
//! fails a burst together instead of one request after another, each
//! waiting out the database timeout. Cursor pages are not cached: few
//! visitors share them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// A listing as it is sent: its ETag and its JSON body.
#[derive(Clone, Debug)]
pub struct RenderedListing {
    pub etag: String,
    pub body: Bytes,
}

/// At most this many listings are kept. The possible keys are few (a
/// category and a limit of 1 to 100), but a caller cycling through them all
/// should not make the process hold hundreds of pages.
const MAX_ENTRIES: usize = 64;

/// One listing: the kept page, and the last render's failure for those who
/// waited for it.
struct Kept<E> {
    listing: Option<(Instant, RenderedListing)>,
    failure: Option<(Instant, E)>,
}

impl<E> Default for Kept<E> {
    fn default() -> Self {
        Self {
            listing: None,
            failure: None,
        }
    }
}

type Slot<E> = Arc<tokio::sync::Mutex<Kept<E>>>;

pub struct ListingCache<E> {
    keep_for: Duration,
    slots: Mutex<HashMap<String, Slot<E>>>,
}

impl<E: Clone> ListingCache<E> {
    /// Keeps each listing for `keep_for`; zero turns caching off.
    pub fn new(keep_for: Duration) -> Self {
        Self {
            keep_for,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.keep_for.is_zero()
    }

    /// The listing under `key`: kept if it is fresh, else rendered (once,
    /// however many callers are waiting for it) and kept. Without a key, or
    /// with caching off, or when the cache is full of fresh listings, it is
    /// simply rendered.
    pub async fn get_or_render<F>(
        &self,
        key: Option<String>,
        render: F,
    ) -> Result<RenderedListing, E>
    where
        F: Future<Output = Result<RenderedListing, E>>,
    {
        let Some(slot) = key.and_then(|key| self.slot(key)) else {
            return render.await;
        };
        let asked_at = Instant::now();
        let mut kept = slot.lock().await;
        if let Some((at, listing)) = &kept.listing
            && at.elapsed() < self.keep_for
        {
            return Ok(listing.clone());
        }
        if let Some((failed_at, error)) = &kept.failure
            && *failed_at >= asked_at
        {
            return Err(error.clone());
        }
        match render.await {
            Ok(listing) => {
                kept.listing = Some((Instant::now(), listing.clone()));
                kept.failure = None;
                Ok(listing)
            }
            Err(error) => {
                kept.failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// The slot for `key`, made if there is room. Room is made by dropping
    /// slots whose listing has expired and that no request is using.
    fn slot(&self, key: String) -> Option<Slot<E>> {
        if !self.is_enabled() {
            return None;
        }
        // A poisoned lock only means another request panicked while holding
        // it; the map itself is always whole.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(&key) {
            return Some(Arc::clone(slot));
        }
        if slots.len() >= MAX_ENTRIES {
            let keep_for = self.keep_for;
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().map_or(true, |kept| {
                        kept.listing
                            .as_ref()
                            .is_some_and(|(at, _)| at.elapsed() < keep_for)
                    })
            });
            if slots.len() >= MAX_ENTRIES {
                return None;
            }
        }
        let slot = Slot::default();
        slots.insert(key, Arc::clone(&slot));
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn listing(n: usize) -> RenderedListing {
        RenderedListing {
            etag: format!("\"{n}\""),
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
                        .get_or_render(Some("images|10".into()), counted(&renders))
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
            .get_or_render(Some("images|20".into()), counted(&renders))
            .await
            .unwrap();
        assert_eq!(other.etag, "\"2\"");
    }

    #[tokio::test]
    async fn an_expired_listing_is_rendered_again() {
        let cache = ListingCache::new(Duration::from_millis(50));
        let renders = AtomicUsize::new(0);
        let etag = || async {
            let key = Some("v1|all|24".to_owned());
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
        let key = || Some("images|10".to_owned());
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
                    .get_or_render(Some("images|10".into()), failing(renders))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let (cache, renders) = (Arc::clone(&cache), Arc::clone(&renders));
                tokio::spawn(async move {
                    cache
                        .get_or_render(Some("images|10".into()), failing(renders))
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
            .get_or_render(Some("images|10".into()), counted(&renders))
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
        off.get_or_render(Some("k".into()), counted(&renders))
            .await
            .unwrap();
        off.get_or_render(Some("k".into()), counted(&renders))
            .await
            .unwrap();
        assert_eq!(renders.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_number_of_kept_listings_is_bounded() {
        let cache = ListingCache::new(Duration::from_secs(60));
        let renders = AtomicUsize::new(0);
        for limit in 0..MAX_ENTRIES + 10 {
            cache
                .get_or_render(Some(format!("images|{limit}")), counted(&renders))
                .await
                .unwrap();
        }
        assert_eq!(cache.slots.lock().unwrap().len(), MAX_ENTRIES);
        // The kept ones are still served from the cache.
        let before = renders.load(Ordering::SeqCst);
        cache
            .get_or_render(Some("images|0".into()), counted(&renders))
            .await
            .unwrap();
        assert_eq!(renders.load(Ordering::SeqCst), before);
    }
}
