//! Retention: which archives to delete, by count, age and total size.
//!
//! Every limit deletes the oldest archives first, so together they delete a run of the
//! oldest: an archive is never deleted while an older one is kept. Every archive counts
//! towards every limit, whether a size or a time rotation made it.

use std::ffi::OsString;
use std::io;
use std::time::Duration;

use super::LogName;
use super::timestamped::{self, Archive};

/// The limits on the archives kept; `max_files` always applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_files: usize,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_total_bytes: Option<u64>,
}

/// One archive as retention sees it, oldest first in a list: its names (a plain file and
/// its compressed copy, while a compression is being finished), when it was rotated, and
/// its size on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) names: Vec<OsString>,
    pub(crate) time: i64,
    pub(crate) bytes: u64,
}

/// How many of `archives` (oldest first) the limits delete, at `now`.
pub(crate) fn how_many_to_delete(archives: &[Kept], limits: Limits, now: i64) -> usize {
    let by_count = archives.len().saturating_sub(limits.max_files);
    let by_age = limits.max_age.map_or(0, |age| {
        let oldest_kept = now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
        archives.partition_point(|archive| archive.time < oldest_kept)
    });
    let by_size = limits.max_total_bytes.map_or(0, |limit| {
        let mut total = 0u64;
        let kept = archives
            .iter()
            .rev()
            .take_while(|archive| {
                total = total.saturating_add(archive.bytes);
                total <= limit
            })
            .count();
        archives.len() - kept
    });
    by_count.max(by_age).max(by_size)
}

/// The timestamped archives of `log`, oldest first, a plain file and its compressed copy
/// counting as one.
pub(crate) fn timestamped_archives(log: LogName<'_>) -> io::Result<Vec<Kept>> {
    let mut kept: Vec<Kept> = Vec::new();
    let mut last: Option<(i64, u32)> = None;
    for Archive {
        name,
        time,
        counter,
        ..
    } in timestamped::list(log)?
    {
        let bytes = log.dir.entry(&name)?.map_or(0, |entry| entry.len);
        match kept.last_mut() {
            Some(same) if last == Some((time, counter)) => {
                same.names.push(name);
                same.bytes = same.bytes.max(bytes);
            }
            _ => kept.push(Kept {
                names: vec![name],
                time,
                bytes,
            }),
        }
        last = Some((time, counter));
    }
    Ok(kept)
}

/// Deletes the oldest timestamped archives beyond `limits`. Another process may be doing
/// the same at once: a name already gone is no error.
pub(crate) fn apply(log: LogName<'_>, limits: Limits, now: i64) -> io::Result<()> {
    let archives = timestamped_archives(log)?;
    let doomed = how_many_to_delete(&archives, limits, now);
    for archive in &archives[..doomed] {
        for name in &archive.names {
            match log.dir.remove(name) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archives(times_and_sizes: &[(i64, u64)]) -> Vec<Kept> {
        times_and_sizes
            .iter()
            .map(|&(time, bytes)| Kept {
                names: vec![OsString::from(format!("a{time}"))],
                time,
                bytes,
            })
            .collect()
    }

    fn limits(max_files: usize, max_age: Option<u64>, max_total_bytes: Option<u64>) -> Limits {
        Limits {
            max_files,
            max_age: max_age.map(Duration::from_secs),
            max_total_bytes,
        }
    }

    #[test]
    fn each_limit_deletes_a_run_of_the_oldest() {
        let list = archives(&[(100, 10), (200, 10), (300, 10), (400, 10)]);
        assert_eq!(how_many_to_delete(&list, limits(10, None, None), 1000), 0);
        assert_eq!(how_many_to_delete(&list, limits(3, None, None), 1000), 1);
        assert_eq!(how_many_to_delete(&list, limits(0, None, None), 1000), 4);
        // Older than 250 s at 500: rotated before 250.
        assert_eq!(
            how_many_to_delete(&list, limits(10, Some(250), None), 500),
            2
        );
        assert_eq!(
            how_many_to_delete(&list, limits(10, Some(400), None), 500),
            0
        );
        // 25 bytes keep the two newest.
        assert_eq!(
            how_many_to_delete(&list, limits(10, None, Some(25)), 500),
            2
        );
        assert_eq!(
            how_many_to_delete(&list, limits(10, None, Some(40)), 500),
            0
        );
        assert_eq!(how_many_to_delete(&list, limits(10, None, Some(5)), 500), 4);
    }

    #[test]
    fn the_strictest_limit_wins() {
        let list = archives(&[(100, 10), (200, 10), (300, 10), (400, 10)]);
        assert_eq!(
            how_many_to_delete(&list, limits(3, Some(250), Some(15)), 500),
            3
        );
    }
}
