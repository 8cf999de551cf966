//! Entering the critical section: this process's mutex, then the inter-process lock.
//!
//! The flock is waited for with the mutex released, so that a fork, and this process's
//! other threads, never wait behind another process; and the lock file (and the
//! directory it is in) is followed when an operator deleted or replaced it.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use super::{Inner, Outcome, State};
use crate::lock::LockFile;

/// How often in a row the lock file may be found replaced before giving up on an event.
const LOCK_ATTEMPTS: usize = 8;

/// Both locks, held: the state behind the mutex, and whether this hold must compare the
/// paths with the open files.
pub(super) struct Entered<'a> {
    pub(super) state: MutexGuard<'a, State>,
    pub(super) check_paths: bool,
    pub(super) now: Duration,
    /// Whether another process held the flock, so that this thread had to wait for it.
    pub(super) waited_for_flock: bool,
}

/// A lock won by waiting outside the mutex, released when dropped unless taken over.
struct Won(Option<Arc<LockFile>>);

impl Drop for Won {
    fn drop(&mut self) {
        if let Some(lock) = self.0.take() {
            lock.release();
        }
    }
}

impl Inner {
    /// Takes this process's mutex, then the flock, following a lock file that was
    /// deleted or replaced. The flock is waited for with the mutex released, so that
    /// a fork, and this process's other threads, never wait behind another process.
    pub(super) fn enter(&self, outcome: &mut Outcome) -> io::Result<Entered<'_>> {
        // The clock is read only when something has to wait: an uncontended write takes
        // both locks at the first try and reads no clock.
        let mut wait_started = None;
        let mut waited_on: Option<Arc<LockFile>> = None;
        let mut waited_for_flock = false;
        let mut replaced = 0;
        loop {
            let mut state = self.lock_state(&mut wait_started);
            // A lock this thread won by waiting is held by the whole process: it must be
            // let go on every way out of here but into the critical section, or nobody
            // would ever let it go; and only while this thread holds the mutex, or it
            // would let go of the lock under another thread's critical section. Declared
            // after `state`, it is dropped first on every return.
            let mut won = Won(waited_on.take());
            // Another thread replaced the lock file while this one waited on the old one,
            // which nobody will use now.
            if let Some(old) = won.0.take_if(|lock| !Arc::ptr_eq(lock, &state.lock)) {
                old.release();
            }
            if self.lock_inherited.load(Relaxed) {
                let reopened = self.open_lock(state.dir.dir())?;
                state.lock = Arc::new(reopened);
                self.lock_inherited.store(false, Relaxed);
                state.last_path_check = None;
            }
            let now = crate::platform::coarse_now();
            let check_paths = state
                .last_path_check
                .is_none_or(|last| now.saturating_sub(last) >= self.settings.path_check_interval);
            if check_paths {
                // The lock file and the log are looked up in the directory at the path now.
                state
                    .dir
                    .follow()
                    .map_err(|e| looked_up("log directory", state.dir.path(), e))?;
            }
            if !state.lock.try_acquire()? {
                // Another process holds it, so this description does not: letting it go is
                // a no-op, but only while the mutex still keeps this process's other
                // threads out of the critical section.
                drop(won);
                let lock = Arc::clone(&state.lock);
                drop(state);
                let started = *wait_started.get_or_insert_with(Instant::now);
                // A bound too far off to represent is no bound.
                let deadline = self
                    .settings
                    .lock_timeout
                    .and_then(|timeout| started.checked_add(timeout));
                waited_for_flock = true;
                lock.wait(deadline)
                    .map_err(|e| self.wait_failed(e, &lock))?;
                waited_on = Some(lock);
                continue;
            }
            let current = if check_paths {
                state
                    .lock
                    .is_current(state.dir.dir())
                    .map_err(|e| looked_up("lock file", &self.lock_path, e))
            } else {
                state.lock.is_linked()
            };
            match current {
                Ok(true) => {
                    if let Some(started) = wait_started {
                        self.counters.waited(started.elapsed());
                    }
                    // The critical section releases it from here on.
                    won.0 = None;
                    return Ok(Entered {
                        state,
                        check_paths,
                        now,
                        waited_for_flock,
                    });
                }
                Ok(false) => {
                    state.lock.release();
                    replaced += 1;
                    if replaced == LOCK_ATTEMPTS {
                        return Err(io::Error::other(format!(
                            "lock file `{}` was replaced {LOCK_ATTEMPTS} times in a row",
                            self.lock_path.display()
                        )));
                    }
                    // Deleted with its directory, perhaps: look the directory up first.
                    state.dir.follow()?;
                    state.lock = Arc::new(self.open_lock(state.dir.dir())?);
                    outcome.lock_file_replaced = true;
                }
                Err(error) => {
                    state.lock.release();
                    return Err(error);
                }
            }
        }
    }

    fn lock_state(&self, wait_started: &mut Option<Instant>) -> MutexGuard<'_, State> {
        // A thread that panicked while holding the mutex left no half-done work behind
        // (every step is an independent syscall, and an interrupted append is repaired
        // through the write intent), so poisoning is safe to ignore.
        match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                wait_started.get_or_insert_with(Instant::now);
                self.state.lock().unwrap_or_else(PoisonError::into_inner)
            }
        }
    }

    /// The error for a wait for the flock that ended without it, naming the holder.
    fn wait_failed(&self, error: io::Error, lock: &LockFile) -> io::Error {
        if error.kind() != io::ErrorKind::TimedOut {
            return error;
        }
        // Several processes may have held it in turn: name the one holding it now.
        let holder = match lock.page().holder() {
            Some(pid) if crate::platform::is_alive(pid) => format!("held by pid {pid}"),
            Some(pid) => format!(
                "held by a process that did not record its pid (pid {pid}, the last that did, has exited)"
            ),
            None => {
                "held by a process that did not record its pid (not tracing-shared-file?)".into()
            }
        };
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "lock file `{}` was not free within the lock_timeout of {:?}; it is {holder}",
                self.lock_path.display(),
                self.settings.lock_timeout.unwrap_or_default()
            ),
        )
    }
}

/// `error` from looking up `what` at `path`, saying which and, for a permission error,
/// what would fix it.
pub(super) fn looked_up(what: &str, path: &std::path::Path, error: io::Error) -> io::Error {
    let hint = match error.kind() {
        io::ErrorKind::PermissionDenied => {
            "; every process that shares the log must be able to search its directory and \
             the directories above it (a group they share, mode 2770 say)"
        }
        _ => "",
    };
    io::Error::new(
        error.kind(),
        format!("cannot look up {what} `{}`: {error}{hint}", path.display()),
    )
}
