//! Which period the live file's lines belong to, when the log rotates by time.
//!
//! The rule, for processes that disagree (other periods, zones or versions, clocks ahead
//! or behind): **the live file keeps the schedule it was opened under until it rotates.**
//! The page records the start and end of its period as the process that opened it (by
//! rotating, or by finding it unrecorded) counted them; every process rotates it when its
//! own clock reaches that recorded end, and never earlier, whatever its own period. The
//! process that rotates records its own schedule for the fresh file. So:
//!
//! - a file rotates at most once per boundary of its recorded period: the fresh file's
//!   period is counted from the rotating clock, and ends after it;
//! - a process whose clock is behind finds the recorded period in its own future, and
//!   appends; one whose clock is ahead rotates once, and records a period that the others
//!   then find in their future;
//! - an older version of the crate records its period only in words this version does not
//!   write, so neither misreads the other (see `lock::page`).
//!
//! A file the page says nothing of (a new or damaged lock file, a file another program
//! put there) is dated by its last modification. A period is never taken as the epoch's:
//! a clock that was not set (before 2000) dates lines now.

use std::io;

use crate::handle::LogHandle;
use crate::lock::{Page, RecordedPeriod};
use crate::rotation::{self, Schedule};

/// The clock of a hold, when the log rotates by time.
pub(super) struct Clock {
    pub(super) schedule: Schedule,
    /// Seconds since the Unix epoch.
    pub(super) now: i64,
}

impl Clock {
    /// The clock now, for `schedule`.
    pub(super) fn read(schedule: Schedule) -> Self {
        Clock {
            schedule,
            now: rotation::unix_now(),
        }
    }
}

/// The period the live file's lines belong to, and when its content began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LivePeriod {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) since: i64,
}

impl LivePeriod {
    /// Whether the clock has reached the end of the file's recorded period: it takes no
    /// more lines. A period in the clock's future is not over.
    pub(super) fn is_over(&self, clock: &Clock) -> bool {
        clock.now >= self.end
    }

    /// The time an archive of this file is named after: the start of its period, or of
    /// its own content if that began later.
    pub(super) fn stamp(&self) -> i64 {
        self.start.max(self.since)
    }

    /// A fresh file's period, by this clock's schedule: the current one, begun now, or at
    /// the period's start when the period's end made it.
    pub(super) fn fresh(clock: &Clock, made_by_period_end: bool) -> Self {
        let (start, end) = clock.schedule.bounds(clock.now);
        LivePeriod {
            start,
            end,
            since: if made_by_period_end { start } else { clock.now },
        }
    }

    /// The period by this clock's schedule that `at` (clamped to the clock's range of
    /// plausible times) falls in.
    fn around(clock: &Clock, at: i64) -> Self {
        let at = if at >= rotation::EARLIEST {
            at.min(clock.now)
        } else {
            clock.now
        };
        let (start, end) = clock.schedule.bounds(at);
        LivePeriod {
            start,
            end,
            since: start,
        }
    }

    /// Records this period for `handle`'s file.
    pub(super) fn record(&self, page: &Page, handle: &LogHandle) {
        page.set_schedule(
            handle.id(),
            RecordedPeriod {
                start: self.start,
                end: self.end,
                since: self.since,
            },
        );
    }
}

/// A recorded period that can be true: not before 2000, and ending after it starts.
fn believable(recorded: RecordedPeriod) -> Option<LivePeriod> {
    if recorded.start < rotation::EARLIEST || recorded.end <= recorded.start {
        return None;
    }
    // A content start outside its period is no start: take the period's.
    let since = if (recorded.start..recorded.end).contains(&recorded.since) {
        recorded.since
    } else {
        recorded.start
    };
    Some(LivePeriod {
        start: recorded.start,
        end: recorded.end,
        since,
    })
}

/// The live file's period, as the page records it for this file; or, if this version's
/// words record none, from what an older version recorded for it, or from the file's
/// last modification; either is then recorded.
pub(super) fn recorded_or_dated(
    page: &Page,
    handle: &LogHandle,
    clock: &Clock,
    len: u64,
) -> io::Result<LivePeriod> {
    if let Some(period) = page.schedule_of(handle.id()).and_then(believable) {
        // An empty file holds no line of an earlier period: it need not rotate.
        if len > 0 || !period.is_over(clock) {
            return Ok(period);
        }
    }
    let period = match page.period_of(handle.id()) {
        // An older version's record: its period start (which this schedule may not
        // produce) and content start, counted by this schedule.
        Some((start, since)) if len > 0 && start >= rotation::EARLIEST => {
            LivePeriod::around(clock, start.max(since))
        }
        _ => dated(handle, clock, len)?,
    };
    period.record(page, handle);
    Ok(period)
}

/// The period of a file's lines, from its last modification: an empty file holds none,
/// so it is of the current period, and so is one modified in the future or before 2000.
pub(super) fn dated(handle: &LogHandle, clock: &Clock, len: u64) -> io::Result<LivePeriod> {
    let modified = match len {
        0 => clock.now,
        _ => handle.modified()?,
    };
    Ok(LivePeriod::around(clock, modified))
}
