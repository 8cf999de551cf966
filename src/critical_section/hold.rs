//! One hold of the locks: what a writer does between taking them and letting go.
//!
//! In order: the turn bookkeeping (did anyone take the turn this process stood back
//! for?), the options check, following the live file, its length from the kernel, its
//! period; then, event by event, either append what fits or rotate once. Rotation
//! happens between events, never inside one, and at most once per hold, so that other
//! processes get their turn between rotations.

use std::io;
use std::sync::Arc;

use super::backoff::{Attempt, RotationBackoff};
use super::entering::Entered;
use super::live_period::{self, Clock, LivePeriod};
use super::{Inner, Outcome, Rotation, State};
use crate::handle::LogHandle;
use crate::lock::{LockGuard, Page, WriteIntent};
use crate::platform::{self, Dir};
use crate::rotation::{self, Listing, Sweep};

/// How many times one hold of the lock follows a path that changes under it before it
/// lets go.
const MAX_REOPENS: usize = 4;

/// How many turns in a row may go untaken before the waiters recorded in the page are
/// taken for processes that died waiting.
const UNTAKEN_TURNS_BEFORE_FORGETTING: u32 = 50;

/// Whether a hold follows a turn this process stood back for, and how many such turns in
/// a row nobody took.
pub(super) struct Turns<'a> {
    pub(super) after_turn: bool,
    pub(super) untaken: &'a mut u32,
}

impl Turns<'_> {
    /// Counts the turn this hold follows as taken (another process held the flock
    /// meanwhile) or not.
    fn count(self, page: &Page, waited_for_flock: bool) {
        if !self.after_turn {
            return;
        }
        if waited_for_flock {
            *self.untaken = 0;
            return;
        }
        *self.untaken += 1;
        // Turns nobody took, again and again: the count of waiters was left by processes
        // killed while they waited. Forget it, or every long write would stand back for
        // nobody from now on. Not at the first: a waiter that the kernel woke may just not
        // have been given a processor yet.
        if *self.untaken >= UNTAKEN_TURNS_BEFORE_FORGETTING {
            page.forget_waiters();
            *self.untaken = 0;
        }
    }
}

/// How a hold starts: whether to append its first event whatever the file's size (earlier
/// holds made no progress), and whether a rotation already failed during this write, in
/// which case the hold appends all its events and does not try again: a later write does,
/// once the back-off ([`super::backoff`]) is over.
#[derive(Clone, Copy)]
pub(super) struct Start<'a> {
    pub(super) force_first: bool,
    pub(super) rotation_failed: bool,
    /// The archives, listed off the lock, when a rotation asked for it.
    pub(super) listed: Option<&'a Listing>,
}

/// What one hold of the lock did.
pub(super) struct Held {
    /// How many of the events it wrote.
    pub(super) written: usize,
    /// Whether others were waiting for the lock when it let go.
    pub(super) others_waiting: bool,
    /// Whether a rotation failed in this hold.
    pub(super) rotation_failed: bool,
    /// What follows off the lock, if anything.
    pub(super) after: Option<After>,
}

/// What follows a hold, off the lock, in the directory it held.
pub(super) struct After {
    pub(super) dir: Arc<Dir>,
    /// What the rotation was tried for: for the back-off, should the listing fail.
    pub(super) attempt: Attempt,
    /// It rotated: compression follows.
    pub(super) rotated: bool,
    /// Retention follows: list the archives, then delete under the lock.
    pub(super) sweep: Option<Sweep>,
    /// It could not rotate before the archives are listed.
    pub(super) list_first: bool,
}

/// The events of one write: `buf[start..ends[0]]` is the first, `buf[ends[0]..ends[1]]`
/// the second, and so on.
#[derive(Clone, Copy)]
pub(super) struct Events<'a> {
    pub(super) buf: &'a [u8],
    pub(super) start: usize,
    pub(super) ends: &'a [usize],
}

/// A hold in progress: the live file as this hold knows it.
struct Hold<'a> {
    inner: &'a Inner,
    dir: &'a Dir,
    page: &'a Page,
    handle: &'a mut LogHandle,
    outcome: &'a mut Outcome,
    /// The live file's length, from the kernel at the start of the hold.
    len: u64,
    clock: Option<Clock>,
    period: Option<LivePeriod>,
    /// The first event when earlier holds made no progress is appended whatever the
    /// file's size, so that a write always ends.
    append_anyway: bool,
    /// After a failed rotation every event of the write is appended anyway: losing them
    /// would be worse than an oversized file, and trying again for each would hold the
    /// lock for as many failures.
    rotation_failed: bool,
    /// This process's back-off for a failing rotation.
    backoff: &'a mut RotationBackoff,
    may_rotate: bool,
    rotated: bool,
    /// Retention to do after the hold, when it rotated.
    sweep: Option<Sweep>,
    /// A listing made off the lock, for a rotation that needs one.
    listed: Option<&'a Listing>,
    /// The rotation needs a listing of the archives first: the hold ends.
    list_first: bool,
    reopens: usize,
}

impl Inner {
    /// One hold of the locks: writes a prefix of `events`.
    pub(super) fn write_some(
        &self,
        events: Events<'_>,
        start: Start<'_>,
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
            backoff,
        } = &mut *state;
        let state_dir = dir.dir();
        let guard = LockGuard::held(lock);
        let page = guard.lock_file().page();
        turns.count(page, waited_for_flock);
        self.check_options(page, outcome);
        self.follow_live_file(state_dir, page, handle, check_paths, outcome)?;
        // Only a check that succeeded counts: after a failed one (the path could not be
        // reopened), the next write must look again rather than trust the old handle.
        if check_paths {
            *last_path_check = Some(now);
        }
        let mut hold = Hold::begin(self, state_dir, page, handle, outcome, start, backoff)?;
        let written = hold.write(events)?;
        let (rotated, sweep, list_first) = (hold.rotated, hold.sweep, hold.list_first);
        let rotation_failed = hold.rotation_failed;
        let attempt = hold.attempt();
        Ok(Held {
            written,
            others_waiting: written < events.ends.len() && page.has_waiters(),
            rotation_failed,
            after: (rotated || list_first).then(|| After {
                dir: Arc::clone(state_dir),
                attempt,
                rotated,
                sweep,
                list_first,
            }),
        })
    }
}

impl<'a> Hold<'a> {
    /// The live file's length and period, as this hold starts.
    fn begin(
        inner: &'a Inner,
        dir: &'a Dir,
        page: &'a Page,
        handle: &'a mut LogHandle,
        outcome: &'a mut Outcome,
        start: Start<'a>,
        backoff: &'a mut RotationBackoff,
    ) -> io::Result<Self> {
        // From the kernel, every time: another program may have appended under the lock,
        // or cut the file (copytruncate), and a repair must know where an append began.
        let len = handle.len()?;
        // The lines of this hold belong to the period it is in.
        let clock = inner.settings.schedule().map(Clock::read);
        let period = match &clock {
            Some(clock) => Some(live_period::recorded_or_dated(page, handle, clock, len)?),
            None => None,
        };
        let mut hold = Hold {
            inner,
            dir,
            page,
            handle,
            outcome,
            len,
            clock,
            period,
            append_anyway: start.force_first,
            rotation_failed: start.rotation_failed,
            backoff,
            may_rotate: !start.rotation_failed,
            rotated: false,
            sweep: None,
            listed: start.listed,
            list_first: false,
            reopens: 0,
        };
        // A rotation that failed lately is not tried again yet: everything is appended.
        // (Asked only after a failure: the period's bounds cost a time-zone lookup.)
        if hold.backoff.is_failing() && hold.backoff.holds_off(&hold.attempt()) {
            hold.rotation_failed = true;
            hold.may_rotate = false;
        }
        Ok(hold)
    }

    /// What a rotation now would be tried for, for the back-off.
    fn attempt(&self) -> Attempt {
        Attempt {
            live: self.handle.id(),
            at: platform::coarse_now(),
            period: (self.clock.as_ref()).map(|c| c.schedule.bounds(c.now).0),
            fork_generation: platform::fork_generation(),
        }
    }

    /// Appends what fits and rotates at most once; how many events it wrote.
    fn write(&mut self, events: Events<'_>) -> io::Result<usize> {
        let Events {
            buf,
            mut start,
            ends,
        } = events;
        let mut first = 0;
        while first < ends.len() && !self.list_first {
            let last = self.fitting(start, ends, first);
            let period_over = self.period_over();
            if last == first || (period_over && self.may_rotate) {
                // One rotation per hold, so that others get their turn between rotations.
                if !self.may_rotate {
                    break;
                }
                self.rotate(period_over)?;
                continue;
            }
            self.append(buf, start, &ends[first..last])?;
            first = last;
            start = ends[last - 1];
        }
        Ok(first)
    }

    /// The end (exclusive) of the events from `first` on that go into the live file now.
    fn fitting(&self, start: usize, ends: &[usize], first: usize) -> usize {
        // The first event always goes into an empty file, even one larger than max_bytes
        // on its own; after it, events go in while the file has room.
        if self.rotation_failed {
            return ends.len();
        }
        let mut last = first;
        if self.len == 0 || self.append_anyway {
            last += 1;
        }
        let max_bytes = self.inner.settings.max_bytes;
        while last < ends.len() && rotation::fits(self.len, ends[last] - start, max_bytes) {
            last += 1;
        }
        last
    }

    /// Whether the live file is of an earlier period, and so takes no more lines.
    fn period_over(&self) -> bool {
        match (&self.clock, self.period) {
            (Some(clock), Some(period)) => period.is_over(clock),
            _ => false,
        }
    }

    /// Rotates once (or tries to), and takes the live file's length and period again.
    fn rotate(&mut self, period_over: bool) -> io::Result<()> {
        let stamp = match (&self.clock, self.period) {
            // Named after the start of its period, or of its own content.
            (Some(_), Some(period)) if period_over => period.stamp(),
            (Some(clock), _) => clock.now,
            (None, _) => rotation::unix_now(),
        };
        let rotation = self.inner.rotate(
            self.dir,
            self.page,
            self.handle,
            stamp,
            self.listed,
            self.outcome,
        )?;
        match rotation {
            Rotation::ListFirst => {
                self.may_rotate = false;
                self.list_first = true;
                return Ok(());
            }
            Rotation::Done(sweep) => {
                self.backoff.succeeded();
                self.may_rotate = false;
                self.rotated = true;
                self.sweep = sweep;
                // The fresh file keeps this process's schedule and options.
                self.period = (self.clock.as_ref()).map(|c| LivePeriod::fresh(c, period_over));
                self.inner.record_options(self.page);
            }
            Rotation::Failed => {
                self.may_rotate = false;
                self.rotation_failed = true;
                self.backoff.failed(self.attempt());
            }
            // Something else now sits at the path: decide again for it, but not forever if
            // it keeps changing.
            Rotation::Reopened => {
                self.reopens += 1;
                self.may_rotate = self.reopens < MAX_REOPENS;
                self.period = None;
            }
        }
        self.page.set_live(self.handle.id());
        self.len = self.handle.len()?;
        if let Some(clock) = &self.clock {
            let period = match self.period {
                Some(period) => period,
                None => live_period::dated(self.handle, clock, self.len)?,
            };
            period.record(self.page, self.handle);
            self.period = Some(period);
        }
        Ok(())
    }

    /// Appends the events ending at `ends` (the first begins at `start`) in one write,
    /// recording the intent in the page first, so that the next holder can cut off what
    /// a holder killed half-way left.
    fn append(&mut self, buf: &[u8], start: usize, ends: &[usize]) -> io::Result<()> {
        self.append_anyway = false;
        let chunk = &buf[start..ends[ends.len() - 1]];
        self.page.begin_write(WriteIntent {
            file: self.handle.id(),
            len_before: self.len,
            len: chunk.len() as u64,
        });
        if let Err(failed) = self.handle.append(chunk, ends, start) {
            self.outcome.events_written += failed.events_kept as u64;
            self.outcome.bytes_written += failed.bytes_kept;
            // If the cut failed, the intent stays, so the next holder repairs the partial
            // line before anything is glued onto it.
            if failed.cut_back {
                self.page.end_write();
            }
            return Err(failed.error);
        }
        self.len += chunk.len() as u64;
        self.page.end_write();
        self.outcome.events_written += ends.len() as u64;
        self.outcome.bytes_written += chunk.len() as u64;
        Ok(())
    }
}
