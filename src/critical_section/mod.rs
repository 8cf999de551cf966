//! The critical section every write goes through: take this process's mutex and the
//! inter-process lock, find the live file and its length, rotate if the events do not
//! fit, append, and report what happened once both locks are released.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::handle::LogHandle;
use crate::lock::{LockFile, LockGuard, Page, RecordedOptions, WriteIntent};
use crate::log_dir::LogDir;
use crate::platform::Dir;
use crate::report::{ErrorHook, IfFailed, IoFailure, RateLimitedStderr};
use crate::settings::Settings;

mod entering;
use crate::rotation::{self, Limits, LogName, Policy, Rotated, Schedule};
use crate::stats::Counters;
use entering::Entered;

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
    pub(crate) on_error: Option<ErrorHook>,
    /// One limiter per kind of report, so that a flood of one never hides another.
    pub(crate) write_reports: RateLimitedStderr,
    pub(crate) rotation_reports: RateLimitedStderr,
    pub(crate) notices: RateLimitedStderr,
    /// Whether a disagreement over the options has been reported (once is enough).
    pub(crate) options_reported: AtomicBool,
    #[cfg(feature = "compress")]
    pub(crate) compressor: rotation::compression::Compressor,
}

pub(crate) struct State {
    pub(crate) dir: LogDir,
    /// Shared with threads waiting for the flock outside the mutex.
    pub(crate) lock: Arc<LockFile>,
    pub(crate) handle: LogHandle,
    /// When (on the coarse monotonic clock) the paths were last compared with the open
    /// files by `stat`; `None` forces the next writer to check.
    pub(crate) last_path_check: Option<Duration>,
}

/// What happened under the lock that must be reported after it is released, so that a
/// slow or panicking hook never runs inside the critical section.
#[derive(Default)]
struct Outcome {
    events_written: u64,
    bytes_written: u64,
    rotation_errors: u64,
    last_rotation_error: Option<io::Error>,
    /// The rotation was done, but old archives could not be deleted.
    archives_error: Option<io::Error>,
    lock_file_replaced: bool,
    repaired_partial_write: bool,
    options_disagree: Option<RecordedOptions>,
}

/// How many times one hold of the lock follows a path that changes under it before it
/// lets go.
const MAX_REOPENS: usize = 4;

/// How many holds in a row may end without writing before the next one appends its first
/// event whatever the file's size.
const MAX_IDLE_HOLDS: usize = 3;

thread_local! {
    /// Whether this thread is running an `on_error` hook.
    static IN_ERROR_HOOK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How many turns in a row may go untaken before the waiters recorded in the page are
/// taken for processes that died waiting.
const UNTAKEN_TURNS_BEFORE_FORGETTING: u32 = 50;

/// Whether a hold follows a turn this process stood back for, and how many such turns in
/// a row nobody took.
struct Turns<'a> {
    after_turn: bool,
    untaken: &'a mut u32,
}

/// What an attempt to rotate did.
enum Rotation {
    /// The live file became an archive; `handle` is on a fresh file.
    Done,
    /// The rotation failed (and was recorded): `handle` is on the file it was.
    Failed,
    /// The path no longer named the file to rotate: `handle` is on whatever it names now.
    Reopened,
}

/// What one hold of the lock did.
struct Held {
    /// How many of the events it wrote.
    written: usize,
    /// Whether others were waiting for the lock when it let go.
    others_waiting: bool,
    /// The directory it rotated in, if it rotated: retention follows, off the lock.
    rotated_in: Option<Arc<Dir>>,
}

/// The clock of a hold, when the log rotates by time.
struct Clock {
    schedule: Schedule,
    /// Seconds since the Unix epoch.
    now: i64,
    /// The start of the period `now` is in.
    current: i64,
}

/// The period the live file's lines belong to, and when its content began.
#[derive(Debug, Clone, Copy)]
struct LivePeriod {
    start: i64,
    since: i64,
}

/// The live file's period, as the page records it for this file; or, if it records
/// none (another file, or a value that is no period start: a new or damaged lock file),
/// as the file's last modification says. Never taken as the epoch.
fn live_period(page: &Page, handle: &LogHandle, clock: &Clock, len: u64) -> io::Result<LivePeriod> {
    // An empty file holds no line of an earlier period: it need not rotate.
    if let Some((start, since)) = page.period_of(handle.id())
        && clock.schedule.is_plausible_start(start, clock.now)
        && len > 0
    {
        // A content start outside its period is no start: take the period's.
        let since = if (start..=clock.now).contains(&since) {
            since
        } else {
            start
        };
        return Ok(LivePeriod { start, since });
    }
    let period = live_period_of_file(handle, clock, len)?;
    page.set_period(handle.id(), period.start, period.since);
    Ok(period)
}

/// The period of a file's lines, from its last modification: an empty file holds none,
/// so it is of the current period, and so is one modified in the future or before 2000.
fn live_period_of_file(handle: &LogHandle, clock: &Clock, len: u64) -> io::Result<LivePeriod> {
    let modified = match len {
        0 => None,
        _ => Some(handle.modified()?),
    };
    // A time before 2000 is a clock that was not set: its lines are taken as this
    // period's, never as 1970's.
    let start = match modified {
        Some(modified) if modified >= rotation::EARLIEST => {
            clock.schedule.start_of(modified).min(clock.current)
        }
        _ => clock.current,
    };
    Ok(LivePeriod {
        start,
        since: start,
    })
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
        let result = loop {
            let force_first = idle_holds >= MAX_IDLE_HOLDS;
            let next = self.write_some(
                buf,
                start,
                &ends[done..],
                force_first,
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
                    rotated_in,
                }) => {
                    if let Some(dir) = rotated_in {
                        self.after_rotation(dir);
                    }
                    done += written;
                    if done == ends.len() {
                        break Ok(());
                    }
                    if written == 0 {
                        idle_holds += 1;
                    } else {
                        idle_holds = 0;
                        start = ends[done - 1];
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

    /// One hold of the locks: writes a prefix of the events.
    fn write_some(
        &self,
        buf: &[u8],
        mut start: usize,
        ends: &[usize],
        force_first: bool,
        turns: Turns<'_>,
        outcome: &mut Outcome,
    ) -> io::Result<Held> {
        let Entered {
            mut state,
            check_paths,
            now,
            waited_for_flock,
        } = self.enter(outcome)?;
        let State {
            dir,
            lock,
            handle,
            last_path_check,
        } = &mut *state;
        let state_dir = dir.dir();
        let dir = &**state_dir;
        let guard = LockGuard::held(lock);
        let page = guard.lock_file().page();
        if turns.after_turn {
            if waited_for_flock {
                *turns.untaken = 0;
            } else {
                *turns.untaken += 1;
                // Turns nobody took, again and again: the count of waiters was left by
                // processes killed while they waited. Forget it, or every long write would
                // stand back for nobody from now on. Not at the first: a waiter that the
                // kernel woke may just not have been given a processor yet.
                if *turns.untaken >= UNTAKEN_TURNS_BEFORE_FORGETTING {
                    page.forget_waiters();
                    *turns.untaken = 0;
                }
            }
        }
        if let Some(theirs) = page.swap_options(RecordedOptions {
            max_bytes: self.settings.max_bytes,
            max_files: self.settings.max_files as u64,
            pid: u64::from(crate::platform::pid()),
        }) {
            outcome.options_disagree = Some(theirs);
        }
        self.follow_live_file(dir, page, handle, check_paths, outcome)?;
        // Only a check that succeeded counts: after a failed one (the path could not be
        // reopened), the next write must look again rather than trust the old handle.
        if check_paths {
            *last_path_check = Some(now);
        }
        // From the kernel, every time: another program may have appended under the lock,
        // or cut the file (copytruncate), and a repair must know where an append began.
        let mut len = handle.len()?;
        // The lines of this hold belong to the period it is in.
        let clock = self.settings.schedule().map(|schedule| {
            let now = rotation::unix_now();
            Clock {
                schedule,
                now,
                current: schedule.start_of(now),
            }
        });
        let mut live_period = match &clock {
            Some(clock) => Some(live_period(page, handle, clock, len)?),
            None => None,
        };

        let mut first = 0;
        // After a failed rotation the next event is appended anyway: losing it would be
        // worse than an oversized file. So is the first event when earlier holds made no
        // progress, so that a write always ends.
        let mut append_anyway = force_first;
        let mut may_rotate = true;
        let mut rotated = false;
        let mut reopens = 0;
        while first < ends.len() {
            // The first event always goes into an empty file, even one larger than
            // max_bytes on its own; after it, events go in while the file has room.
            let mut last = first;
            if len == 0 || append_anyway {
                last += 1;
            }
            while last < ends.len()
                && rotation::fits(len, ends[last] - start, self.settings.max_bytes)
            {
                last += 1;
            }
            // A file of an earlier period takes no more lines.
            let period_over = match (&clock, live_period) {
                (Some(clock), Some(period)) => period.start < clock.current,
                _ => false,
            };
            if last == first || (period_over && may_rotate) {
                // One rotation per hold, so that others get their turn between rotations.
                if !may_rotate {
                    break;
                }
                let stamp = match (&clock, live_period) {
                    // Named after the start of its period, or of its own content.
                    (Some(_), Some(period)) if period_over => period.start.max(period.since),
                    (Some(clock), _) => clock.now,
                    (None, _) => rotation::unix_now(),
                };
                match self.rotate(dir, page, handle, stamp, outcome)? {
                    Rotation::Done => {
                        may_rotate = false;
                        rotated = true;
                        // A fresh file: of this period, and begun now (or at the
                        // period's start, when the period's end made it).
                        live_period = clock.as_ref().map(|clock| LivePeriod {
                            start: clock.current,
                            since: if period_over {
                                clock.current
                            } else {
                                clock.now
                            },
                        });
                    }
                    Rotation::Failed => {
                        may_rotate = false;
                        append_anyway = true;
                    }
                    // Something else now sits at the path: decide again for it, but not
                    // forever if it keeps changing.
                    Rotation::Reopened => {
                        reopens += 1;
                        may_rotate = reopens < MAX_REOPENS;
                        live_period = None;
                    }
                }
                page.set_live(handle.id());
                len = handle.len()?;
                if let Some(clock) = &clock {
                    let period = match live_period {
                        Some(period) => period,
                        None => live_period_of_file(handle, clock, len)?,
                    };
                    page.set_period(handle.id(), period.start, period.since);
                    live_period = Some(period);
                }
                continue;
            }
            append_anyway = false;
            let chunk = &buf[start..ends[last - 1]];
            page.begin_write(WriteIntent {
                file: handle.id(),
                len_before: len,
                len: chunk.len() as u64,
            });
            if let Err(failed) = handle.append(chunk, &ends[first..last], start) {
                outcome.events_written += failed.events_kept as u64;
                outcome.bytes_written += failed.bytes_kept;
                // If the cut failed, the intent stays, so the next holder repairs the
                // partial line before anything is glued onto it.
                if failed.cut_back {
                    page.end_write();
                }
                return Err(failed.error);
            }
            len += chunk.len() as u64;
            page.end_write();
            outcome.events_written += (last - first) as u64;
            outcome.bytes_written += chunk.len() as u64;
            first = last;
            start = ends[last - 1];
        }
        Ok(Held {
            written: first,
            others_waiting: first < ends.len() && page.has_waiters(),
            rotated_in: rotated.then(|| Arc::clone(state_dir)),
        })
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
    fn rotate(
        &self,
        dir: &Dir,
        page: &Page,
        handle: &mut LogHandle,
        stamp: i64,
        outcome: &mut Outcome,
    ) -> io::Result<Rotation> {
        // Until the fresh file is open and recorded, the record must not name the file
        // being renamed away: a holder that fails or dies half-way leaves the next one to
        // look the path up, instead of appending to (or rotating) the archive.
        page.forget_live();
        let log = LogName {
            dir,
            name: &self.name,
            path: &self.path,
        };
        let now = rotation::unix_now();
        match rotation::rotate(log, handle.id(), self.policy(), stamp, now, page.ledger()) {
            Ok(Rotated::Yes { ledger, retention }) => {
                match ledger {
                    Some(ledger) => page.set_ledger(ledger),
                    None => page.forget_ledger(),
                }
                if let Some(error) = retention {
                    outcome.rotation_errors += 1;
                    outcome.archives_error = Some(error);
                }
                self.counters.rotated();
                *handle = self.open_log(dir)?;
                Ok(Rotation::Done)
            }
            Ok(Rotated::PathMoved) => {
                *handle = self.open_log(dir)?;
                Ok(Rotation::Reopened)
            }
            Err(error) => {
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

    /// What follows a rotation, off the lock: handing the archives to the compressor.
    fn after_rotation(self: &Arc<Self>, dir: Arc<Dir>) {
        #[cfg(feature = "compress")]
        if self.settings.compress {
            let host: std::sync::Weak<dyn rotation::compression::Host> =
                Arc::downgrade(self) as std::sync::Weak<Inner>;
            let job = rotation::compression::Job {
                host,
                dir,
                name: self.name.clone(),
                path: self.path.clone(),
                file_mode: self.settings.file_mode,
            };
            self.compressor.request(job, |error| {
                self.report_failure(&IoFailure::rotation(&self.path, error));
            });
        }
        #[cfg(not(feature = "compress"))]
        let _ = dir;
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

    fn report(&self, outcome: &Outcome) {
        if outcome.rotation_errors > 0 {
            self.counters.rotation_failed(outcome.rotation_errors);
        }
        if let Some(error) = &outcome.last_rotation_error {
            self.report_failure(&IoFailure::rotation(&self.path, error));
        }
        if let Some(error) = &outcome.archives_error {
            self.report_failure(&IoFailure::archives(&self.path, error));
        }
        if outcome.lock_file_replaced {
            self.notice(format_args!(
                "lock file `{}` was deleted or replaced; now locking the new one",
                self.lock_path.display()
            ));
        }
        if outcome.repaired_partial_write {
            self.notice(format_args!(
                "cut off a partial line that a killed process left in `{}`",
                self.path.display()
            ));
        }
        if let Some(theirs) = outcome.options_disagree
            && !self.options_reported.swap(true, Relaxed)
        {
            let message = crate::report::options_disagree(
                &self.path,
                (self.settings.max_bytes, self.settings.max_files as u64),
                theirs,
            );
            match &self.on_error {
                Some(_) => self.notice(format_args!("{message}")),
                // Once per process, so not rate-limited with the other notices.
                None => crate::platform::write_stderr(
                    format!("tracing-shared-file: {message}\n").as_bytes(),
                ),
            }
        }
    }

    /// Something worth knowing that lost nothing: to the hook if there is one, else on
    /// stderr, rate-limited.
    fn notice(&self, message: std::fmt::Arguments<'_>) {
        match &self.on_error {
            Some(_) => {
                let error = io::Error::other(message.to_string());
                self.report_failure(&IoFailure::notice(&self.path, &error));
            }
            None => self.notices.report(message),
        }
    }

    pub(crate) fn failed(&self, error: &io::Error, if_failed: IfFailed) {
        self.report_failure(&IoFailure::write(&self.path, error, if_failed));
    }

    pub(crate) fn report_failure(&self, failure: &IoFailure<'_>) {
        match &self.on_error {
            // A panicking hook must not take the application down with it.
            Some(hook) => {
                // A hook that logs, through a writer whose writes keep failing, would call
                // itself again without end (a stack overflow): what fails inside the hook
                // is counted, not reported to it again.
                if IN_ERROR_HOOK.with(|inside| inside.replace(true)) {
                    return;
                }
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(failure)));
                IN_ERROR_HOOK.with(|inside| inside.set(false));
            }
            None if failure.is_rotation() => {
                self.rotation_reports.report(format_args!("{failure}"))
            }
            None => self.write_reports.report(format_args!("{failure}")),
        }
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
            let guard = LockGuard::held(&entered.state.lock);
            let result = step();
            drop(guard);
            result
        });
        self.report(&outcome);
        result
    }

    fn report(&self, error: &io::Error) {
        self.report_failure(&IoFailure::archives(&self.path, error));
    }
}
