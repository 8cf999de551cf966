//! Timestamped archives: `app.log` rotates to `app.log.2026-11-27T14-00-00Z`, a name it
//! keeps for good, so a rotation is one rename whatever the number of archives kept.
//!
//! The stamp is in UTC without colons, so that sorting names sorts archives by time to
//! the second. More rotations in the same second add a counter (`…Z.1`), which orders
//! them as a number; compression adds `.gz` after it.

use std::ffi::{OsStr, OsString};
use std::io;

use super::LogName;
use super::period::{parse_stamp, stamp};

/// One timestamped archive, as its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Archive {
    pub(crate) name: OsString,
    /// Seconds since the Unix epoch, from the stamp.
    pub(crate) time: i64,
    /// The counter after the stamp; 0 when there is none.
    pub(crate) counter: u32,
    pub(crate) compressed: bool,
}

impl Archive {
    /// The age order: by stamp, then by counter.
    #[cfg(feature = "compress")]
    fn key(&self) -> (i64, u32, bool) {
        (self.time, self.counter, self.compressed)
    }
}

/// Parses `<log name>.<stamp>[.<counter>][.gz]`; `None` for any other name.
pub(crate) fn parse(log_name: &OsStr, name: &OsStr) -> Option<Archive> {
    let rest = name
        .as_encoded_bytes()
        .strip_prefix(log_name.as_encoded_bytes())?
        .strip_prefix(b".")?;
    let (rest, compressed) = match rest.strip_suffix(b".gz") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let (stamp, counter) = match rest.get(20..) {
        Some([]) => (rest, 0),
        Some([b'.', digits @ ..]) => (&rest[..20], parse_counter(digits)?),
        _ => return None,
    };
    Some(Archive {
        name: name.to_os_string(),
        time: parse_stamp(stamp)?,
        counter,
        compressed,
    })
}

fn parse_counter(digits: &[u8]) -> Option<u32> {
    if digits.first().is_none_or(|&d| d == b'0') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The archive name for a rotation at `time` with `counter` (0 for none).
pub(super) fn name_for(log_name: &OsStr, time: i64, counter: u32) -> OsString {
    let mut name = log_name.to_os_string();
    name.push(".");
    name.push(stamp(time));
    if counter > 0 {
        name.push(format!(".{counter}"));
    }
    name
}

/// The stamp and counter of the next archive, after the newest one so far: a name is
/// never given twice, not even one that retention has deleted since (the archive would
/// then sort as older than it is), and names never go back in time, even when the clock
/// does.
pub(crate) fn next_name(time: i64, newest: Option<(i64, u32)>) -> (i64, u32) {
    match newest {
        Some((stamp, counter)) if time <= stamp => match counter.checked_add(1) {
            Some(counter) => (stamp, counter),
            None => (stamp.saturating_add(1), 0),
        },
        _ => (time, 0),
    }
}

/// Renames the live file to the archive name `(time, counter)`, or the first one after it
/// that no file takes, plain or compressed; returns the one it took.
pub(crate) fn rotate(log: LogName<'_>, time: i64, counter: u32) -> io::Result<(i64, u32)> {
    let (mut time, mut counter) = (time, counter);
    loop {
        let name = name_for(log.name, time, counter);
        let mut compressed = name.clone();
        compressed.push(".gz");
        if log.dir.entry(&name)?.is_none() && log.dir.entry(&compressed)?.is_none() {
            match log.dir.rename_exclusive(log.name, &name) {
                // Taken since it was looked at: try the next counter.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                result => return result.map(|()| (time, counter)),
            }
        }
        (time, counter) = next_name(time, Some((time, counter)));
    }
}

/// The archives of this log, oldest first. Only names of this exact form count, so a
/// file that merely looks alike is never moved or deleted; nor is anything at such a
/// name that is not a file or a link, nor a name stamped before 2000 or far ahead of the
/// clock (see [`FUTURE_TOLERANCE`](super::period::FUTURE_TOLERANCE)).
#[cfg(feature = "compress")]
pub(crate) fn list(log: LogName<'_>) -> io::Result<Vec<Archive>> {
    use super::period::{is_plausible_time, unix_now};
    use crate::platform::Kind;
    let now = unix_now();
    let mut prefix = log.name.as_encoded_bytes().to_vec();
    prefix.push(b'.');
    let mut archives: Vec<Archive> = log
        .dir
        .list(&prefix)?
        .into_iter()
        .filter(|(_, kind)| matches!(kind, Kind::File | Kind::Symlink))
        .filter_map(|(name, _)| parse(log.name, &name))
        .filter(|archive| is_plausible_time(archive.time, now))
        .collect();
    archives.sort_by_key(Archive::key);
    Ok(archives)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(name: &str) -> Option<(i64, u32, bool)> {
        parse(OsStr::new("app.log"), OsStr::new(name)).map(|a| (a.time, a.counter, a.compressed))
    }

    #[test]
    fn parses_exactly_the_names_it_makes() {
        let t = parse_stamp(b"2026-11-27T14-00-00Z").unwrap();
        assert_eq!(parsed("app.log.2026-11-27T14-00-00Z"), Some((t, 0, false)));
        assert_eq!(
            parsed("app.log.2026-11-27T14-00-00Z.1"),
            Some((t, 1, false))
        );
        assert_eq!(
            parsed("app.log.2026-11-27T14-00-00Z.12.gz"),
            Some((t, 12, true))
        );
        assert_eq!(
            parsed("app.log.2026-11-27T14-00-00Z.gz"),
            Some((t, 0, true))
        );
        for other in [
            "app.log",
            "app.log.1",
            "app.log.bak",
            "app.log.2026-01-01.txt",
            "app.log.2026-11-27T14-00-00Z.0",
            "app.log.2026-11-27T14-00-00Z.01",
            "app.log.2026-11-27T14-00-00Z.gz.1",
            "app.log.2026-11-27T14-00-00Z.1x",
            "app.log.2026-11-27T14-00-00Zx",
            "other.log.2026-11-27T14-00-00Z",
            ".app.log.2026-11-27T14-00-00Z.gz.123.tmp",
        ] {
            assert_eq!(parsed(other), None, "{other}");
        }
    }

    #[test]
    fn the_next_name_comes_after_the_newest() {
        assert_eq!(next_name(100, None), (100, 0));
        assert_eq!(next_name(100, Some((99, 3))), (100, 0));
        assert_eq!(next_name(100, Some((100, 0))), (100, 1));
        assert_eq!(next_name(100, Some((100, 7))), (100, 8));
        // A clock that went back: still after the newest.
        assert_eq!(next_name(90, Some((100, 2))), (100, 3));
    }

    #[test]
    fn names_sort_in_time_order() {
        let t = parse_stamp(b"2026-11-27T14-00-00Z").unwrap();
        let log = OsStr::new("app.log");
        let names = [
            name_for(log, t, 0),
            name_for(log, t, 1),
            name_for(log, t, 2),
            name_for(log, t + 1, 0),
        ];
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, names);
    }
}
