//! How long one process can keep the others waiting for the lock.
//!
//! A non-blocking writer logs as fast as it can into small files (4 KiB), so that every
//! 256 KiB batch would cross dozens of rotation points; meanwhile a synchronous writer in
//! another process times each of its writes. A batch rotates at most once per hold of the
//! lock, so the longest wait is about one append plus one rotation, and a numbered
//! rotation renames every archive it keeps: the wait grows with `max_files`.
//!
//! ```sh
//! cargo bench --bench lock_hold
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tracing_shared_file::SharedFile;

const ROLE_ENV: &str = "LOCK_HOLD_ROLE";
const MAX_BYTES: u64 = 4096;
const LINE: &[u8] =
    b"2026-11-27T12:00:00.000000Z  INFO bench: a line of about one hundred and twenty bytes, as a service would log it\n";
/// How long the timed writer writes, and how often.
const TIMED_FOR: Duration = Duration::from_secs(3);
const TIMED_EVERY: Duration = Duration::from_micros(500);

fn build(dir: &Path, max_files: usize) -> SharedFile {
    SharedFile::builder(dir.join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(max_files)
        .build()
        .expect("build the shared file")
}

/// The batching writer: logs until `<dir>/stop` exists.
fn run_batcher(dir: &Path, max_files: usize) {
    let log = build(dir, max_files);
    let (mut writer, guard) = log.non_blocking();
    std::fs::write(dir.join("batcher-ready"), b"").unwrap();
    let stop = dir.join("stop");
    while !stop.exists() {
        for _ in 0..1000 {
            writer.write_all(LINE).unwrap();
        }
    }
    drop(guard);
}

/// The timed writer: prints the longest, 99th-percentile and median write, in µs.
fn run_timer(dir: &Path, max_files: usize) {
    let log = build(dir, max_files);
    let mut took = Vec::new();
    let start = Instant::now();
    while start.elapsed() < TIMED_FOR {
        let before = Instant::now();
        (&log).write_all(LINE).unwrap();
        took.push(before.elapsed());
        std::thread::sleep(TIMED_EVERY);
    }
    took.sort_unstable();
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize].as_micros();
    println!(
        "{} {} {} {}",
        took.last().unwrap().as_micros(),
        at(0.99),
        at(0.5),
        log.stats().lock_wait_max.as_micros()
    );
}

fn spawn(role: &str, dir: &Path, max_files: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE_ENV, format!("{role}:{max_files}:{}", dir.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn a writer")
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Fills `max_files` archives first, so that every rotation renames all of them.
fn fill_archives(dir: &Path, max_files: usize) {
    let log = build(dir, max_files);
    while log.stats().rotations <= max_files as u64 {
        (&log).write_all(LINE).unwrap();
    }
}

fn measure(max_files: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    fill_archives(dir.path(), max_files);
    let mut batcher = spawn("batcher", dir.path(), max_files);
    wait_for(&dir.path().join("batcher-ready"));
    let timer = spawn("timer", dir.path(), max_files);
    let output = timer.wait_with_output().unwrap();
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    batcher.wait().unwrap();
    let figures: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    format!(
        "| {max_files} | {} | {} | {} | {} |",
        figures[0], figures[1], figures[2], figures[3]
    )
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let mut parts = role.splitn(3, ':');
        let (role, max_files, dir) = (
            parts.next().unwrap(),
            parts.next().unwrap().parse().unwrap(),
            PathBuf::from(parts.next().unwrap()),
        );
        match role {
            "batcher" => run_batcher(&dir, max_files),
            _ => run_timer(&dir, max_files),
        }
        return;
    }
    println!(
        "A sync writer's write while a non-blocking writer fills {MAX_BYTES}-byte files (µs):"
    );
    println!("| max_files | longest | p99 | median | longest lock wait (stats) |");
    println!("|---:|---:|---:|---:|---:|");
    for max_files in [5, 50, 500] {
        println!("{}", measure(max_files));
    }
}
