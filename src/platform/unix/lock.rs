//! The inter-process lock on Unix: `flock(2)` on the whole file, through std. It belongs
//! to the open file description, and the kernel lets it go when the last descriptor of
//! that description closes, however the process ends.

use std::fs::{File, TryLockError};
use std::io;

use super::retry_interrupted;

/// Waits until `file`'s open file description holds the lock.
fn lock_exclusive(file: &File) -> io::Result<()> {
    retry_interrupted(|| file.lock())
}

/// Takes the lock if no one holds it; `false` if someone does.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    retry_interrupted(|| match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(error)) => Err(error),
    })
}

/// Lets go of the lock `file`'s description holds.
fn unlock(file: &File) -> io::Result<()> {
    retry_interrupted(|| file.unlock())
}

/// The lock as one open file description holds it. `flock` itself keeps the state: taking
/// it again through the description that holds it succeeds at once.
#[derive(Debug)]
pub(crate) struct HandleLock(());

impl HandleLock {
    pub(crate) fn new() -> Self {
        HandleLock(())
    }

    /// Waits until `file`'s description holds the lock.
    pub(crate) fn lock(&self, file: &File) -> io::Result<()> {
        lock_exclusive(file)
    }

    /// Takes the lock if nobody else holds it; `false` if someone does.
    pub(crate) fn try_lock(&self, file: &File) -> io::Result<bool> {
        try_lock(file)
    }

    /// Lets go of the lock if this description holds it.
    pub(crate) fn unlock(&self, file: &File) -> io::Result<()> {
        unlock(file)
    }
}
