//! The archives of one log, as retention sees them: numbered (`app.log.3`, aged by its
//! last modification) and timestamped (`app.log.2026-11-27T14-00-00Z`, aged by its stamp)
//! archives are both archives of the log, whichever naming the rotating process has, and
//! are listed together, oldest first, each form keeping its own order (a number is an age
//! rank; a stamp sorts by time), the two forms merged by last write.
//!
//! A stamp more than [`FUTURE_TOLERANCE`] ahead of the clock (a clock stepped back, a
//! peer's clock ahead) cannot be placed in time: such an archive is *unplaced*, listed
//! first, as the oldest, so that the disk cannot fill behind it.

use std::ffi::OsString;
use std::io;

use super::LogName;
use super::numbered;
use super::period::{EARLIEST, FUTURE_TOLERANCE};
use super::timestamped::{self, Archive};
use crate::platform::Kind;

/// One archive as retention sees it, oldest first in a list: its names (a plain file and
/// its compressed copy, while a compression is being finished), the time its age counts
/// from (when its last line was written), and its size on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) names: Vec<OsString>,
    pub(crate) time: i64,
    pub(crate) bytes: u64,
    pub(crate) form: Form,
    /// Its last write (seconds and nanoseconds): how archives of the two namings are
    /// ordered between them, a stamp having only whole seconds.
    pub(crate) written: (i64, u32),
}

/// Which naming made an archive, as retention must know to delete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `app.log.<index>`: renumbered by numbered rotations, so only they delete it.
    Numbered(usize),
    /// A timestamped name stamped at most [`FUTURE_TOLERANCE`] ahead of the clock.
    Timestamped,
    /// A timestamped name stamped further ahead: of unknown age, taken as the oldest.
    Unplaced,
    /// The live file, about to become the newest numbered archive.
    Live,
}

/// Every archive of `log`, numbered and timestamped, oldest first, with their sizes
/// (one `stat` each: the ledger must know them, for a process with `max_total_bytes` may
/// come later). A plain file and its compressed copy count as one. A timestamped
/// archive's age counts from `aged_from` its stamp (see `Limits::aged_from`), a numbered
/// one's from its last modification. Retention lists with [`Listing`](super::Listing),
/// twice and off the lock; this one listing is for tests.
#[cfg(test)]
pub(crate) fn all_archives(
    log: LogName<'_>,
    aged_from: &dyn Fn(i64) -> i64,
    now: i64,
) -> io::Result<Vec<Kept>> {
    let listing = log.dir.list(&prefix(log))?;
    from_listing(log, &listing, aged_from, now, true)
}

/// `app.log.`: what every archive name of `log` starts with.
pub(crate) fn prefix(log: LogName<'_>) -> Vec<u8> {
    let mut prefix = log.name.as_encoded_bytes().to_vec();
    prefix.push(b'.');
    prefix
}

/// [`all_archives`] from a listing already made (of the names starting with
/// [`prefix`]). Numbered archives are looked at (`stat`) only with `numbered_stats`, or
/// to be placed among timestamped ones: a numbered rotation with neither `max_age` nor
/// `max_total_bytes` needs only their numbers.
pub(crate) fn from_listing(
    log: LogName<'_>,
    listing: &[(OsString, Kind)],
    aged_from: &dyn Fn(i64) -> i64,
    now: i64,
    numbered_stats: bool,
) -> io::Result<Vec<Kept>> {
    let prefix = prefix(log);
    let mut stamped: Vec<Archive> = Vec::new();
    let mut indexes: Vec<usize> = Vec::new();
    for (name, kind) in listing {
        if !matches!(kind, Kind::File | Kind::Symlink) {
            continue;
        }
        if let Some(archive) = timestamped::parse(log.name, name) {
            // Before 2000 is no stamp of ours: never deleted as one.
            if archive.time >= EARLIEST {
                stamped.push(archive);
            }
        } else if let Some(index) = numbered::parse_index(&name.as_encoded_bytes()[prefix.len()..])
        {
            indexes.push(index);
        }
    }
    stamped.sort_by_key(|archive| (archive.time, archive.counter, archive.compressed));
    let stamped_any = !stamped.is_empty();
    let mut unplaced = Vec::new();
    let mut placed = Vec::new();
    let mut last: Option<(i64, u32)> = None;
    for archive in stamped {
        let entry = log.dir.entry(&archive.name)?;
        let bytes = entry.as_ref().map_or(0, |entry| entry.len);
        let written = entry.map_or((archive.time, 0), |e| (e.modified, e.modified_nanos));
        let key = Some((archive.time, archive.counter));
        let future = archive.time > now.saturating_add(FUTURE_TOLERANCE);
        let list: &mut Vec<Kept> = if future { &mut unplaced } else { &mut placed };
        match list.last_mut() {
            Some(same) if last == key => {
                same.names.push(archive.name);
                same.bytes = same.bytes.max(bytes);
            }
            _ => list.push(Kept {
                names: vec![archive.name],
                time: aged_from(archive.time),
                bytes,
                form: if future {
                    Form::Unplaced
                } else {
                    Form::Timestamped
                },
                written,
            }),
        }
        last = key;
    }
    // Numbered archives oldest first: the highest number first.
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    let mut numbered = Vec::with_capacity(indexes.len());
    let numbered_stats = numbered_stats || stamped_any;
    for index in indexes {
        let name = numbered::archive_name(log.name, index);
        let entry = match numbered_stats {
            true => log.dir.entry(&name)?,
            false => None,
        };
        numbered.push(Kept {
            names: vec![name],
            time: entry.map_or(now, |entry| entry.modified),
            bytes: entry.map_or(0, |entry| entry.len),
            form: Form::Numbered(index),
            written: entry.map_or((now, 0), |e| (e.modified, e.modified_nanos)),
        });
    }
    unplaced.extend(merge_oldest_first(placed, numbered));
    Ok(unplaced)
}

/// Two lists, each oldest first in its own order, merged by last write: each keeps its
/// order (a numbered archive's number is its age rank, even when its time says otherwise).
fn merge_oldest_first(a: Vec<Kept>, b: Vec<Kept>) -> Vec<Kept> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.written <= y.written,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return merged,
        };
        merged.extend(if take_a { a.next() } else { b.next() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotation::retention::how_many_to_delete;
    use crate::rotation::retention::tests::limits;
    use std::time::Duration;

    /// While a compression is being finished an archive is there twice, plain and
    /// `.gz`: it counts once.
    #[test]
    fn an_archive_and_its_compressed_copy_count_as_one() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "app.log.2026-11-27T14-00-00Z",
            "app.log.2026-11-27T14-00-00Z.gz",
            "app.log.2026-11-27T15-00-00Z",
        ] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let kept = listed(dir.path(), 1_800_000_000);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(kept[0].names.len(), 2);
        assert_eq!(
            kept[0].bytes,
            "app.log.2026-11-27T14-00-00Z.gz".len() as u64
        );
    }

    /// The archives of `app.log` in `dir`, as retention lists them at `now`.
    fn listed(dir: &std::path::Path, now: i64) -> Vec<Kept> {
        let handle = crate::platform::Dir::open(dir).unwrap();
        let path = dir.join("app.log");
        let log = LogName {
            dir: &handle,
            name: std::ffi::OsStr::new("app.log"),
            path: &path,
        };
        all_archives(log, &|stamp| stamp, now).unwrap()
    }

    fn file_at(dir: &std::path::Path, name: &str, modified: i64) {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        let at = std::time::UNIX_EPOCH + Duration::from_secs(modified as u64);
        file.set_modified(at).unwrap();
    }

    /// Numbered archives in their numbers' order, timestamped ones in their stamps',
    /// merged by last write; a stamp more than an hour ahead of the clock first.
    #[test]
    fn both_namings_are_listed_together_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = super::super::period::parse_stamp(b"2026-11-27T14-00-00Z").unwrap();
        file_at(dir.path(), "app.log.2", now - 400);
        file_at(dir.path(), "app.log.2026-11-27T13-55-00Z", now - 300);
        file_at(dir.path(), "app.log.1", now - 200);
        file_at(dir.path(), "app.log.2026-11-27T13-58-20Z", now - 100);
        file_at(dir.path(), "app.log.2026-11-27T17-00-00Z", now);
        file_at(dir.path(), "app.log.2026-11-27T14-30-00Z", now);
        let kept = listed(dir.path(), now);
        let names: Vec<&str> = kept.iter().map(|k| k.names[0].to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "app.log.2026-11-27T17-00-00Z",
                "app.log.2",
                "app.log.2026-11-27T13-55-00Z",
                "app.log.1",
                "app.log.2026-11-27T13-58-20Z",
                "app.log.2026-11-27T14-30-00Z",
            ]
        );
        assert_eq!(kept[0].form, Form::Unplaced);
        assert_eq!(kept[1].form, Form::Numbered(2));
        // max_files counts all six.
        assert_eq!(how_many_to_delete(&kept, &limits(4, None, None), now), 2);
    }
}
