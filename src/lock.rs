//! The inter-process lock: an exclusive `flock(2)` on a side file next to the log.
//!
//! The lock lives on its own file because rotation renames the log file: a lock on the
//! log itself would stop excluding anyone the moment it was renamed. Rotation never
//! renames or deletes the lock file.
//!
//! The lock file's first page is also mapped shared into every process. The lock holder
//! records there the append it is about to make, so that if it is killed half-way, the
//! next holder can cut the partial line off.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Acquire, Release};

use crate::platform::{FileId, SharedPage};

/// Words of the shared page; all are read and written only under the flock, whose system
/// calls order them between processes, so acquire and release are all they need.
const INTENT_ACTIVE: usize = 0;
const INTENT_DEV: usize = 1;
const INTENT_INO: usize = 2;
const INTENT_LEN_BEFORE: usize = 3;
const INTENT_LEN: usize = 4;
/// The live file as the last lock holder left it: device, inode and length. A holder
/// whose handle is that file trusts the length instead of asking the kernel, and one
/// whose handle is not knows at once that a peer rotated. Device and inode 0 mean unknown.
const LIVE_DEV: usize = 5;
const LIVE_INO: usize = 6;
const LIVE_LEN: usize = 7;

/// The side lock file of one log file, held open for the life of a
/// [`SharedFile`](crate::SharedFile) (and reopened after a fork).
///
/// flock belongs to the open file description, which all threads of a process share, so
/// this lock excludes other processes only: callers serialise their own threads first.
#[derive(Debug)]
pub(crate) struct LockFile {
    // Declared before `file` so it is unmapped before the file closes.
    page: SharedPage,
    file: File,
    id: FileId,
}

/// An append that a lock holder announced and never finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteIntent {
    pub(crate) file: FileId,
    pub(crate) len_before: u64,
    pub(crate) len: u64,
}

impl LockFile {
    /// The lock file's path for a log path: `app.log` locks through `app.log.lock`.
    pub(crate) fn path_for(log_path: &Path) -> PathBuf {
        let mut name = OsString::from(log_path.as_os_str());
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Opens (creating it, and its directory, if missing) the lock file at `path`.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        // Write access is what mapping the page needs; flock itself needs none.
        let file = crate::handle::open_creating_dirs(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )?;
        // Idempotent, so processes racing here all end with the same file; and it makes
        // a full disk an error now rather than a SIGBUS at the first store to the page.
        crate::platform::allocate(&file, SharedPage::LEN as u64)?;
        let metadata = file.metadata()?;
        let page = SharedPage::map(&file)?;
        Ok(LockFile {
            page,
            file,
            id: FileId::of(&metadata),
        })
    }

    /// Takes the lock if no one holds it; `false` if someone does.
    pub(crate) fn try_acquire(&self) -> io::Result<bool> {
        match self.file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }

    /// Blocks until this process holds the lock on this file exclusively.
    pub(crate) fn acquire(&self) -> io::Result<()> {
        self.file.lock()
    }

    pub(crate) fn release(&self) {
        // An unlock can only fail on a bad descriptor, and closing the file would release
        // the lock anyway; nothing useful can be done with the error here.
        let _ = self.file.unlock();
    }

    /// Whether `path` still names this lock file, and the file is long enough to touch
    /// its shared page. An operator may delete it (processes that reopen by name would
    /// then lock a different file) or truncate it (touching the page would then fault).
    pub(crate) fn is_current(&self, path: &Path) -> io::Result<bool> {
        match std::fs::metadata(path) {
            Ok(metadata) if FileId::of(&metadata) == self.id => {
                if metadata.len() < SharedPage::LEN as u64 {
                    crate::platform::allocate(&self.file, SharedPage::LEN as u64)?;
                }
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether this lock file still has a name, after making sure it is long enough to
    /// touch its shared page. Cheap enough for every write: a deleted lock file must be
    /// noticed before processes started since then lock a new one, and a truncated one
    /// before the page is touched (which would fault).
    pub(crate) fn is_linked(&self) -> io::Result<bool> {
        let status = crate::platform::links_and_len(&self.file)?;
        if status.len < SharedPage::LEN as u64 {
            crate::platform::allocate(&self.file, SharedPage::LEN as u64)?;
        }
        Ok(status.links > 0)
    }

    /// Announces an append; call only while holding the lock.
    pub(crate) fn begin_write(&self, intent: WriteIntent) {
        let word = |i| self.page.word(i);
        word(INTENT_DEV).store(intent.file.dev, Release);
        word(INTENT_INO).store(intent.file.ino, Release);
        word(INTENT_LEN_BEFORE).store(intent.len_before, Release);
        word(INTENT_LEN).store(intent.len, Release);
        word(INTENT_ACTIVE).store(1, Release);
    }

    /// Marks the announced append as finished (whole, or cut back after an error).
    pub(crate) fn end_write(&self) {
        self.page.word(INTENT_ACTIVE).store(0, Release);
    }

    /// The append a previous holder announced but did not finish, because it died; call
    /// only while holding the lock, and [`LockFile::end_write`] once it is dealt with.
    pub(crate) fn interrupted_write(&self) -> Option<WriteIntent> {
        let word = |i| self.page.word(i);
        if word(INTENT_ACTIVE).load(Acquire) == 0 {
            return None;
        }
        let intent = WriteIntent {
            file: FileId {
                dev: word(INTENT_DEV).load(Acquire),
                ino: word(INTENT_INO).load(Acquire),
            },
            len_before: word(INTENT_LEN_BEFORE).load(Acquire),
            len: word(INTENT_LEN).load(Acquire),
        };
        Some(intent)
    }
}

impl LockFile {
    /// The live file's length as the last holder recorded it, if `file` is the live file
    /// it recorded; call only while holding the lock.
    pub(crate) fn live_len_of(&self, file: FileId) -> Option<u64> {
        let word = |i| self.page.word(i);
        let recorded = FileId {
            dev: word(LIVE_DEV).load(Acquire),
            ino: word(LIVE_INO).load(Acquire),
        };
        (recorded == file).then(|| word(LIVE_LEN).load(Acquire))
    }

    /// Records which file is live and how long it is; call only while holding the lock.
    pub(crate) fn set_live(&self, file: FileId, len: u64) {
        let word = |i| self.page.word(i);
        word(LIVE_DEV).store(file.dev, Release);
        word(LIVE_INO).store(file.ino, Release);
        word(LIVE_LEN).store(len, Release);
    }

    /// Records the live file's new length after an append; call only while holding the
    /// lock, after [`LockFile::set_live`] for the same file.
    pub(crate) fn set_live_len(&self, len: u64) {
        self.page.word(LIVE_LEN).store(len, Release);
    }

    /// Forgets the live file, so the next holder asks the kernel.
    pub(crate) fn forget_live(&self) {
        self.set_live(FileId { dev: 0, ino: 0 }, 0);
    }
}

/// Releases the lock when dropped, on every path out of the critical section.
#[derive(Debug)]
pub(crate) struct LockGuard<'a> {
    lock: &'a LockFile,
}

impl<'a> LockGuard<'a> {
    /// Takes over a lock that `lock` already holds.
    pub(crate) fn held(lock: &'a LockFile) -> Self {
        LockGuard { lock }
    }

    pub(crate) fn lock_file(&self) -> &'a LockFile {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release();
    }
}
