//! The critical section every write goes through: take this process's mutex and the
//! inter-process lock, find the live file and its length, rotate if the events do not
//! fit, append, and report what happened once both locks are released.
//!
//! - [`backoff`]: after a failed rotation, how long to append before trying again.
//! - [`entering`]: this process's mutex, then the flock, waited for outside the mutex;
//!   a replaced lock file is followed.
//! - [`hold`]: one hold of both locks, as steps: turns, options, the live file, its
//!   length and period, then append what fits or rotate once.
//! - [`live_period`]: the period the live file's lines belong to, when rotating by time,
//!   and who rules when processes disagree on it.
//! - [`options`]: the options record in the page, and the report of a disagreement.
//! - [`outcome`]: what a write found under the locks, reported after they are released.
//!
//! Invariants: an event is appended whole in one `write(2)` under the flock, into the
//! file the page names as live; a hold rotates at most once; nothing is reported, and
//! no hook runs, while the locks are held.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::handle::LogHandle;
use crate::lock::{LockFile, Page};
use crate::log_dir::LogDir;
use crate::platform::Dir;
use crate::report::{IfFailed, Reporter};
use crate::rotation::{self, Limits, LogName, Policy, Rotated};
use crate::settings::Settings;
use crate::stats::Counters;
pub(crate) use backoff::RotationBackoff;
use hold::{Events, Held, Start, Turns};
use outcome::Outcome;

mod backoff;
mod entering;
mod hold;
mod live_period;
mod options;
mod outcome;
mod retention;

/// How long a process that must take the lock again to go on with a long write (one
/// that rotates more than once) stands back when others are waiting, so that one of
/// them, woken by the kernel, takes the lock first: flock by itself favours the process
/// that lets go, which would keep everyone else waiting for the whole write.
const TURN: Duration = Duration::from_micros(200);

/// Everything one [`SharedFile`](crate::SharedFile) and its clones share.
pub(crate) struct Inner {
    /// The log file's path, and its lock file's, as `build()` resolved them: for messages.
    pub(crate) path: PathBuf,
    pub(crate) lock_path: PathBuf,
    /// Their names in the log directory, through which they are opened.
    pub(crate) name: OsString,
    pub(crate) lock_name: OsString,
    pub(crate) settings: Settings,
    /// Serialises this process's threads: they all share one flock description. Never
    /// held while waiting for another process, so a fork never waits on one.
    pub(crate) state: Mutex<State>,
    /// Set in a forked child that could not be given a lock description of its own: the
    /// lock file must be opened again before it is used.
    pub(crate) lock_inherited: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) reporter: Reporter,
}

pub(crate) struct State {
    pub(crate) dir: LogDir,
    /// Shared with threads waiting for the flock outside the mutex.
    pub(crate) lock: Arc<LockFile>,
    pub(crate) handle: LogHandle,
    /// When (on the coarse monotonic clock) the paths were last compared with the open
    /// files by `stat`; `None` forces the next writer to check.
    pub(crate) last_path_check: Option<Duration>,
    /// After a failed rotation, when to try again.
    pub(crate) backoff: RotationBackoff,
}

/// How many holds in a row may end without writing before the next one appends its first
/// event whatever the file's size.
const MAX_IDLE_HOLDS: usize = 3;

/// What an attempt to rotate did.
enum Rotation {
    /// The live file became an archive; `handle` is on a fresh file. Retention may
    /// follow, off the lock.
    Done(Option<rotation::Sweep>),
    /// Nothing was done: the archives must be listed first, off the lock.
    ListFirst,
    /// The rotation failed (and was recorded): `handle` is on the file it was.
    Failed,
    /// The path no longer named the file to rotate: `handle` is on whatever it names now.
    Reopened,
}

impl Inner {
    /// Writes consecutive events: `buf[start..ends[0]]` is the first event,
    /// `buf[ends[0]..ends[1]]` the second, and so on. Events that fit in the live file go
    /// out in one `write(2)`; rotation happens between events, never inside one, and at
    /// most once per hold of the lock, so that other processes get their turn.
    pub(crate) fn write_events(
        self: &Arc<Self>,
        buf: &[u8],
        mut start: usize,
        ends: &[usize],
        if_failed: IfFailed,
    ) -> io::Result<()> {
        let mut outcome = Outcome::default();
        let mut done = 0;
        let mut idle_holds = 0;
        let mut after_turn = false;
        let mut untaken_turns = 0;
        let mut rotation_failed = false;
        let mut listed = None;
        let result = loop {
            let start_as = Start {
                force_first: idle_holds >= MAX_IDLE_HOLDS,
                rotation_failed,
                listed: listed.as_ref(),
            };
            let events = Events {
                buf,
                start,
                ends: &ends[done..],
            };
            let next = self.write_some(
                events,
                start_as,
                Turns {
                    after_turn,
                    untaken: &mut untaken_turns,
                },
                &mut outcome,
            );
            after_turn = false;
            match next {
                Ok(Held {
                    written,
                    others_waiting,
                    rotation_failed: failed,
                    after,
                }) => {
                    rotation_failed |= failed;
                    if let Some(after) = after {
                        listed = self.after_hold(after, &mut rotation_failed, &mut outcome);
                    }
                    done += written;
                    if done == ends.len() {
                        break Ok(());
                    }
                    if written > 0 {
                        idle_holds = 0;
                        start = ends[done - 1];
                    } else if listed.is_none() {
                        // A hold that stopped for a listing made progress of its own.
                        idle_holds += 1;
                    }
                    if others_waiting {
                        std::thread::sleep(TURN);
                        after_turn = true;
                    }
                }
                Err(error) => break Err(error),
            }
        };
        self.counters
            .written(outcome.events_written, outcome.bytes_written);
        self.report(&outcome);
        if let Err(error) = &result {
            let unwritten = ends.len() as u64 - outcome.events_written;
            self.counters.write_failed(match if_failed {
                IfFailed::Drop => unwritten,
                IfFailed::Keep => 0,
            });
            self.failed(error, if_failed);
        }
        result
    }

    /// Points `handle` at the live file, and repairs what a killed holder left in it.
    ///
    /// Peers record the live file in the lock file's shared page at every rotation, so
    /// in the common case this costs no system call. The path is looked up when the page
    /// names another file (a peer rotated), and every `path_check_interval` to catch
    /// other programs moving, deleting or replacing the file.
    fn follow_live_file(
        &self,
        dir: &Dir,
        page: &Page,
        handle: &mut LogHandle,
        check_paths: bool,
        outcome: &mut Outcome,
    ) -> io::Result<()> {
        let stale = |handle: &LogHandle| {
            handle
                .is_stale(dir, &self.name)
                .map_err(|e| entering::looked_up("log file", &self.path, e))
        };
        if (check_paths || !page.live_is(handle.id())) && stale(handle)? {
            *handle = self.open_log(dir)?;
        }
        if let Some(intent) = page.interrupted_write() {
            outcome.repaired_partial_write |= handle.repair(&intent)?;
            page.end_write();
        }
        page.set_live(handle.id());
        Ok(())
    }

    /// Rotates the live file and points `handle` at the fresh one. A failed rotation is
    /// recorded for the report.
    ///
    /// The fresh file is created first, under a temporary name, and put in place once the
    /// live file is renamed away: a rotation that cannot create it (no descriptor or
    /// inode left) has not begun, and the log is never left without a live file.
    fn rotate(
        &self,
        dir: &Dir,
        page: &Page,
        handle: &mut LogHandle,
        stamp: i64,
        listed: Option<&rotation::Listing>,
        outcome: &mut Outcome,
    ) -> io::Result<Rotation> {
        let log = LogName {
            dir,
            name: &self.name,
            path: &self.path,
        };
        // Nothing is created for a rotation that cannot happen: whatever sits at the path
        // instead of the live file sees no file of ours appear and go beside it.
        if let Ok(None) = rotation::live_len(log, handle.id()) {
            *handle = self.open_log(dir)?;
            return Ok(Rotation::Reopened);
        }
        let (fresh, temporary) = match LogHandle::create_fresh(dir, self.settings.file_mode) {
            Ok(fresh) => fresh,
            Err(error) => {
                outcome.rotation_errors += 1;
                outcome.last_rotation_error = Some(match error.kind() {
                    io::ErrorKind::PermissionDenied => rotation::explain(log, error),
                    kind => io::Error::new(
                        kind,
                        format!(
                            "{error}, creating the fresh log file: the rotation did not happen"
                        ),
                    ),
                });
                return Ok(Rotation::Failed);
            }
        };
        // Until the fresh file is in place and recorded, the record must not name the file
        // being renamed away: a holder that fails or dies half-way leaves the next one to
        // look the path up, instead of appending to (or rotating) the archive.
        page.forget_live();
        let now = rotation::unix_now();
        let rotated = rotation::rotate(
            log,
            handle.id(),
            &self.policy(),
            (stamp, now),
            page.ledger(),
            page.newest_name(),
            listed,
        );
        let discard = |fresh: LogHandle| {
            drop(fresh);
            let _ = dir.remove(&temporary);
        };
        match rotated {
            Ok(Rotated::Yes { ledger, sweep }) => {
                match ledger {
                    Some(ledger) => page.set_ledger(ledger),
                    None => page.forget_ledger(),
                }
                self.counters.rotated();
                *handle = match dir.place(&temporary, &self.name) {
                    Ok(()) => fresh,
                    // Another program created a file at the path meanwhile: that one is
                    // the live file now.
                    Err(_) => {
                        drop(fresh);
                        self.open_log(dir)?
                    }
                };
                Ok(Rotation::Done(sweep))
            }
            Ok(Rotated::ListFirst) => {
                discard(fresh);
                page.set_live(handle.id());
                Ok(Rotation::ListFirst)
            }
            Ok(Rotated::PathMoved) => {
                discard(fresh);
                *handle = self.open_log(dir)?;
                Ok(Rotation::Reopened)
            }
            Err(error) => {
                discard(fresh);
                outcome.rotation_errors += 1;
                outcome.last_rotation_error = Some(error);
                if handle.is_stale(dir, &self.name)? {
                    *handle = self.open_log(dir)?;
                }
                Ok(Rotation::Failed)
            }
        }
    }

    fn policy(&self) -> Policy {
        Policy {
            naming: self.settings.naming,
            limits: Limits {
                max_files: self.settings.max_files,
                max_age: self.settings.max_age,
                max_total_bytes: self.settings.max_total_bytes,
                schedule: self.settings.schedule(),
            },
        }
    }

    /// What follows a rotation, off the lock: handing the archives to this process's
    /// compressor.
    fn after_rotation(self: &Arc<Self>, dir: Arc<Dir>) {
        #[cfg(feature = "compress")]
        if self.settings.compress {
            let job = rotation::compression::Job {
                host: Arc::clone(self) as Arc<dyn rotation::compression::Host>,
                dir,
                name: self.name.clone(),
                path: self.path.clone(),
                file_mode: self.settings.file_mode,
                exit_timeout: self.settings.compress_exit_timeout,
            };
            if let Err(error) = rotation::compression::request(job) {
                self.report_failure(&crate::report::IoFailure::archives(&self.path, &error));
            }
        }
        #[cfg(not(feature = "compress"))]
        let _ = dir;
    }

    /// Waits until the compression that this log's rotations so far asked for is done, or
    /// `timeout` passes; whether it is done.
    pub(crate) fn wait_for_compression(self: &Arc<Self>, timeout: Duration) -> bool {
        #[cfg(feature = "compress")]
        return rotation::compression::wait_for(
            rotation::compression::key_of(Arc::as_ptr(self)),
            timeout,
        );
        #[cfg(not(feature = "compress"))]
        {
            let _ = timeout;
            true
        }
    }

    /// Opens the lock file in `dir`; an error names it, and says what would fix it.
    fn open_lock(&self, dir: &Arc<Dir>) -> io::Result<LockFile> {
        LockFile::open(dir, &self.lock_name, self.settings.file_mode)
            .map_err(|e| naming("lock", &self.lock_path, e))
    }

    /// Opens the log file in `dir`; an error names it, and says what would fix it.
    fn open_log(&self, dir: &Dir) -> io::Result<LogHandle> {
        LogHandle::open(dir, &self.name, self.settings.file_mode)
            .map_err(|e| naming("log", &self.path, e))
    }
}

/// `error`, saying which file (`what`: "lock" or "log") it concerns.
fn naming(what: &str, path: &std::path::Path, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot open {what} file `{}`: {error}", path.display()),
    )
}

#[cfg(feature = "compress")]
impl rotation::compression::Host for Inner {
    fn under_locks(&self, step: &mut dyn FnMut() -> io::Result<bool>) -> io::Result<bool> {
        let mut outcome = Outcome::default();
        let result = self.enter(&mut outcome).and_then(|entered| {
            let guard = crate::lock::LockGuard::held(&entered.state.lock);
            let result = step();
            drop(guard);
            result
        });
        self.report(&outcome);
        result
    }

    fn report(&self, error: &io::Error) {
        self.report_failure(&crate::report::IoFailure::archives(&self.path, error));
    }

    fn compressed(&self) {
        self.counters.compressed();
    }
}
