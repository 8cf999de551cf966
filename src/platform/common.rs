//! What `unix/` and `windows/` share: the types of their common interface, and the code
//! that does not depend on the system. Each platform adds its own `impl` blocks (how a
//! page is mapped, how a directory is read) to these types.

use std::ffi::{OsStr, OsString};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use super::Dir;

/// What makes a file the same file, not its name: its device and inode on Unix, its
/// volume's serial number and its file index on Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// What sits at a name in a directory, not following a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: FileId,
    pub(crate) kind: Kind,
    /// Owner, group and permission bits, for messages about access (on Windows, which
    /// has none of them: 0, 0, and 0o444 or 0o666 as the file is read-only or not).
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mode: u32,
    pub(crate) len: u64,
    /// Last modification, in seconds since the Unix epoch.
    pub(crate) modified: i64,
    /// And the nanoseconds within that second: archives of both namings rotated in one
    /// second are told apart by it.
    pub(crate) modified_nanos: u32,
}

/// The kinds of directory entry that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    /// A symbolic link; on Windows any reparse point (a junction too).
    Symlink,
    Directory,
    /// A FIFO, socket or device.
    Other,
}

/// How to open a file in a [`Dir`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Access {
    pub(crate) read: bool,
    pub(crate) write: bool,
    pub(crate) append: bool,
    /// Create the file if it is missing.
    pub(crate) create: bool,
    /// Fail if the file exists (with `create`).
    pub(crate) exclusive: bool,
}

impl Access {
    /// Appending to a log file, created if missing.
    pub(crate) const APPEND_CREATE: Access = Access {
        read: false,
        write: true,
        append: true,
        create: true,
        exclusive: false,
    };
    /// Reading and writing a lock file, created if missing.
    pub(crate) const READ_WRITE_CREATE: Access = Access {
        read: true,
        write: true,
        append: false,
        create: true,
        exclusive: false,
    };

    /// An existing file, read-only or read-write.
    pub(crate) fn existing(writable: bool) -> Access {
        Access {
            read: true,
            write: writable,
            append: false,
            create: false,
            exclusive: false,
        }
    }
}

/// The start of every temporary file's name: hidden (the dot keeps it out of every
/// archive pattern), and short, so that it fits in the directory whatever the log's name.
pub(crate) const TEMPORARY_PREFIX: &str = ".tracing-shared-file.";

/// The longest name [`temporary_name`] can give: the prefix, a pid and a counter at
/// their widest, `.tmp`.
pub(crate) const LONGEST_TEMPORARY: usize =
    TEMPORARY_PREFIX.len() + "4294967295.18446744073709551615.tmp".len();

/// A name in the same directory, hidden and never taken by two processes or threads:
/// `.tracing-shared-file.<pid>.<n>.tmp`, which says whose it is.
pub(super) fn temporary_name() -> OsString {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    OsString::from(format!("{TEMPORARY_PREFIX}{}.{count}.tmp", super::pid()))
}

impl Dir {
    /// Renames the temporary file `temporary` to `name` without replacing anything; if it
    /// cannot, the temporary file is removed.
    pub(crate) fn place(&self, temporary: &OsStr, name: &OsStr) -> io::Result<()> {
        self.rename_exclusive(temporary, name).inspect_err(|_| {
            let _ = self.remove(temporary);
        })
    }

    /// Removes `name` if it is there: a name already gone (another process removed it
    /// first) is no error.
    pub(crate) fn remove_if_there(&self, name: &OsStr) -> io::Result<()> {
        match self.remove(name) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// How many names an open file has (0 once it was deleted or renamed over) and its length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinksAndLen {
    pub(crate) links: u64,
    pub(crate) len: u64,
}

/// A page of a file mapped shared into memory, so that every process that maps the same
/// file sees the same words without a system call per access.
///
/// Accessing a mapping past the end of its file faults (SIGBUS on Unix), so the owner must
/// make sure the file is at least [`SharedPage::LEN`] long before it reads or writes the
/// page.
#[derive(Debug)]
pub(crate) struct SharedPage {
    pub(super) ptr: NonNull<AtomicU64>,
}

// SAFETY: the page is only accessed through atomics.
unsafe impl Send for SharedPage {}
// SAFETY: as above.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    pub(crate) const LEN: usize = 4096;
    /// How many 64-bit words the page holds.
    pub(crate) const WORDS: usize = Self::LEN / 8;

    /// The `index`-th 64-bit word of the page.
    pub(crate) fn word(&self, index: usize) -> &AtomicU64 {
        assert!(index < Self::WORDS, "word index out of the page");
        // SAFETY: in bounds (checked above), page-aligned, and mapped while `self` lives.
        unsafe { &*self.ptr.as_ptr().add(index) }
    }
}

/// Private memory of its own (the non-blocking queue's buffers), reserved so that only
/// the pages used cost memory. Who writes where is the owner's business.
#[derive(Debug)]
pub(crate) struct AnonymousMemory {
    pub(super) base: NonNull<u8>,
    pub(super) size: usize,
}

// SAFETY: plain memory owned by this value; its users synchronise their accesses.
unsafe impl Send for AnonymousMemory {}
// SAFETY: as above.
unsafe impl Sync for AnonymousMemory {}

impl AnonymousMemory {
    /// The first byte; page-aligned.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

/// Fills `buf` from `offset` on with `read_once` (one positioned read, which may return
/// less than asked); fewer bytes only at the end of the file. Returns how many.
pub(super) fn read_fully_at(
    mut buf: &mut [u8],
    mut offset: u64,
    mut read_once: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut total = 0;
    while !buf.is_empty() {
        match read_once(buf, offset)? {
            0 => break,
            n => {
                total += n;
                offset += n as u64;
                buf = &mut buf[n..];
            }
        }
    }
    Ok(total)
}

/// Runs `call` until it does not fail with EINTR: a signal handler installed without
/// `SA_RESTART` makes blocking system calls return early on Unix. Windows calls never
/// fail so: there it is a pass-through.
pub(crate) fn retry_interrupted<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// Test-only bookkeeping of the directory listings each thread makes, and of those it
/// made while holding a log's lock, which no code path should.
#[cfg(test)]
pub(crate) mod listings {
    use std::cell::Cell;

    thread_local! {
        static HOLDING: Cell<bool> = const { Cell::new(false) };
        static MADE: Cell<u64> = const { Cell::new(0) };
        static MADE_HOLDING: Cell<u64> = const { Cell::new(0) };
    }

    /// This thread took (or let go of) a log's lock.
    pub(crate) fn locked(holding: bool) {
        HOLDING.set(holding);
    }

    pub(in crate::platform) fn listed() {
        MADE.set(MADE.get() + 1);
        if HOLDING.get() {
            MADE_HOLDING.set(MADE_HOLDING.get() + 1);
        }
    }

    /// How many listings this thread made, and how many of them while holding a lock.
    pub(crate) fn made() -> (u64, u64) {
        (MADE.get(), MADE_HOLDING.get())
    }
}
