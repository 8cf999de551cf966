//! The process's handle on the live log file: opening it safely, noticing when the path
//! no longer names it, and appending all of an append or nothing torn.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;

use crate::lock::WriteIntent;
use crate::platform::{self, Access, Dir, FileId};

/// An append-mode handle on the log file, remembering which file it opened.
///
/// Another process may rotate the file, or an operator may move or delete it, at any time.
/// [`LogHandle::is_stale`] tells, by device and inode, whether the path still names the
/// file this handle writes to.
#[derive(Debug)]
pub(crate) struct LogHandle {
    file: File,
    id: FileId,
}

/// An append that failed part of the way.
#[derive(Debug)]
pub(crate) struct FailedAppend {
    pub(crate) error: io::Error,
    /// Events of the append that reached the file whole and stay there.
    pub(crate) events_kept: usize,
    /// Bytes of those events.
    pub(crate) bytes_kept: u64,
    /// Whether the rest was cut off; if not, a partial event may still be at the end of
    /// the file, for the next lock holder to repair.
    pub(crate) cut_back: bool,
}

impl LogHandle {
    /// Opens `name` in `dir` for appending, creating it if missing (with exactly the
    /// permission bits `mode` if given).
    ///
    /// A symbolic link at the name is refused, never followed: `build()` resolved the
    /// path once, and a link that appears later could point at any file. So is anything
    /// that rotation must not move (a FIFO, a device) and a file with other hard links,
    /// which would be written through to another file.
    pub(crate) fn open(dir: &Dir, name: &OsStr, mode: Option<u32>) -> io::Result<Self> {
        let opened = dir.open_or_create(name, Access::APPEND_CREATE, mode);
        let file = opened.map_err(|e| {
            if platform::is_symlink_refusal(&e) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the log path is now a symbolic link; refusing to follow it",
                )
            } else {
                crate::log_dir::explain_access(dir, name, e)
            }
        })?;
        let metadata = platform::metadata(&file)?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (a device, FIFO or socket cannot be rotated)",
            ));
        }
        let links = platform::hard_links(&metadata);
        if links > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the log file has {links} hard links; refusing to write through to another file"
                ),
            ));
        }
        platform::make_blocking(&file)?;
        Ok(LogHandle {
            file,
            id: FileId::of(&metadata),
        })
    }

    /// Creates a fresh, empty log file under a hidden temporary name in `dir` (with
    /// exactly the permission bits `mode` if given), for a rotation to put in place once
    /// the live file is renamed away: if it cannot be created (no descriptor left, say),
    /// the rotation has not begun. Returns the handle and the temporary name.
    pub(crate) fn create_fresh(dir: &Dir, mode: Option<u32>) -> io::Result<(Self, OsString)> {
        let (file, temporary) = dir.create_temporary(Access::APPEND_CREATE, mode)?;
        let made = platform::metadata(&file).and_then(|metadata| {
            platform::make_blocking(&file)?;
            Ok(FileId::of(&metadata))
        });
        match made {
            Ok(id) => Ok((LogHandle { file, id }, temporary)),
            Err(error) => {
                let _ = dir.remove(&temporary);
                Err(error)
            }
        }
    }

    /// The descriptor, for the fork handlers.
    #[cfg(unix)]
    pub(crate) fn raw_fd(&self) -> platform::RawFd {
        platform::raw_fd(&self.file)
    }

    pub(crate) fn id(&self) -> FileId {
        self.id
    }

    /// Whether `name` in `dir` no longer names the file this handle points at. A missing
    /// name, or a symbolic link now at the name, counts as stale.
    pub(crate) fn is_stale(&self, dir: &Dir, name: &OsStr) -> io::Result<bool> {
        Ok(dir.entry(name)?.is_none_or(|entry| entry.id != self.id))
    }

    /// When the file was last modified, in seconds since the Unix epoch.
    pub(crate) fn modified(&self) -> io::Result<i64> {
        Ok(crate::rotation::unix_seconds(
            platform::metadata(&self.file)?.modified()?,
        ))
    }

    /// The file's current size, from the kernel (one `lseek(2)`).
    pub(crate) fn len(&self) -> io::Result<u64> {
        platform::end_of_file(&self.file)
    }

    /// Appends `chunk`, whose events end at the offsets `event_ends` minus `base`
    /// (ascending, the last one `base + chunk.len()`). Callers hold the lock.
    ///
    /// After a failed or short write (a full disk), the events that reached the file whole
    /// stay and whatever part of the next one got there is cut off, so no partial line is
    /// left for the next append to glue onto. Where to cut is measured from the kernel's
    /// length, never from a cached one.
    pub(crate) fn append(
        &self,
        chunk: &[u8],
        event_ends: &[usize],
        base: usize,
    ) -> Result<(), FailedAppend> {
        let mut written = 0;
        while written < chunk.len() {
            let error = match platform::retry_interrupted(|| {
                platform::append(&self.file, &chunk[written..])
            }) {
                Ok(0) => io::ErrorKind::WriteZero.into(),
                Ok(n) => {
                    written += n;
                    continue;
                }
                Err(error) => error,
            };
            let (events_kept, bytes_kept) = whole_events(event_ends, base, written);
            return Err(self.cut_back(error, written, events_kept, bytes_kept));
        }
        Ok(())
    }

    fn cut_back(
        &self,
        error: io::Error,
        written: usize,
        events_kept: usize,
        bytes_kept: usize,
    ) -> FailedAppend {
        let cut_back = self.len().is_ok_and(|len| {
            // Under the lock nobody else appended: the last `written` bytes are ours.
            let Some(before) = len.checked_sub(written as u64) else {
                return false;
            };
            let keep = before + bytes_kept as u64;
            len == keep || platform::retry_interrupted(|| self.file.set_len(keep)).is_ok()
        });
        FailedAppend {
            error,
            events_kept,
            bytes_kept: bytes_kept as u64,
            cut_back,
        }
    }

    /// Cuts off what remains of an append that a killed process started on this file and
    /// did not finish. Returns whether anything was cut.
    ///
    /// The length the intent records was the kernel's when the append began, so the cut
    /// takes off exactly the unfinished append, all of it: an event is in the file whole
    /// or not at all, and whatever was whole before stays.
    pub(crate) fn repair(&self, intent: &WriteIntent) -> io::Result<bool> {
        if intent.file != self.id {
            return Ok(false);
        }
        let len = self.len()?;
        // A shorter file was cut by another program since, and a longer one holds the
        // whole append (it died after writing it): nothing to cut either way.
        if len <= intent.len_before || len >= intent.len_before.saturating_add(intent.len) {
            return Ok(false);
        }
        if platform::retry_interrupted(|| self.file.set_len(intent.len_before)).is_err() {
            // An append-only file cannot be cut: end the partial line instead, so it
            // stays one garbled line and the next event starts on a line of its own.
            platform::append(&self.file, b"\n")?;
        }
        Ok(true)
    }
}

/// How many of the events ending at `event_ends` (offsets from `base`) lie whole in the
/// first `written` bytes, and how many bytes they take.
fn whole_events(event_ends: &[usize], base: usize, written: usize) -> (usize, usize) {
    let events = event_ends.partition_point(|&end| end - base <= written);
    let bytes = events
        .checked_sub(1)
        .map_or(0, |last| event_ends[last] - base);
    (events, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir) -> (Dir, LogHandle) {
        let directory = Dir::open(dir.path()).unwrap();
        let handle = LogHandle::open(&directory, OsStr::new("app.log"), None).unwrap();
        (directory, handle)
    }

    fn intent(handle: &LogHandle, len_before: u64, len: u64) -> WriteIntent {
        WriteIntent {
            file: handle.id(),
            len_before,
            len,
        }
    }

    #[test]
    fn a_repair_cuts_exactly_an_unfinished_append_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (_directory, handle) = open(&dir);
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"whole\npart").unwrap();

        // Nothing of the append arrived.
        assert!(!handle.repair(&intent(&handle, 10, 8)).unwrap());
        // The whole append arrived: the writer died after writing it.
        assert!(!handle.repair(&intent(&handle, 6, 4)).unwrap());
        // The file was cut behind our back: nothing to cut.
        assert!(!handle.repair(&intent(&handle, 20, 8)).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"whole\npart");
        // A part of it arrived.
        assert!(handle.repair(&intent(&handle, 6, 5)).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"whole\n");
    }

    #[test]
    fn a_repair_leaves_another_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (_directory, handle) = open(&dir);
        std::fs::write(dir.path().join("app.log"), b"whole\npart").unwrap();
        let other = WriteIntent {
            file: FileId { dev: 0, ino: 0 },
            len_before: 6,
            len: 5,
        };
        assert!(!handle.repair(&other).unwrap());
        assert_eq!(
            std::fs::read(dir.path().join("app.log")).unwrap(),
            b"whole\npart"
        );
    }

    #[test]
    fn whole_events_are_counted_from_the_start_of_the_chunk() {
        // A chunk of a batch starting at offset 8, with events ending at 12, 16 and 22.
        let ends = [12, 16, 22];
        assert_eq!(whole_events(&ends, 8, 0), (0, 0));
        assert_eq!(whole_events(&ends, 8, 3), (0, 0));
        assert_eq!(whole_events(&ends, 8, 4), (1, 4));
        assert_eq!(whole_events(&ends, 8, 11), (2, 8));
        assert_eq!(whole_events(&ends, 8, 14), (3, 14));
    }

    #[test]
    fn a_failed_append_keeps_the_events_that_arrived_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (_directory, handle) = open(&dir);
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"earlier\none\ntwo\nthr").unwrap();
        // The chunk "one\ntwo\nthree\n" began at offset 8 of the batch buffer (its
        // events end at 12, 16 and 22) and 11 of its bytes got there.
        let failed = handle.cut_back(io::ErrorKind::StorageFull.into(), 11, 2, 8);
        assert_eq!((failed.events_kept, failed.bytes_kept), (2, 8));
        assert!(failed.cut_back);
        assert_eq!(std::fs::read(&path).unwrap(), b"earlier\none\ntwo\n");
    }
}
