//! Non-blocking mode: application threads only queue their events, and one background
//! thread writes them to the shared file in batches, each under one hold of the lock.
//! The `WorkerGuard` it returns flushes the queue when dropped; `guard.flush()` does so
//! without dropping it, which a program that ends with `std::process::exit` needs, since
//! `exit` runs no destructors.
//!
//! ```text
//! cargo run --example non_blocking
//! ```
//!
//! Four threads log 5,000 events each into a file that rotates every 64 KiB; after the
//! flush the example reads every file back, checks that each event is there exactly once,
//! prints the writer's `stats()`, and exits with `std::process::exit`.

use std::collections::BTreeSet;
use std::error::Error;
use std::path::Path;

use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

const THREADS: u64 = 4;
const EVENTS_PER_THREAD: u64 = 5_000;
const MAX_BYTES: u64 = 64 * 1024;
/// Enough to keep every rotated file of this run, so that every event can be checked.
const MAX_FILES: usize = 100;

fn main() {
    let dir = match fresh_dir() {
        Ok(dir) => dir,
        Err(error) => fail(&error),
    };
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap_or_else(|error| fail(&error));
    println!("non_blocking: logging to {}", log.path().display());

    // The guard must live as long as logging goes on: dropping it stops the writer.
    let (writer, guard) = log.non_blocking();
    // The same lines as `log.layer()` writes, through the queue.
    tracing_subscriber::registry().with(writer.layer()).init();

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            scope.spawn(move || {
                for seq in 0..EVENTS_PER_THREAD {
                    let request = thread * EVENTS_PER_THREAD + seq;
                    tracing::info!(request, "handled");
                }
            });
        }
    });

    // Everything queued so far is in the file once this returns; the writer keeps
    // running. Without it, the `exit` below would lose whatever was still queued.
    guard.flush();

    let stats = log.stats();
    println!(
        "  stats       {} events written ({} bytes), {} rotations, {} dropped, {} write errors",
        stats.events_written,
        stats.bytes_written,
        stats.rotations,
        stats.events_dropped,
        stats.write_errors
    );
    println!(
        "  lock wait   {:.1} ms in all, {:.1} ms at most",
        stats.lock_wait_total.as_secs_f64() * 1e3,
        stats.lock_wait_max.as_secs_f64() * 1e3
    );
    let code = match check(log.path()) {
        Ok(()) if stats.events_written == THREADS * EVENTS_PER_THREAD => {
            println!(
                "OK: all {} events are in the files, each once.",
                THREADS * EVENTS_PER_THREAD
            );
            0
        }
        Ok(()) => {
            println!(
                "FAILED: stats() counted {} events written",
                stats.events_written
            );
            1
        }
        Err(problem) => {
            println!("FAILED: {problem}");
            1
        }
    };
    // A server that ends on a signal, or a CLI with an exit code, often ends like this;
    // `guard` is never dropped, so the flush above is what saved the queued events.
    std::process::exit(code);
}

/// Checks that the live file and its archives hold `request=0` to the last request
/// exactly once each, on `INFO` lines.
fn check(log: &Path) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    let mut files = 0;
    // `app.log`, then `app.log.1` (the newest archive) and on, until one is missing.
    for index in 0..=MAX_FILES {
        let path = match index {
            0 => log.to_path_buf(),
            n => log.with_file_name(format!("app.log.{n}")),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && index > 0 => break,
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        files += 1;
        for line in text.lines() {
            let request = line
                .split_once(" INFO ")
                .and_then(|(_, rest)| rest.split_once(": handled request="))
                .and_then(|(_, number)| number.parse::<u64>().ok())
                .ok_or_else(|| format!("unexpected line in {}: {line:?}", path.display()))?;
            if !seen.insert(request) {
                return Err(format!("request={request} is in the files twice"));
            }
        }
    }
    let total = THREADS * EVENTS_PER_THREAD;
    if seen.len() as u64 != total || seen.last().is_some_and(|&last| last != total - 1) {
        return Err(format!("{} of {total} events are in the files", seen.len()));
    }
    println!(
        "  files       {files} (the live file and {} archives)",
        files - 1
    );
    Ok(())
}

/// A new directory under the system temp directory, kept afterwards so that you can look
/// at the files.
fn fresh_dir() -> Result<std::path::PathBuf, std::io::Error> {
    Ok(tempfile::Builder::new()
        .prefix("tracing-shared-file-non-blocking-")
        .tempdir()?
        .keep())
}

fn fail(error: &dyn Error) -> ! {
    eprintln!("non_blocking: {error}");
    std::process::exit(1)
}
