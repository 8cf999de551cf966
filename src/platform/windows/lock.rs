//! The inter-process lock on Windows: `LockFileEx` on one byte of a file.
//!
//! A Windows byte-range lock is mandatory: while one handle holds it, reads and writes of
//! those bytes through any other handle fail. So the locked byte lies far past anything
//! a process reads, writes or maps (the lock file's page, a compression claim's data):
//! locking a range past the end of a file is allowed, and it never grows the file.
//! std's `File::lock` would serve too, but its `File::unlock` fails under Wine 8
//! (`ERROR_LOCK_VIOLATION`: it unlocks the whole 64-bit range).
//!
//! Like `flock`, the lock belongs to the handle, and Windows lets it go when the handle
//! closes or the process ends, however it ends.

use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};

use windows_sys::Win32::Foundation::ERROR_LOCK_VIOLATION;
use windows_sys::Win32::Storage::FileSystem::{
    LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY, LockFileEx, UnlockFileEx,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

/// The byte locked: 2^62, past any file this crate writes, and a positive offset to file
/// systems that take offsets as signed.
const LOCKED_BYTE: u64 = 1 << 62;

fn at_locked_byte() -> OVERLAPPED {
    // SAFETY: OVERLAPPED is plain data; all zeroes is its documented initial state.
    let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
    overlapped.Anonymous.Anonymous.Offset = LOCKED_BYTE as u32;
    overlapped.Anonymous.Anonymous.OffsetHigh = (LOCKED_BYTE >> 32) as u32;
    overlapped
}

fn lock(file: &File, flags: u32) -> io::Result<()> {
    let mut overlapped = at_locked_byte();
    // SAFETY: a handle we hold open, opened for synchronous I/O, so the call returns
    // only once it is done with `overlapped`.
    let locked = unsafe { LockFileEx(file.as_raw_handle(), flags, 0, 1, 0, &mut overlapped) };
    if locked == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until `file`'s handle holds the lock.
fn lock_exclusive(file: &File) -> io::Result<()> {
    lock(file, LOCKFILE_EXCLUSIVE_LOCK)
}

/// Takes the lock if no one holds it; `false` if someone does.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    match lock(file, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Lets go of the lock `file`'s handle holds.
fn unlock(file: &File) -> io::Result<()> {
    let mut overlapped = at_locked_byte();
    // SAFETY: as in `lock`.
    let unlocked = unsafe { UnlockFileEx(file.as_raw_handle(), 0, 1, 0, &mut overlapped) };
    if unlocked == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The lock as one handle holds it, with `flock`'s rule for an open file description:
/// taking it again through the handle that holds it succeeds at once. A Windows handle
/// would wait for itself instead (byte locks do not nest), and the critical section takes
/// the lock again after a thread of its process won it by waiting.
#[derive(Debug)]
pub(crate) struct HandleLock {
    held: AtomicBool,
}

impl HandleLock {
    pub(crate) fn new() -> Self {
        HandleLock {
            held: AtomicBool::new(false),
        }
    }

    /// Waits until `file`'s handle holds the lock.
    pub(crate) fn lock(&self, file: &File) -> io::Result<()> {
        if !self.held.load(Acquire) {
            lock_exclusive(file)?;
            self.held.store(true, Release);
        }
        Ok(())
    }

    /// Takes the lock if nobody else holds it; `false` if someone does.
    pub(crate) fn try_lock(&self, file: &File) -> io::Result<bool> {
        if self.held.load(Acquire) {
            return Ok(true);
        }
        let taken = try_lock(file)?;
        if taken {
            self.held.store(true, Release);
        }
        Ok(taken)
    }

    /// Lets go of the lock if this handle holds it.
    pub(crate) fn unlock(&self, file: &File) -> io::Result<()> {
        if self.held.swap(false, AcqRel) {
            unlock(file)?;
        }
        Ok(())
    }
}
