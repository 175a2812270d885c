//! How many connections a process may hold: every one is an open file, and
//! so is every database connection, object read and the SQLite file. A
//! server that accepts until the kernel says EMFILE leaves nothing for the
//! work its requests came for (seen: 400 idle sockets under a 256-file limit
//! starved classification). So the soft limit is raised to the hard one at
//! start, and connections are capped below it.

/// Connections held at once when the limit is unknown.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Never fewer connections than this, however low the limit.
const MIN_CONNECTIONS: usize = 16;
/// Nor more: past this, memory per connection matters more than files.
const MAX_CONNECTIONS: usize = 10_000;
/// Files kept for everything but client connections: at least this many,
/// and at least a quarter of the limit (the pools, objects being read and
/// written, the model, the log).
const MIN_HEADROOM: u64 = 64;

/// Raises the soft open-file limit to the hard limit and logs both; returns
/// the soft limit now in force, or `None` where it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit");
            return None;
        }
    };
    match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => {
            tracing::info!(soft_before = soft, soft = raised, hard, "open-file limit");
            Some(raised)
        }
        Err(error) => {
            tracing::warn!(%error, soft, hard, "cannot raise the open-file limit");
            Some(soft)
        }
    }
}

/// The connection cap for a soft open-file limit.
pub fn connection_cap(soft_limit: Option<u64>) -> usize {
    let Some(soft) = soft_limit else {
        return DEFAULT_MAX_CONNECTIONS;
    };
    let headroom = MIN_HEADROOM.max(soft / 4);
    let cap = usize::try_from(soft.saturating_sub(headroom)).unwrap_or(MAX_CONNECTIONS);
    cap.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_files_for_the_work() {
        assert_eq!(connection_cap(Some(256)), 192);
        assert_eq!(connection_cap(Some(1024)), 768);
        assert_eq!(connection_cap(Some(20_000)), 10_000);
        assert_eq!(connection_cap(Some(32)), MIN_CONNECTIONS);
        assert_eq!(connection_cap(None), DEFAULT_MAX_CONNECTIONS);
    }
}
