//! The orphan sweep: deletes objects that no image row refers to.
//!
//! Ingestion writes the original first and its row second, so a run that
//! stops between the two (storage answered but the database did not, the
//! process was killed, an upload that timed out on our side but landed)
//! leaves an object without a row. Nothing else ever refers to such an
//! object, so after a grace period the sweep deletes it.
//!
//! What makes deleting safe:
//! - an object is kept while its image id has a row of any status (a
//!   thumbnail is written before its verdict, so a pending image's thumbnail
//!   is not an orphan), and rows are never deleted;
//! - an object is only considered once it is older than the grace period,
//!   both by its write time and by the time in its UUID v7 name, and a row
//!   is inserted within seconds of its object (the database and storage
//!   calls are bounded), so a row can no longer appear for it;
//! - the rows are read after the listing, so a row inserted while the sweep
//!   lists is seen.
//!
//! Object names start with the image id, a UUID v7 whose first 48 bits are
//! its creation time in milliseconds, so names sort by time: a sweep can list
//! just a window of time (`window`), which is what keeps the sweep in every
//! ingestion run cheap however large the bucket grows. `catdog sweep-orphans`
//! walks everything.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::run::IngestError;
use catdog_core::domain::{ImageId, ObjectName};
use catdog_objects::{MAX_PAGE, NameRange, ObjectStore};
use catdog_store::ImageStore;

/// The two kinds of object names we make, as listing prefixes.
const NAMESPACES: [&str; 2] = ["", "thumbs/"];

/// How far one sweep goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanSweep {
    /// Objects younger than this are left alone: their row may be on its way.
    pub grace: Duration,
    /// Only objects whose name says they were created within this long
    /// before the grace period; `None`: every object.
    pub window: Option<Duration>,
    /// Objects looked at, at most.
    pub max_examined: u64,
    /// Objects deleted, at most.
    pub max_deleted: u64,
}

impl OrphanSweep {
    /// What every ingestion run does: the last hour, bounded.
    pub fn per_run(grace: Duration, window: Duration) -> Self {
        Self {
            grace,
            window: Some(window),
            max_examined: 2_000,
            max_deleted: 100,
        }
    }

    /// Everything, for `catdog sweep-orphans`.
    pub fn everything(grace: Duration) -> Self {
        Self {
            grace,
            window: None,
            max_examined: u64::MAX,
            max_deleted: u64::MAX,
        }
    }
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanReport {
    /// Objects listed and compared with the rows.
    pub examined: u64,
    /// Objects without a row, older than the grace period, deleted.
    pub deleted: Vec<ObjectName>,
    /// False when a bound stopped the sweep before the end of its range.
    pub complete: bool,
}

/// The image id an object name carries.
fn image_id_of(name: &ObjectName) -> Option<ImageId> {
    let s = name.as_str();
    s.strip_prefix("thumbs/")
        .and_then(|rest| rest.strip_suffix(".jpg"))
        .unwrap_or(s)
        .parse()
        .ok()
}

/// The first 13 characters of a UUID v7 made at `t`
/// (`tttttttt-tttt`): every id made before `t` sorts before this.
fn id_time_key(t: DateTime<Utc>) -> String {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("{:08x}-{:04x}", ms >> 16, ms & 0xffff)
}

/// Runs one sweep. Stops at the first storage or database error (the next
/// sweep starts over; deleting an orphan twice is harmless).
pub async fn sweep_orphans(
    store: &dyn ImageStore,
    objects: &dyn ObjectStore,
    options: &OrphanSweep,
) -> Result<OrphanReport, IngestError> {
    let cutoff = Utc::now() - TimeDelta::from_std(options.grace).unwrap_or(TimeDelta::MAX);
    let end = id_time_key(cutoff);
    let start = options
        .window
        .map(|window| id_time_key(cutoff - TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX)));
    let mut report = OrphanReport {
        complete: true,
        ..OrphanReport::default()
    };
    for namespace in NAMESPACES {
        let mut range = NameRange {
            start: start.as_ref().map(|key| format!("{namespace}{key}")),
            end: Some(format!("{namespace}{end}")),
        };
        // The last name of the previous page: the next page starts there
        // (the start is inclusive) and skips it.
        let mut after: Option<String> = None;
        loop {
            let room = options.max_examined.saturating_sub(report.examined);
            if room == 0 {
                report.complete = false;
                return Ok(report);
            }
            let asked = usize::try_from(room).unwrap_or(MAX_PAGE).min(MAX_PAGE);
            let page = objects.list_page(&range, asked).await?;
            let full_page = page.len() >= asked;
            let Some(last) = page.last().map(|o| o.name.as_str().to_owned()) else {
                break;
            };
            let fresh: Vec<_> = page
                .into_iter()
                .filter(|o| after.as_deref().is_none_or(|a| o.name.as_str() > a))
                .collect();
            if fresh.is_empty() {
                break;
            }
            report.examined += fresh.len() as u64;
            let old: Vec<(ImageId, ObjectName)> = fresh
                .into_iter()
                .filter(|o| o.updated < cutoff)
                .filter_map(|o| image_id_of(&o.name).map(|id| (id, o.name)))
                .collect();
            let ids: Vec<ImageId> = old
                .iter()
                .map(|(id, _)| *id)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let recorded = store.existing_ids(&ids).await?;
            for (id, name) in old {
                if recorded.contains(&id) {
                    continue;
                }
                if report.deleted.len() as u64 >= options.max_deleted {
                    report.complete = false;
                    return Ok(report);
                }
                objects.delete(&name).await?;
                tracing::info!(object = %name, "deleted an object no image row refers to");
                report.deleted.push(name);
            }
            if !full_page {
                break;
            }
            range.start = Some(last.clone());
            after = Some(last);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_before_a_time_sort_before_its_key() {
        let t = Utc::now();
        let key = id_time_key(t);
        let before = ImageId::from_uuid(uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            u64::try_from(t.timestamp() - 1).unwrap(),
            0,
        )));
        let after = ImageId::from_uuid(uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            u64::try_from(t.timestamp() + 1).unwrap(),
            0,
        )));
        assert!(before.to_string() < key, "{before} {key}");
        assert!(after.to_string() > key, "{after} {key}");
        assert_eq!(key.len(), 13);
    }

    #[test]
    fn both_kinds_of_name_give_their_image() {
        let id = ImageId::new();
        assert_eq!(image_id_of(&ObjectName::original(id)), Some(id));
        assert_eq!(image_id_of(&ObjectName::thumbnail(id)), Some(id));
    }
}
