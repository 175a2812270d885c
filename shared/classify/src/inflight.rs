//! Turns per image: deliveries of the same image inside one process run one
//! after the other. Across processes the store's "only a pending image
//! changes" rule is what keeps the outcome single; this only saves the
//! duplicate classification work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use catdog_core::domain::ImageId;

#[derive(Clone, Default)]
pub(super) struct InFlight {
    turns: Arc<Mutex<HashMap<ImageId, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held while one delivery works on an image; the next one starts when it drops.
pub(super) struct Turn {
    id: ImageId,
    turns: Arc<Mutex<HashMap<ImageId, Arc<tokio::sync::Mutex<()>>>>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl InFlight {
    pub(super) async fn wait_turn(&self, id: ImageId) -> Turn {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(turns.entry(id).or_default())
        };
        let guard = lock.lock_owned().await;
        Turn {
            id,
            turns: Arc::clone(&self.turns),
            guard: Some(guard),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Release first, then forget the image unless someone else holds or
        // waits for its lock (their Arc keeps the count above one).
        drop(self.guard.take());
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        if turns
            .get(&self.id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            turns.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_image_takes_turns_and_is_forgotten_after() {
        let in_flight = InFlight::default();
        let id = ImageId::new();
        let first = in_flight.wait_turn(id).await;
        let second = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.wait_turn(id).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!second.is_finished(), "the second delivery did not wait");
        // Another image is not held up.
        drop(in_flight.wait_turn(ImageId::new()).await);
        drop(first);
        drop(second.await.unwrap());
        assert!(in_flight.turns.lock().unwrap().is_empty());
    }
}
