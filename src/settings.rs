//! [`Settings`]: the options every write consults, as [`Builder`](crate::Builder) checked
//! them, and their defaults. A plain value below the builder, so that the write path
//! never depends on the front door.

use std::time::Duration;

use crate::rotation::{Naming, Period, Schedule, Zone};

/// The default for [`Builder::max_bytes`](crate::Builder::max_bytes): 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The default for [`Builder::max_files`](crate::Builder::max_files): 5 rotated files.
pub const DEFAULT_MAX_FILES: usize = 5;

/// The default for [`Builder::path_check_interval`](crate::Builder::path_check_interval): 10 ms.
pub const DEFAULT_PATH_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// The default for
/// [`Builder::compress_exit_timeout`](crate::Builder::compress_exit_timeout): 10 s.
pub const DEFAULT_COMPRESS_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The options every write consults; checked by [`Builder::build`](crate::Builder::build).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_bytes: u64,
    pub(crate) max_files: usize,
    pub(crate) path_check_interval: Duration,
    pub(crate) lock_timeout: Option<Duration>,
    pub(crate) file_mode: Option<u32>,
    /// When to rotate by time, if at all, and the zone periods are counted in.
    pub(crate) rotate_every: Option<Period>,
    pub(crate) zone: Zone,
    pub(crate) naming: Naming,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_total_bytes: Option<u64>,
    pub(crate) compress: bool,
    /// How long an exit waits for this log's compression under way.
    pub(crate) compress_exit_timeout: Duration,
}

impl Settings {
    /// When to rotate by time, if at all.
    pub(crate) fn schedule(&self) -> Option<Schedule> {
        self.rotate_every.map(|period| Schedule {
            period,
            zone: self.zone.clone(),
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: DEFAULT_MAX_FILES,
            path_check_interval: DEFAULT_PATH_CHECK_INTERVAL,
            lock_timeout: None,
            file_mode: None,
            rotate_every: None,
            zone: Zone::default(),
            naming: Naming::Numbered,
            max_age: None,
            max_total_bytes: None,
            compress: false,
            compress_exit_timeout: DEFAULT_COMPRESS_EXIT_TIMEOUT,
        }
    }
}
