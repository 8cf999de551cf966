//! Numbered archives: `app.log` rotates to `app.log.1` (newest), and older archives move
//! up by one, to `app.log.<max_files>` at most.
//!
//! Every rotation renames every archive it keeps, so its cost grows with `max_files`.
//!
//! An archive's number is its age rank, and rotation keeps it so whatever it finds: gaps
//! left by a rotation that was killed half-way, or archives beyond `max_files` kept by a
//! process configured with more. It never deletes an archive while keeping an older one,
//! and never renames onto a name in use.
//!
//! Archives are looked up by number under the lock, never by listing the directory: an
//! archive numbered beyond [`GAP_TOLERANCE`] missing numbers in a row is not seen (no
//! rotation leaves such a gap; only another program can make one).

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

use super::LogName;
use super::retention::{Form, Kept, Limits, how_many_to_delete};
use crate::platform::Kind;

/// The path of the `index`-th newest rotated file: `app.log` → `app.log.<index>`.
pub(crate) fn archive_path(log_path: &Path, index: usize) -> PathBuf {
    let mut name = OsString::from(log_path.as_os_str());
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// The name of the `index`-th newest rotated file.
pub(super) fn archive_name(log_name: &OsStr, index: usize) -> OsString {
    let mut name = log_name.to_os_string();
    name.push(format!(".{index}"));
    name
}

/// Renames the live file to `.1`, renumbering the archives it keeps to `.2`, `.3`, … in
/// age order, and deleting (oldest first) the ones that the limits do not keep: beyond
/// `max_files`, older than `max_age` (by last modification), or beyond `max_total_bytes`.
///
/// Anything at an archive name that is not a file or a link (a directory, say) is not
/// ours to move or delete: if the rotation would need its name, it stops with an error
/// before touching anything.
pub(crate) fn rotate(log: LogName<'_>, limits: &Limits, now: i64) -> io::Result<()> {
    let Archives { files, obstacles } = existing_archives(log)?;
    let keep = files.len() - doomed(log, &files, limits, now)?.min(files.len());
    let (kept, beyond) = files.split_at(keep);
    let target = |position: usize| position + 2;
    if let Some(&blocked) = obstacles
        .iter()
        .find(|&&index| index == 1 || (0..keep).any(|j| target(j) == index))
    {
        return Err(io::Error::other(format!(
            "`{}` is in the way of rotation and is not a regular file; remove or rename it",
            archive_path(log.path, blocked).display()
        )));
    }
    // Never onto a name in use: if two processes ever rotate at once (the lock file was
    // deleted under them), one of them fails and reports, rather than overwrite an archive.
    let rename = |from: usize, to: usize| {
        log.dir
            .rename_exclusive(&archive_name(log.name, from), &archive_name(log.name, to))
    };
    for &index in beyond.iter().rev() {
        log.dir.remove_if_there(&archive_name(log.name, index))?;
    }
    // Moves down (into gaps) go youngest first and moves up oldest first, so that every
    // rename lands on a free name.
    for (position, &index) in kept.iter().enumerate() {
        if index > target(position) {
            rename(index, target(position))?;
        }
    }
    for (position, &index) in kept.iter().enumerate().rev() {
        if index < target(position) {
            rename(index, target(position))?;
        }
    }
    log.dir
        .rename_exclusive(log.name, &archive_name(log.name, 1))
}

/// How many of the existing archives `files` (newest first) the limits delete, counting
/// the live file as the newest archive it is about to become. Only numbered archives are
/// known here (no listing under the lock): the timestamped ones of the same log count in
/// the sweep that follows the rotation (see [`sweep`](super::sweep)).
fn doomed(log: LogName<'_>, files: &[usize], limits: &Limits, now: i64) -> io::Result<usize> {
    // The live file takes one of the `max_files` places.
    let by_count = files
        .len()
        .saturating_sub(limits.max_files.saturating_sub(1));
    if limits.max_age.is_none() && limits.max_total_bytes.is_none() {
        return Ok(by_count);
    }
    let mut oldest_first = Vec::with_capacity(files.len() + 1);
    for (name, form) in files
        .iter()
        .rev()
        .map(|&index| (archive_name(log.name, index), Form::Numbered(index)))
        .chain(std::iter::once((log.name.to_os_string(), Form::Live)))
    {
        let entry = log.dir.entry(&name)?;
        oldest_first.push(Kept {
            time: entry.map_or(now, |entry| entry.modified),
            bytes: entry.map_or(0, |entry| entry.len),
            names: vec![name],
            form,
            written: entry.map_or((now, 0), |e| (e.modified, e.modified_nanos)),
        });
    }
    // The live file is not deleted by its own rotation, whatever the limits say.
    let doomed = how_many_to_delete(&oldest_first, limits, now).min(files.len());
    Ok(doomed.max(by_count))
}

/// The archive numbers in use, ascending: `files` are files or links (ours to move),
/// `obstacles` anything else.
struct Archives {
    files: Vec<usize>,
    obstacles: Vec<usize>,
}

/// How many numbers in a row may be missing before the look-up of archives stops. A
/// rotation killed half-way leaves a gap of one; processes with a larger `max_files`
/// keep their archives in one run.
pub(crate) const GAP_TOLERANCE: usize = 16;

/// Looks the archives up by number, `app.log.1`, `app.log.2`, …, until
/// [`GAP_TOLERANCE`] numbers in a row are missing: one `fstatat` per archive and a few
/// more, under the lock, and never a listing of the directory, whose length is anybody's.
fn existing_archives(log: LogName<'_>) -> io::Result<Archives> {
    let mut archives = Archives {
        files: Vec::new(),
        obstacles: Vec::new(),
    };
    let (mut index, mut missing) = (1, 0);
    while missing < GAP_TOLERANCE {
        match log.dir.entry(&archive_name(log.name, index))? {
            Some(entry) => {
                missing = 0;
                match entry.kind {
                    Kind::File | Kind::Symlink => archives.files.push(index),
                    Kind::Directory | Kind::Other => archives.obstacles.push(index),
                }
            }
            None => missing += 1,
        }
        index += 1;
    }
    Ok(archives)
}

/// `7` from `b"7"`; `None` for anything that is not a number this naming writes
/// (`0`, `01`, `1x`, `1.gz`).
pub(super) fn parse_index(digits: &[u8]) -> Option<usize> {
    if digits.first().is_none_or(|&d| d == b'0') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Dir;

    fn rotate_path(log: &Path, max_files: usize) -> io::Result<()> {
        let dir = Dir::open(log.parent().unwrap()).unwrap();
        let name = log.file_name().unwrap();
        let limits = Limits {
            max_files,
            max_age: None,
            max_total_bytes: None,
            schedule: None,
        };
        rotate(
            LogName {
                dir: &dir,
                name,
                path: log,
            },
            &limits,
            0,
        )
    }

    #[test]
    fn archive_names_append_the_index() {
        assert_eq!(
            archive_path(Path::new("/var/log/app.log"), 3),
            PathBuf::from("/var/log/app.log.3")
        );
    }

    #[test]
    fn rotate_shifts_oldest_first_and_drops_beyond_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let write = |p: &Path, s: &str| std::fs::write(p, s).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        write(&log, "live");
        write(&archive_path(&log, 1), "one");
        write(&archive_path(&log, 2), "two");
        write(&archive_path(&log, 3), "three");

        rotate_path(&log, 3).unwrap();

        assert!(!log.exists());
        assert_eq!(read(&archive_path(&log, 1)), "live");
        assert_eq!(read(&archive_path(&log, 2)), "one");
        assert_eq!(read(&archive_path(&log, 3)), "two");
        assert!(!archive_path(&log, 4).exists());
    }

    #[test]
    fn rotate_fills_a_gap_without_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let read = |index| std::fs::read_to_string(archive_path(&log, index)).unwrap();
        // A rotation killed after moving .2 to .3 left a gap at .2.
        std::fs::write(&log, "live").unwrap();
        std::fs::write(archive_path(&log, 1), "one").unwrap();
        std::fs::write(archive_path(&log, 3), "old").unwrap();

        rotate_path(&log, 5).unwrap();

        assert_eq!(read(1), "live");
        assert_eq!(read(2), "one");
        assert_eq!(read(3), "old");
        assert!(!archive_path(&log, 4).exists());
    }

    #[test]
    fn a_directory_in_the_chain_stops_rotation_without_moving_anything() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "live").unwrap();
        std::fs::write(archive_path(&log, 1), "one").unwrap();
        std::fs::create_dir(archive_path(&log, 2)).unwrap();

        let err = rotate_path(&log, 5).unwrap_err();

        assert!(err.to_string().contains("app.log.2"), "{err}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "live");
        assert_eq!(
            std::fs::read_to_string(archive_path(&log, 1)).unwrap(),
            "one"
        );
        assert!(archive_path(&log, 2).is_dir());
    }

    #[test]
    fn rotate_after_a_kill_before_the_last_rename_fills_slot_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let read = |index| std::fs::read_to_string(archive_path(&log, index)).unwrap();
        std::fs::write(&log, "live").unwrap();
        std::fs::write(archive_path(&log, 2), "two").unwrap();

        rotate_path(&log, 5).unwrap();

        assert_eq!(read(1), "live");
        assert_eq!(read(2), "two");
        assert!(!archive_path(&log, 3).exists());
    }

    #[test]
    fn only_names_this_naming_writes_are_archives() {
        assert_eq!(parse_index(b"1"), Some(1));
        assert_eq!(parse_index(b"470"), Some(470));
        for other in [&b""[..], b"0", b"01", b"1x", b"1.gz", b"-1", b" 1"] {
            assert_eq!(
                parse_index(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn look_alikes_are_never_moved_or_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let look_alikes = [
            "app.log.bak",
            "app.log.01",
            "app.log.1x",
            "other.log.1",
            "app.log.lock",
        ];
        for name in look_alikes {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        for round in 0..4 {
            std::fs::write(&log, format!("live {round}")).unwrap();
            rotate_path(&log, 2).unwrap();
        }
        for name in look_alikes {
            assert_eq!(
                std::fs::read_to_string(dir.path().join(name)).unwrap(),
                name
            );
        }
        assert_eq!(
            std::fs::read_to_string(archive_path(&log, 1)).unwrap(),
            "live 3"
        );
        assert_eq!(
            std::fs::read_to_string(archive_path(&log, 2)).unwrap(),
            "live 2"
        );
        assert!(!archive_path(&log, 3).exists());
    }

    #[test]
    fn archives_beyond_gaps_and_beyond_max_files_keep_their_age_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        // Kept by a process with a larger max_files, with gaps left by killed rotations.
        for index in [1, 2, 4, 7, 8] {
            std::fs::write(archive_path(&log, index), index.to_string()).unwrap();
        }
        std::fs::write(&log, "live").unwrap();

        rotate_path(&log, 4).unwrap();

        let read = |index| std::fs::read_to_string(archive_path(&log, index)).unwrap();
        assert_eq!(
            [read(1), read(2), read(3), read(4)],
            ["live", "1", "2", "4"]
        );
        for index in 5..=9 {
            assert!(
                !archive_path(&log, index).exists(),
                "app.log.{index} is left"
            );
        }
    }
}
