//! The rotation policy options of [`Builder`]: time rotation, naming, retention and
//! compression.

use std::time::Duration;

use time::UtcOffset;

use super::Builder;
use crate::rotation::{Naming, Period, Zone};

/// A zone that `build()` looks up in the tz database.
#[derive(Debug, Clone)]
pub(super) enum ZoneChoice {
    Named(String),
    System,
}

impl ZoneChoice {
    pub(super) fn resolve(&self) -> Option<Zone> {
        match self {
            ZoneChoice::Named(name) => Zone::named(name),
            ZoneChoice::System => Zone::system(),
        }
    }
}

impl Builder {
    /// Also rotates when a period ends: every minute, hour, day or week, or every custom
    /// [`Duration`] of whole seconds (at least one). Default: no time rotation.
    ///
    /// Size rotation goes on as well: a file rotates when its period ends or when the next
    /// event would take it past `max_bytes`, whichever comes first. For time rotation
    /// alone, set `max_bytes(u64::MAX)`.
    ///
    /// A line belongs to the period in which it is written, under the lock: a line is
    /// never written into a file of an earlier period. Exactly one rotation happens per
    /// boundary across all processes, since the period of the live file is recorded in the
    /// lock file's shared page; if nobody logged when a period ended, the first write after
    /// it rotates the stale file, once.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{Period, SharedFile};
    ///
    /// let hourly = SharedFile::builder("logs/app.log").rotate_every(Period::Hour);
    /// ```
    #[must_use]
    pub fn rotate_every(mut self, period: Period) -> Self {
        self.settings.rotate_every = Some(period);
        self
    }

    /// The offset from UTC at which periods start, for [`Builder::rotate_every`]: with
    /// `UtcOffset::from_hms(2, 0, 0)`, a day starts at 22:00 UTC. Default: UTC. Replaces
    /// a [`time_zone`](Self::time_zone) set before it (the last one set counts).
    ///
    /// Archive names are in UTC whatever this is.
    ///
    /// # Examples
    ///
    /// ```
    /// use time::UtcOffset;
    /// use tracing_shared_file::{Period, SharedFile};
    ///
    /// let builder = SharedFile::builder("logs/app.log")
    ///     .rotate_every(Period::Day)
    ///     .utc_offset(UtcOffset::from_hms(-5, 0, 0)?);
    /// # Ok::<(), time::error::ComponentRange>(())
    /// ```
    #[must_use]
    pub fn utc_offset(mut self, offset: UtcOffset) -> Self {
        self.settings.zone = Zone::Fixed(offset);
        self.zone = None;
        self
    }

    /// Counts [`rotate_every`](Self::rotate_every)'s periods in a time zone of the
    /// system's tz database (`/usr/share/zoneinfo`), daylight saving time included: with
    /// `"Europe/Berlin"` and [`Period::Day`], the log rotates at every local midnight, 23
    /// hours after the last one on the day clocks go forward and 25 hours after it on the
    /// day they go back. Hours and minutes follow the offset in force, so a repeated hour
    /// is two periods. Replaces a [`utc_offset`](Self::utc_offset) set before it.
    ///
    /// Archive names stay in UTC, so that they sort in time order across the changes.
    /// Every process sharing the log should count in the same zone (see the options table
    /// in the README): the live file keeps the schedule it was opened under until it
    /// rotates.
    ///
    /// [`build`](Self::build) fails with [`ErrorKind::UnknownTimeZone`](crate::ErrorKind)
    /// if the database has no such zone.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{Period, SharedFile};
    ///
    /// let berlin_midnight = SharedFile::builder("logs/app.log")
    ///     .rotate_every(Period::Day)
    ///     .time_zone("Europe/Berlin");
    /// ```
    #[must_use]
    pub fn time_zone(mut self, name: &str) -> Self {
        self.zone = Some(ZoneChoice::Named(name.to_owned()));
        self
    }

    /// Counts [`rotate_every`](Self::rotate_every)'s periods in the system's time zone:
    /// the one `TZ` names, else `/etc/localtime`, as looked up when
    /// [`build`](Self::build) runs; see [`time_zone`](Self::time_zone).
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{Period, SharedFile};
    ///
    /// let local_midnight = SharedFile::builder("logs/app.log")
    ///     .rotate_every(Period::Day)
    ///     .system_time_zone();
    /// ```
    #[must_use]
    pub fn system_time_zone(mut self) -> Self {
        self.zone = Some(ZoneChoice::System);
        self
    }

    /// How archives are named. Default: [`Naming::Numbered`].
    ///
    /// Numbered names (`app.log.1` newest) suit logrotate habits, but every rotation
    /// renames every archive kept, so its cost grows with `max_files`. Timestamped names
    /// (`app.log.2026-11-27T14-00-00Z`) suit shippers and large retention: a rotation is
    /// one rename, and an archive never changes its name. The stamp is the start of the
    /// period for a time rotation (or of the file, if a size rotation came first in that
    /// period), and the time of the rotation for a size rotation; more rotations in the
    /// same second add a counter (`…Z.1`, `…Z.2`), which orders them as a number.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{Naming, SharedFile};
    ///
    /// let builder = SharedFile::builder("logs/app.log").naming(Naming::Timestamped);
    /// ```
    #[must_use]
    pub fn naming(mut self, naming: Naming) -> Self {
        self.settings.naming = naming;
        self
    }

    /// Deletes archives older than this: judged by the time in the name (timestamped
    /// names; with [`rotate_every`](Self::rotate_every), from the end of the period that
    /// time falls in, since a time rotation names the archive after its period's start)
    /// or by the last modification (numbered names). Default: no limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_shared_file::SharedFile;
    ///
    /// let a_week = SharedFile::builder("logs/app.log").max_age(Duration::from_secs(7 * 86_400));
    /// ```
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.settings.max_age = Some(age);
        self
    }

    /// Deletes the oldest archives while the archives together (the live file not
    /// counted) take more than this many bytes on disk. Default: no limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    ///
    /// let a_gigabyte = SharedFile::builder("logs/app.log").max_total_bytes(1 << 30);
    /// ```
    #[must_use]
    pub fn max_total_bytes(mut self, bytes: u64) -> Self {
        self.settings.max_total_bytes = Some(bytes);
        self
    }

    /// Gzips archives on a background thread, never while holding the lock and never on
    /// the thread that logged. Default: `false`. Needs [`Naming::Timestamped`], and the
    /// `compress` cargo feature (`features = ["compress"]`), which brings the gzip code:
    /// without it, `build()` refuses `compress(true)` with
    /// [`ErrorKind::CompressionNeedsFeature`](crate::ErrorKind::CompressionNeedsFeature).
    ///
    /// The newest archive stays uncompressed until the next rotation, like logrotate's
    /// `delaycompress`: a follower (`tail -F`, a shipper) may still be reading it. An
    /// archive is compressed to a hidden temporary file, synced, renamed to its `.gz` name,
    /// and only then removed: a process killed at any moment leaves the archive, the
    /// complete `.gz`, or both, and the next process that rotates finishes the job. A
    /// process claims an archive before compressing it, so two processes never compress
    /// the same one.
    ///
    /// One thread per process compresses for every log that asks. A process that exits
    /// normally (returning from `main`, or `std::process::exit`) first waits for the
    /// compression under way, up to [`compress_exit_timeout`](Self::compress_exit_timeout);
    /// so does the drop of a [`WorkerGuard`](crate::WorkerGuard), and
    /// [`SharedFile::wait_for_compression`](crate::SharedFile::wait_for_compression) waits
    /// on request.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{Naming, SharedFile};
    ///
    /// let builder = SharedFile::builder("logs/app.log")
    ///     .naming(Naming::Timestamped)
    ///     .compress(true);
    /// ```
    #[must_use]
    pub fn compress(mut self, compress: bool) -> Self {
        self.settings.compress = compress;
        self
    }

    /// The longest a process's normal exit waits for its compression to finish (with
    /// several logs, the longest of their limits), and a
    /// [`WorkerGuard`](crate::WorkerGuard)'s drop for this log's. Default:
    /// [`DEFAULT_COMPRESS_EXIT_TIMEOUT`](crate::DEFAULT_COMPRESS_EXIT_TIMEOUT), 10 s.
    ///
    /// An exit with a 100 MiB archive to gzip waited 1.3 to 2.3 s in the measurements of
    /// `docs/rotation.md`, one with a 16 KiB archive about 10 ms. When the limit passes,
    /// the compression under way stops within one 64 KiB block, removes its temporary
    /// file, and the process exits; the archive stays plain until a pass after a later
    /// rotation, in any process, compresses it. `Duration::ZERO` does not wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_shared_file::{Naming, SharedFile};
    ///
    /// let builder = SharedFile::builder("logs/app.log")
    ///     .naming(Naming::Timestamped)
    ///     .compress(true)
    ///     .compress_exit_timeout(Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn compress_exit_timeout(mut self, timeout: Duration) -> Self {
        self.settings.compress_exit_timeout = timeout;
        self
    }
}
