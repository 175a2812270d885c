//! Messages the queue gave up on, one JSON document per line in a file under
//! the data folder, so they outlive the process and an operator can list
//! them (`catdog dead-letters`) and see why each one failed.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;

use catdog_core::pubsub::{ImageMessage, PushEnvelope};

/// The file's name inside the data folder.
pub const DEAD_LETTERS_FILE: &str = "dead-letters.jsonl";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub message_id: String,
    pub subscription: String,
    pub message: ImageMessage,
    pub attempts: u32,
    /// The last answer's status; `None` when there was no answer.
    pub last_status: Option<u16>,
    /// What the last answer said (its problem+json body).
    pub last_error: String,
    pub dead_lettered_at: DateTime<Utc>,
}

impl DeadLetter {
    pub fn new(
        envelope: &PushEnvelope,
        message: ImageMessage,
        attempts: u32,
        last_status: Option<u16>,
        last_error: String,
    ) -> Self {
        Self {
            message_id: envelope.message.message_id.clone(),
            subscription: envelope.subscription.clone(),
            message,
            attempts,
            last_status,
            last_error,
            dead_lettered_at: Utc::now(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: not a dead letter: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The dead-letter file.
pub struct DeadLetters {
    path: PathBuf,
    /// Appends from concurrent deliveries go one at a time, so lines never interleave.
    writing: Mutex<()>,
}

impl DeadLetters {
    /// The file in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        Self::at(data_dir.join(DEAD_LETTERS_FILE))
    }

    pub fn at(path: PathBuf) -> Self {
        Self {
            path,
            writing: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn append(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let write_error = |source| DeadLetterError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(letter).map_err(|e| write_error(e.into()))?;
        line.push(b'\n');
        let _turn = self.writing.lock().await;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(write_error)?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(write_error)?;
        file.write_all(&line).await.map_err(write_error)?;
        file.sync_data().await.map_err(write_error)
    }

    /// Every dead letter, oldest first; none when the file does not exist.
    pub async fn list(&self) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(DeadLetterError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| DeadLetterError::Corrupt {
                    path: self.path.clone(),
                    line: i + 1,
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catdog_core::domain::{Digest, ImageId, ObjectName};

    #[tokio::test]
    async fn dead_letters_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("catdog-dead-letters-{}", ImageId::new()));
        let id = ImageId::new();
        let message = ImageMessage::new(id, ObjectName::original(id), Digest::of(b"x"));
        let envelope = PushEnvelope::wrap(&message, "local-7", "projects/local/subscriptions/s");
        let letter = DeadLetter::new(&envelope, message, 5, Some(503), "down".to_owned());
        assert!(DeadLetters::in_dir(&dir).list().await.unwrap().is_empty());
        DeadLetters::in_dir(&dir).append(&letter).await.unwrap();
        DeadLetters::in_dir(&dir).append(&letter).await.unwrap();
        let listed = DeadLetters::in_dir(&dir).list().await.unwrap();
        assert_eq!(listed, vec![letter.clone(), letter]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
