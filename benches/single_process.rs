//! One process, one thread: the cost per 120-byte line of each way to append it, side by
//! side in one run, with ratios against the raw floors printed at the end.
//!
//! Run with `cargo bench --bench single_process`. Every line goes through the same
//! `tracing` fmt layer wherever `tracing` is involved.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use tracing_shared_file::{DEFAULT_PATH_CHECK_INTERVAL, SharedFile};
use tracing_subscriber::prelude::*;

/// 120 bytes with its newline, like a typical log line.
const RAW_LINE: &[u8; 120] = b"2026-11-26T15:00:00.123456Z  INFO bench: request handled method=GET path=/api/v1/items status=200 elapsed_ms=12 id=4200\n";
/// Big enough that rotation is rare in the steady-state benchmarks.
const LARGE: u64 = 64 * 1024 * 1024;
/// Small enough that rotation dominates.
const SMALL: u64 = 64 * 1024;

fn append_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// One event through tracing, about as long as `RAW_LINE` once the fmt layer has added
/// its timestamp, level and target.
fn log_one(i: u64) {
    tracing::info!(
        target: "bench",
        method = "GET",
        path = "/api/v1/items",
        status = 200,
        elapsed_ms = 12,
        id = i % 100,
        "request handled"
    );
}

/// Makes a fmt layer formatted like `SharedFile::layer()`, writing to `writer`, this
/// thread's default subscriber.
fn set_default_fmt<W>(writer: W) -> tracing::subscriber::DefaultGuard
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_timer(tracing_subscriber::fmt::time::UtcTime::rfc_3339())
                .with_writer(writer),
        )
        .set_default()
}

/// Times `iters` events through the default subscriber, then `drain` (waiting for a
/// background writer to finish), as one measurement.
fn time_events(iters: u64, drain: impl FnOnce()) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        log_one(i);
    }
    drain();
    start.elapsed()
}

/// Runs `iters` lines of `body`, truncating `path` first so the disk does not fill.
fn timed(path: &Path, iters: u64, mut body: impl FnMut(u64)) -> Duration {
    let _ = std::fs::remove_file(path);
    let start = Instant::now();
    for i in 0..iters {
        body(i);
    }
    start.elapsed()
}

fn floors(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.log");
    let lock_path = dir.path().join("raw.log.lock");
    let mut group = c.benchmark_group("per_line");
    group.throughput(Throughput::Elements(1));

    group.bench_function("raw_append", |b| {
        b.iter_custom(|iters| {
            let mut file = append_file(&path);
            let start = Instant::now();
            for _ in 0..iters {
                file.write_all(black_box(RAW_LINE)).unwrap();
            }
            let elapsed = start.elapsed();
            drop(file);
            let _ = std::fs::remove_file(&path);
            elapsed
        })
    });

    // flock, fstat, write, unlock per line; with `stat_path`, a stat of the path as well.
    for (name, stat_path) in [
        ("raw_flock_fstat_write", false),
        ("raw_flock_fstat_stat_write", true),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let lock = append_file(&lock_path);
                let mut file = append_file(&path);
                let start = Instant::now();
                for _ in 0..iters {
                    lock.lock().unwrap();
                    if stat_path {
                        black_box(std::fs::metadata(&path).unwrap().len());
                    }
                    black_box(file.metadata().unwrap().len());
                    file.write_all(black_box(RAW_LINE)).unwrap();
                    lock.unlock().unwrap();
                }
                let elapsed = start.elapsed();
                let _ = std::fs::remove_file(&path);
                elapsed
            })
        });
    }

    // With a zero path check interval every write also looks the paths up.
    for (name, interval) in [
        ("shared_file_io_write", DEFAULT_PATH_CHECK_INTERVAL),
        ("shared_file_io_write_checking_every_write", Duration::ZERO),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let log = SharedFile::builder(dir.path().join(format!("{name}.log")))
                    .max_bytes(LARGE)
                    .max_files(1)
                    .path_check_interval(interval)
                    .build()
                    .unwrap();
                timed(log.path(), iters, |_| {
                    (&log).write_all(black_box(RAW_LINE)).unwrap();
                })
            })
        });
    }
    group.finish();
}

fn through_tracing(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("per_event");
    group.throughput(Throughput::Elements(1));

    for (name, max_bytes) in [("sync", LARGE), ("sync_rotating_64k", SMALL)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let log = SharedFile::builder(dir.path().join(format!("{name}.log")))
                    .max_bytes(max_bytes)
                    .max_files(2)
                    .build()
                    .unwrap();
                let _default = tracing_subscriber::registry()
                    .with(log.layer())
                    .set_default();
                timed(log.path(), iters, log_one)
            })
        });
    }

    for (name, max_bytes) in [
        ("non_blocking", LARGE),
        ("non_blocking_rotating_64k", SMALL),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let log = SharedFile::builder(dir.path().join(format!("{name}.log")))
                    .max_bytes(max_bytes)
                    .max_files(2)
                    .build()
                    .unwrap();
                let (writer, guard) = log.non_blocking();
                let _default = set_default_fmt(writer);
                let _ = std::fs::remove_file(log.path());
                // Counts until every queued event is in the file.
                time_events(iters, || drop(guard))
            })
        });
    }

    group.bench_function("format_only", |b| {
        b.iter_custom(|iters| {
            let _default = set_default_fmt(std::io::sink);
            time_events(iters, || {})
        })
    });

    group.bench_function("tracing_appender_non_blocking", |b| {
        b.iter_custom(|iters| {
            let _ = std::fs::remove_file(dir.path().join("appender.log"));
            let appender = tracing_appender::rolling::never(dir.path(), "appender.log");
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(appender);
            let _default = set_default_fmt(writer);
            // The guard waits for the worker to write what is queued.
            time_events(iters, || drop(guard))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = floors, through_tracing
}

/// The mean time per line of one benchmark from criterion's saved estimates.
fn mean_ns(group: &str, name: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    let path = Path::new(&dir)
        .join("criterion")
        .join(group)
        .join(name)
        .join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let estimate = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = estimate.find([',', '}'])?;
    estimate[..end].trim().parse().ok()
}

fn print_ratios() {
    let rows = [
        ("per_line", "raw_append"),
        ("per_line", "raw_flock_fstat_write"),
        ("per_line", "raw_flock_fstat_stat_write"),
        ("per_line", "shared_file_io_write"),
        ("per_line", "shared_file_io_write_checking_every_write"),
        ("per_event", "sync"),
        ("per_event", "sync_rotating_64k"),
        ("per_event", "non_blocking"),
        ("per_event", "non_blocking_rotating_64k"),
        ("per_event", "format_only"),
        ("per_event", "tracing_appender_non_blocking"),
    ];
    let Some(unlocked) = mean_ns("per_line", "raw_append") else {
        return;
    };
    let locked = mean_ns("per_line", "raw_flock_fstat_write").unwrap_or(f64::NAN);
    println!();
    println!("| benchmark | ns/line | lines/s | vs raw_append | vs raw_flock_fstat_write |");
    println!("|---|---:|---:|---:|---:|");
    for (group, name) in rows {
        if let Some(ns) = mean_ns(group, name) {
            println!(
                "| {group}/{name} | {ns:.0} | {:.0} | {:.2}x | {:.2}x |",
                1e9 / ns,
                unlocked / ns,
                locked / ns
            );
        }
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
}
