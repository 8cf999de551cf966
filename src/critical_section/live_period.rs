//! Which period the live file's lines belong to, when the log rotates by time.
//!
//! The page records the live file's period, so that exactly one process rotates at each
//! boundary. A file the page says nothing of (a new or damaged lock file, or a file
//! another program put there) is dated by its last modification. A period is never
//! taken as the epoch's: a clock that was not set (before 2000) dates lines now.

use std::io;

use crate::handle::LogHandle;
use crate::lock::Page;
use crate::rotation::{self, Schedule};

/// The clock of a hold, when the log rotates by time.
pub(super) struct Clock {
    pub(super) schedule: Schedule,
    /// Seconds since the Unix epoch.
    pub(super) now: i64,
    /// The start of the period `now` is in.
    pub(super) current: i64,
}

impl Clock {
    /// The clock now, for `schedule`.
    pub(super) fn read(schedule: Schedule) -> Self {
        let now = rotation::unix_now();
        Clock {
            schedule,
            now,
            current: schedule.start_of(now),
        }
    }
}

/// The period the live file's lines belong to, and when its content began.
#[derive(Debug, Clone, Copy)]
pub(super) struct LivePeriod {
    pub(super) start: i64,
    pub(super) since: i64,
}

impl LivePeriod {
    /// Whether the file is of a period before the clock's: it takes no more lines.
    pub(super) fn is_over(&self, clock: &Clock) -> bool {
        self.start < clock.current
    }

    /// The time an archive of this file is named after: the start of its period, or of
    /// its own content if that began later.
    pub(super) fn stamp(&self) -> i64 {
        self.start.max(self.since)
    }

    /// A fresh file's period: the current one, begun now, or at the period's start when
    /// the period's end made it.
    pub(super) fn fresh(clock: &Clock, made_by_period_end: bool) -> Self {
        LivePeriod {
            start: clock.current,
            since: if made_by_period_end {
                clock.current
            } else {
                clock.now
            },
        }
    }
}

/// The live file's period, as the page records it for this file; or, if it records
/// none (another file, or a value that is no period start: a new or damaged lock file),
/// as the file's last modification says, which is then recorded.
pub(super) fn recorded_or_dated(
    page: &Page,
    handle: &LogHandle,
    clock: &Clock,
    len: u64,
) -> io::Result<LivePeriod> {
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
    let period = dated(handle, clock, len)?;
    page.set_period(handle.id(), period.start, period.since);
    Ok(period)
}

/// The period of a file's lines, from its last modification: an empty file holds none,
/// so it is of the current period, and so is one modified in the future or before 2000.
pub(super) fn dated(handle: &LogHandle, clock: &Clock, len: u64) -> io::Result<LivePeriod> {
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
