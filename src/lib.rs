//! One log file, rotated by size, shared safely by many processes.
//!
//! Pre-fork servers, worker pools and CLIs started by cron all want to append to one log
//! file that `tail -F` and log shippers can follow. [`SharedFile`] makes that safe:
//!
//! - every event is appended while holding an exclusive `flock(2)` on a side lock file
//!   (`app.log.lock`), so lines from different processes never interleave;
//! - under that lock, the writer learns from a record in the lock file's shared page
//!   whether another process rotated (and reopens), and every `path_check_interval` checks
//!   by device and inode whether another program moved or deleted the file;
//! - the size that decides rotation is taken from the kernel under the lock, so exactly
//!   one process rotates, and no file exceeds `max_bytes` unless it holds one event that
//!   is larger on its own (or a rotation failed, which is reported);
//! - what a killed process left half-written, or a failed write left behind, is cut off
//!   by the next lock holder, back to the length the kernel reported before that append;
//! - files are opened, renamed and deleted through the log directory's descriptor, never
//!   through a symbolic link that appeared after `build()`.
//!
//! # Examples
//!
//! ```no_run
//! use tracing_shared_file::SharedFile;
//! use tracing_subscriber::prelude::*;
//!
//! let log = SharedFile::builder("logs/app.log")
//!     .max_bytes(10 * 1024 * 1024) // rotate before a write would take the file past 10 MiB
//!     .max_files(5)                // keep app.log.1 (newest) ..= app.log.5
//!     .build()?;
//!
//! tracing_subscriber::registry().with(log.layer()).init();
//! tracing::info!("hello from process {}", std::process::id());
//! # Ok::<(), tracing_shared_file::Error>(())
//! ```
//!
//! Any `fmt` layer can write through it too; wrap its format in [`PanicSafe`] so that a
//! `Debug` impl that panics cannot glue half an event to the next:
//! `tracing_subscriber::fmt::layer().json().with_writer(log.clone()).map_event_format(PanicSafe::new)`.
//!
//! # Platform support
//!
//! Unix, tested on Linux. Windows is not supported yet.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod builder;
mod critical_section;
mod error;
mod event_writer;
mod fork;
mod handle;
mod layer;
mod line_format;
mod lock;
mod log_dir;
mod non_blocking;
mod panic_safe;
mod platform;
mod report;
mod rotation;
mod stats;
mod writer;

pub use builder::{Builder, DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, DEFAULT_PATH_CHECK_INTERVAL};
pub use error::{Error, ErrorKind};
pub use event_writer::EventWriter;
pub use layer::{NonBlockingLayer, SharedFileFormat, SharedFileLayer};
pub use line_format::LineFormat;
pub use non_blocking::{
    DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_QUEUED_BYTES, NonBlocking, NonBlockingBuilder, WorkerGuard,
};
pub use panic_safe::PanicSafe;
pub use report::IoFailure;
pub use rotation::{Naming, Period};
pub use stats::Stats;
/// The offset of [`Builder::utc_offset`], from the `time` crate.
pub use time::UtcOffset;
pub use writer::SharedFile;

#[cfg(test)]
mod tests {
    #[test]
    fn public_types_can_be_shared_across_threads() {
        fn assert_shareable<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
        assert_shareable::<crate::SharedFile>();
        assert_shareable::<crate::NonBlocking>();
        fn assert_send_sync<T: Send + Sync + std::fmt::Debug>() {}
        assert_send_sync::<crate::WorkerGuard>();
        assert_send_sync::<crate::Error>();
        assert_send_sync::<crate::Builder>();
    }
}
