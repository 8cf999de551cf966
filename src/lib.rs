//! One log file, rotated by size or time, shared safely by many processes: a writer for
//! [`tracing-subscriber`](https://docs.rs/tracing-subscriber/0.3).
//!
//! # The problem
//!
//! Pre-fork servers, worker pools and jobs that cron starts every minute run as several
//! processes at once. They usually want one `logs/app.log` that `tail -F` and log shippers
//! can follow, rotated so that it never fills the disk. Appending from several processes is
//! the easy part. Rotation is where things break: each process decides to rotate from its
//! own idea of the file's size, two processes rotate at once, lines land in a file that was
//! already archived, one write is split across two files.
//!
//! [`SharedFile`] serialises every event, and every rotation, across all the processes
//! that open the same path, with an exclusive `flock(2)` on a side lock file.
//!
//! # Quick start
//!
//! Every process builds its own [`SharedFile`], with the same path and the same options:
//!
//! ```no_run
//! use tracing_shared_file::SharedFile;
//! use tracing_subscriber::prelude::*;
//!
//! let log = SharedFile::builder("logs/app.log")
//!     .max_bytes(10 * 1024 * 1024) // rotate before a write would take the file past 10 MiB
//!     .max_files(5) // keep app.log.1 (newest) ..= app.log.5 besides app.log
//!     .build()?;
//!
//! tracing_subscriber::registry().with(log.layer()).init();
//! tracing::info!("hello from process {}", std::process::id());
//! # Ok::<(), tracing_shared_file::Error>(())
//! ```
//!
//! - [`SharedFile::layer`] is a ready-made [`fmt::Layer`](https://docs.rs/tracing-subscriber/0.3/tracing_subscriber/fmt/struct.Layer.html)
//!   that writes lines in [`LineFormat`] (UTC timestamps with six fraction digits, the
//!   level, the process id), without ANSI colours.
//! - Any other `fmt` layer can write to the file too, JSON for instance: `SharedFile`
//!   implements [`MakeWriter`](https://docs.rs/tracing-subscriber/0.3/tracing_subscriber/fmt/trait.MakeWriter.html). Wrap its event format
//!   with `map_event_format(PanicSafe::new)`, as the ready-made layer does, so that an
//!   event whose `Debug` impl panics is dropped whole rather than glued to the next one
//!   (see [`PanicSafe`]).
//! - Without `tracing`, `&SharedFile` implements [`std::io::Write`]: each `write` call is
//!   one event.
//! - [`SharedFile::non_blocking`] gives a [`NonBlocking`] writer, whose background thread
//!   writes the queued events in batches, and a [`WorkerGuard`] that writes what is still
//!   queued when dropped. [`WorkerGuard::flush`] does it on demand, before
//!   `std::process::exit` for instance. [`NonBlocking::layer`] is the same ready-made layer.
//! - The [`Builder`] sets the rotation: [`max_bytes`](Builder::max_bytes),
//!   [`max_files`](Builder::max_files) (archives kept besides the live file),
//!   [`rotate_every`](Builder::rotate_every), [`naming`](Builder::naming),
//!   [`max_age`](Builder::max_age), [`max_total_bytes`](Builder::max_total_bytes), and
//!   [`compress`](Builder::compress) (gzip, with the `compress` cargo feature, the crate's
//!   only one; a process's normal exit waits for its compression, up to
//!   [`compress_exit_timeout`](Builder::compress_exit_timeout)).
//!
//! # Guarantees
//!
//! These hold for every process and thread that writes through a `SharedFile` on the same
//! path. `docs/guarantees.md` in the repository gives the detail and what is not promised,
//! and `tests/README.md` the tests behind each (and which of them run real processes).
//!
//! - **No line is lost, duplicated or torn**, across processes and across rotations. A
//!   write that fails (a full disk, say) is returned as an error, counted in [`Stats`] and
//!   reported, and leaves no part of its event in the file.
//! - **No file is larger than `max_bytes`**, unless it holds one event that is larger on
//!   its own, or a rotation failed (reported).
//! - **Exactly one process performs each rotation**, and the others notice it before their
//!   next write.
//! - **A process killed in the middle of an append leaves nothing half-written**: the next
//!   process to take the lock cuts the unfinished append off.
//! - **Children forked without exec** (pre-fork servers) log through the `SharedFile` their
//!   parent built, each under the lock like any other process.
//! - **Other programs** that move, delete or replace the log (logrotate, an operator) are
//!   noticed within [`path_check_interval`](Builder::path_check_interval); a symbolic link
//!   put at the log's path or in place of its directory after [`build`](Builder::build)
//!   never redirects a write.
//! - **Failures are visible**: counted in [`SharedFile::stats`], and reported on stderr
//!   (each kind at most once every 10 seconds) or to your [`on_error`](Builder::on_error)
//!   hook.
//!
//! # How it works
//!
//! The lock is taken on a side file, `app.log.lock`, that rotation never renames or
//! deletes, so it excludes every process however often the log rotates. Its first page is
//! mapped into every process (`mmap`, `MAP_SHARED`), where lock holders leave each other
//! notes. An in-process mutex orders a process's own threads, which share one flock.
//!
//! ```text
//!  process A ─┐                          app.log.lock, page 0, mapped by every process:
//!  process B ─┼─ flock(LOCK_EX) ───────▶   the live file (device, inode)
//!  process C ─┘                            the append under way (file, length before it)
//!                                          the live file's period, what is known of the archives
//!  under the lock, for each event (or batch of events):
//!    1. the page names another file than my handle?   a peer rotated: reopen app.log
//!       (every path_check_interval, also stat the directory, app.log and the lock file)
//!    2. the page records an append that never finished?   its writer was killed:
//!       cut app.log back to the length before it
//!    3. length = lseek(app.log, 0, SEEK_END)
//!    4. the event would take app.log past max_bytes, or its period has ended?   rotate:
//!         numbered     app.log.1 → app.log.2 (and so on, oldest first), app.log → app.log.1
//!         timestamped  app.log → app.log.2026-11-27T14-00-00Z
//!       delete what the retention limits do not keep, open a fresh app.log
//!       (gzip, if asked for, comes later, on a background thread, off the lock)
//!    5. record the append in the page, write(2) it (O_APPEND), record the new length
//!  unlock
//! ```
//!
//! The size that decides a rotation comes from the kernel under the lock, so a process
//! that waited behind the rotator finds the fresh, small file and does not rotate again.
//! The live file keeps its name, and rotation renames it away (never copy-and-truncate),
//! which is what `tail -F` and log shippers follow. In non-blocking mode one hold of the
//! lock writes a batch: every run of events that fits in the live file in one `write(2)`,
//! rotating between events, never inside one.
//!
//! # Limits
//!
//! - **Platforms.** Linux is tested. Windows is tested under Wine 8, not on Windows, and
//!   differs there (no fork handling, no `file_mode`, a deleted live file keeps its name
//!   until its writers close it). macOS and FreeBSD are type-checked, never run; see the
//!   README's *Platform support and MSRV* and `docs/platforms.md`.
//! - **Network file systems are untested.** The lock is only as good as the file system's
//!   `flock(2)`: Linux's NFS client, for one, turns it into a byte-range lock that the server
//!   arbitrates, unless the file system is mounted with `local_lock=flock` or `nolock`, and
//!   then processes on different machines do not exclude each other at all. The lock file's
//!   page is shared memory, which is not kept coherent between machines either. Keep the
//!   processes that share a log on one machine.
//! - **A file system without a working `flock(2)`.** Where `flock` fails, `build()` still
//!   succeeds (it does not take the lock), but every write fails: dropped, counted and
//!   reported. Where `flock` succeeds without excluding anyone, nothing here can tell, and
//!   none of the guarantees hold.
//! - **Programs that append without the lock** can tear lines, and deleting or truncating
//!   the lock file at the wrong moment can let one write overlap another, or fault;
//!   *What is not promised* in `docs/guarantees.md` lists these cases.
//! - **Cost.** The synchronous writer takes the lock for every event: a few system calls
//!   (`flock`, an `fstat` of the lock file, an `lseek`, the `write`, the unlock) where a
//!   single-process logger makes one `write`. The non-blocking writer pays them once per
//!   batch.
//!
//! # Compared with `tracing-appender`
//!
//! [`tracing-appender`](https://docs.rs/tracing-appender) is the `tracing` project's own
//! file writer, and the simpler choice when only one process writes each file, or on
//! Windows.
//!
//! |                       | `tracing-appender`  | `tracing-shared-file`                   |
//! |-----------------------|---------------------|-----------------------------------------|
//! | processes per file    | one (tokio-rs/tracing#2919 declined more) | any number        |
//! | rotation              | by time, or never   | by size and by time                     |
//! | the live file's name  | holds the date when it rotates: a new file each period | fixed: archives are renamed away |
//! | retention             | a number of files   | a number of files, an age, a total size; gzip |
//! | queue full (non-blocking) | drops the event, by default | waits for room, by default    |
//! | flush on demand       | no, only on drop    | [`WorkerGuard::flush`]                  |
//! | platforms             | Unix and Windows    | Unix                                    |
//!
//! # Cargo features
//!
//! - `compress` (off by default): brings the gzip code (`flate2`) that
//!   [`Builder::compress`] needs. The method is there without the feature too, so that it
//!   shows here and in a code completion; `build()` then refuses `compress(true)` with
//!   [`ErrorKind::CompressionNeedsFeature`], whose message says what to add to `Cargo.toml`.

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
#[cfg(unix)]
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
mod settings;
mod stats;
mod writer;

pub use builder::Builder;
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
pub use settings::{
    DEFAULT_COMPRESS_EXIT_TIMEOUT, DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES,
    DEFAULT_PATH_CHECK_INTERVAL,
};
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
