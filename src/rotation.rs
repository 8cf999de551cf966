//! Size rotation and the names of rotated files.
//!
//! `app.log` rotates to `app.log.1` (newest) and the older archives shift up to
//! `app.log.<max_files>`; whatever would fall beyond is deleted. Rotation runs only under
//! the inter-process lock, so exactly one process performs each one.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// The path of the `index`-th newest rotated file: `app.log` → `app.log.<index>`.
pub(crate) fn archive_path(log_path: &Path, index: usize) -> PathBuf {
    let mut name = OsString::from(log_path.as_os_str());
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// Whether `incoming` bytes can be appended to a file of `current_len` bytes without
/// taking it past `max_bytes`.
pub(crate) fn fits(current_len: u64, incoming: usize, max_bytes: u64) -> bool {
    current_len.saturating_add(incoming as u64) <= max_bytes
}

/// Renames the live file to `.1` after shifting the archives in its way up by one.
///
/// Only the run of archives from `.1` up to the first free number moves, newest last, so
/// a gap left by a rotation that was killed half-way is filled rather than overwritten.
/// When the run reaches `max_files`, the oldest archive is deleted to make room. A live
/// file that is already gone (an operator moved it) is not an error.
pub(crate) fn rotate(log_path: &Path, max_files: usize) -> io::Result<()> {
    let mut free = 1;
    while free <= max_files && slot_taken(&archive_path(log_path, free))? {
        free += 1;
    }
    if free > max_files {
        remove_if_exists(&archive_path(log_path, max_files))?;
        free = max_files;
    }
    for index in (1..free).rev() {
        rename_if_exists(
            &archive_path(log_path, index),
            &archive_path(log_path, index + 1),
        )?;
    }
    rename_if_exists(log_path, &archive_path(log_path, 1))
}

/// Whether an archive name is in use. Anything there but a file or a link to one (a
/// directory, say) is not ours to move or delete, so rotation stops with an error.
fn slot_taken(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() || metadata.file_type().is_symlink() => Ok(true),
        Ok(_) => Err(io::Error::other(format!(
            "`{}` is in the way of rotation and is not a regular file; remove or rename it",
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_append_the_index() {
        assert_eq!(
            archive_path(Path::new("/var/log/app.log"), 3),
            PathBuf::from("/var/log/app.log.3")
        );
    }

    #[test]
    fn fitting_counts_the_incoming_bytes() {
        assert!(fits(60, 40, 100), "exactly full is allowed");
        assert!(!fits(60, 41, 100));
        assert!(!fits(0, 101, 100));
        assert!(!fits(u64::MAX, 1, 100), "no overflow");
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

        rotate(&log, 3).unwrap();

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

        rotate(&log, 5).unwrap();

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

        let err = rotate(&log, 5).unwrap_err();

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

        rotate(&log, 5).unwrap();

        assert_eq!(read(1), "live");
        assert_eq!(read(2), "two");
        assert!(!archive_path(&log, 3).exists());
    }
}
