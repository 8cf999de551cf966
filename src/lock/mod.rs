//! The inter-process lock: an exclusive `flock(2)` on a side file next to the log.
//!
//! The lock lives on its own file because rotation renames the log file: a lock on the
//! log itself would stop excluding anyone the moment it was renamed. Rotation never
//! renames or deletes the lock file.
//!
//! The lock file's first page is also mapped shared into every process (see [`page`]):
//! the live file and its length, the append in progress, the holder's pid.

mod page;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(unix)]
use crate::platform::RawFd;
use crate::platform::{self, Access, Dir, FileId, SharedPage};

pub(crate) use page::{MORE_OPTIONS, Page, RecordedOptions, RecordedPeriod, WriteIntent};

/// The longest pause between two tries when a bounded wait polls the lock.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(1);

/// The side lock file of one log file, held open for the life of a
/// [`SharedFile`](crate::SharedFile).
///
/// flock belongs to the open file description, which all threads of a process share, so
/// this lock excludes other processes only: callers serialise their own threads first.
#[derive(Debug)]
pub(crate) struct LockFile {
    // Declared before `file` so it is unmapped before the file closes.
    page: Page,
    file: File,
    /// Whether `file` holds the lock, where the platform does not keep that itself.
    held: platform::HandleLock,
    id: FileId,
    /// Where it is: for opening it again.
    dir: Arc<Dir>,
    name: OsString,
}

/// Why something at the lock path is not a lock file of ours; carried inside the
/// `io::Error` that refuses it.
#[derive(Debug)]
pub(crate) struct NotOurLockFile {
    reason: String,
}

impl fmt::Display for NotOurLockFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "it {}; it was left untouched: remove it, or choose another log path",
            self.reason
        )
    }
}

impl std::error::Error for NotOurLockFile {}

impl NotOurLockFile {
    fn error(reason: impl Into<String>) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            NotOurLockFile {
                reason: reason.into(),
            },
        )
    }

    /// Whether `error` is a refusal of a file that is not ours.
    pub(crate) fn is(error: &io::Error) -> bool {
        error
            .get_ref()
            .is_some_and(|inner| inner.is::<NotOurLockFile>())
    }
}

impl LockFile {
    /// The lock file's path for a log path: `app.log` locks through `app.log.lock`.
    pub(crate) fn path_for(log_path: &Path) -> PathBuf {
        let mut name = OsString::from(log_path.as_os_str());
        name.push(".lock");
        PathBuf::from(name)
    }

    /// The lock file's name for a log file's name.
    pub(crate) fn name_for(log_name: &OsStr) -> OsString {
        let mut name = log_name.to_os_string();
        name.push(".lock");
        name
    }

    /// Opens (creating it if missing, with exactly the permission bits `mode` if given)
    /// the lock file `name` in `dir`.
    ///
    /// Something that is not one of our lock files is refused before a byte of it is
    /// written: a symbolic link, anything but a regular file, a file with other names
    /// (hard links), or a file that holds data without our header.
    pub(crate) fn open(dir: &Arc<Dir>, name: &OsStr, mode: Option<u32>) -> io::Result<Self> {
        // Write access is what mapping the page needs; flock itself needs none.
        let opened = dir.open_or_create(name, Access::READ_WRITE_CREATE, mode);
        let file = opened.map_err(|e| {
            if platform::is_symlink_refusal(&e) {
                NotOurLockFile::error("is a symbolic link")
            } else if e.kind() == io::ErrorKind::IsADirectory {
                NotOurLockFile::error("is a directory")
            } else {
                crate::log_dir::explain_access(dir, name, e)
            }
        })?;
        let metadata = platform::metadata(&file)?;
        if !metadata.is_file() {
            return Err(NotOurLockFile::error(
                "is not a regular file (a FIFO, socket or device)",
            ));
        }
        let links = platform::hard_links(&metadata);
        if links > 1 {
            return Err(NotOurLockFile::error(format!(
                "has {links} hard links, so it is also another file"
            )));
        }
        let mut head = vec![0; SharedPage::LEN];
        let read = platform::read_at(&file, &mut head, 0)?;
        match page::classify(&head[..read]) {
            page::Content::Blank | page::Content::Ours => {}
            page::Content::OtherVersion(version) => {
                return Err(NotOurLockFile::error(format!(
                    "was made by an incompatible version of tracing-shared-file (page layout {version})"
                )));
            }
            page::Content::Foreign => {
                return Err(NotOurLockFile::error(
                    "holds data that is not a tracing-shared-file lock page",
                ));
            }
        }
        platform::make_blocking(&file)?;
        // Idempotent, so processes racing here all end with the same file; and it makes
        // a full disk an error now rather than a SIGBUS at the first store to the page.
        if metadata.len() < SharedPage::LEN as u64 {
            platform::allocate(&file, SharedPage::LEN as u64)?;
        }
        let page = Page::new(SharedPage::map(&file)?);
        page.initialise();
        // The mapping keeps the description it was made from open for as long as it
        // lives, in forked children too: so the lock goes on a description of its own,
        // which a child can drop entirely (see `fork`).
        let id = FileId::of(&metadata);
        let lock = LockFile {
            page,
            file,
            held: platform::HandleLock::new(),
            id,
            dir: Arc::clone(dir),
            name: name.to_os_string(),
        };
        let file = lock.open_again(true)?;
        Ok(LockFile { file, ..lock })
    }

    /// Opens this lock file again, as a new open file description: writable, or
    /// read-only, which is all a flock needs (so a process that dropped its privileges can
    /// still take one if it may read).
    fn open_again(&self, writable: bool) -> io::Result<File> {
        let file = self
            .dir
            .open_file(&self.name, Access::existing(writable), 0)?;
        if FileId::of(&platform::metadata(&file)?) != self.id {
            return Err(io::Error::other(
                "the lock file was replaced while it was being opened",
            ));
        }
        platform::make_blocking(&file)?;
        Ok(file)
    }

    /// A fresh read-only description of this lock file, as a raw descriptor closed on
    /// exec: for the fork prepare handler to give to the child.
    #[cfg(unix)]
    pub(crate) fn fresh_description(&self) -> Option<RawFd> {
        self.open_again(false).ok().map(platform::into_raw_fd)
    }

    pub(crate) fn page(&self) -> &Page {
        &self.page
    }

    /// The descriptor, for the fork handlers to give a child its own open file
    /// description under the same number.
    #[cfg(unix)]
    pub(crate) fn raw_fd(&self) -> RawFd {
        platform::raw_fd(&self.file)
    }

    /// Takes the lock if no one holds it; `false` if someone does.
    pub(crate) fn try_acquire(&self) -> io::Result<bool> {
        self.held.try_lock(&self.file)
    }

    /// Waits until this open file description holds the lock, or until `deadline`.
    ///
    /// Without a deadline the wait sleeps in `flock(2)`, woken by the kernel when the lock
    /// is let go. `flock` cannot time out, so with one the lock is polled, with pauses
    /// growing to [`MAX_POLL_PAUSE`].
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> io::Result<()> {
        // The page is touched outside the lock here: make sure it is there to touch.
        let counted = self.is_linked().is_ok();
        if counted {
            self.page.add_waiter();
        }
        let waited = self.wait_uncounted(deadline);
        if counted && self.is_linked().is_ok() {
            self.page.remove_waiter();
        }
        waited
    }

    fn wait_uncounted(&self, deadline: Option<Instant>) -> io::Result<()> {
        let Some(deadline) = deadline else {
            return self.held.lock(&self.file);
        };
        let mut pause = Duration::from_micros(20);
        loop {
            if self.try_acquire()? {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(MAX_POLL_PAUSE);
        }
    }

    pub(crate) fn release(&self) {
        // An unlock can only fail on a bad descriptor, and closing the file would release
        // the lock anyway; nothing useful can be done with the error here.
        let _ = self.held.unlock(&self.file);
    }

    /// Whether its name in `dir` (the log directory as it is now) still names this lock
    /// file, and the file is long enough to touch its shared page. An operator may delete
    /// it (processes that reopen by name would then lock a different file), replace it,
    /// or truncate it (touching the page would then fault).
    pub(crate) fn is_current(&self, dir: &Dir) -> io::Result<bool> {
        match dir.entry(&self.name)? {
            Some(entry) if entry.id == self.id => self.is_linked(),
            _ => Ok(false),
        }
    }

    /// Whether this lock file still has a name, after making sure it is long enough to
    /// touch its shared page. Cheap enough for every write: a deleted lock file must be
    /// noticed before processes started since then lock a new one, and a truncated one
    /// before the page is touched (which would fault).
    pub(crate) fn is_linked(&self) -> io::Result<bool> {
        let status = platform::links_and_len(&self.file)?;
        self.restore_length(status.len)?;
        Ok(status.links > 0)
    }

    /// Grows a truncated lock file back to a page, and writes its header again.
    fn restore_length(&self, len: u64) -> io::Result<()> {
        if len >= SharedPage::LEN as u64 {
            return Ok(());
        }
        match platform::allocate(&self.file, SharedPage::LEN as u64) {
            // A forked child locks through a read-only description: grow the file
            // through a writable one.
            Err(e) if platform::is_not_writable(&e) => {
                platform::allocate(&self.open_again(true)?, SharedPage::LEN as u64)?;
            }
            result => result?,
        }
        self.page.initialise();
        Ok(())
    }
}

/// Releases the lock when dropped, on every path out of the critical section.
#[derive(Debug)]
pub(crate) struct LockGuard<'a> {
    lock: &'a LockFile,
}

impl<'a> LockGuard<'a> {
    /// Takes over a lock that `lock` already holds, recording this process as its holder.
    pub(crate) fn held(lock: &'a LockFile) -> Self {
        lock.page.set_holder(platform::pid());
        #[cfg(test)]
        platform::listings::locked(true);
        LockGuard { lock }
    }

    pub(crate) fn lock_file(&self) -> &'a LockFile {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.page.set_holder(0);
        self.lock.release();
        #[cfg(test)]
        platform::listings::locked(false);
    }
}
