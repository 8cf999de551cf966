//! What the rotation policy costs.
//!
//! 1. Rotation-heavy throughput with 5 archives kept against 500, for numbered and for
//!    timestamped names: 8 processes append 120-byte lines to 16 KiB files. Numbered
//!    rotation renames every archive it keeps; timestamped rotation is one rename and
//!    one directory listing (off the lock) whatever the number. Target: timestamped with
//!    500 archives at 0.8x or more of timestamped with 5.
//! 2. A writer's latency while its own process gzips a 10 MiB archive on the background
//!    thread, against the same writer without compression.
//!
//! ```sh
//! cargo bench --bench rotation_policy
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tracing_shared_file::{Naming, SharedFile};

const ROLE_ENV: &str = "ROTATION_POLICY_ROLE";
const LINE: &[u8] =
    b"2026-11-27T12:00:00.000000Z  INFO bench: a line of about one hundred and twenty bytes, as a service would log it\n";
const MAX_BYTES: u64 = 16 * 1024;
const PROCESSES: usize = 8;
const LINES_PER_PROCESS: usize = 20_000;

fn build(dir: &Path, naming: Naming, max_files: usize) -> SharedFile {
    SharedFile::builder(dir.join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(max_files)
        .naming(naming)
        .build()
        .expect("build the shared file")
}

fn naming_of(name: &str) -> Naming {
    if name == "timestamped" {
        Naming::Timestamped
    } else {
        Naming::Numbered
    }
}

/// A writer process: waits for `<dir>/go`, writes its lines.
fn run_writer(dir: &Path, naming: Naming, max_files: usize) {
    let log = build(dir, naming, max_files);
    while !dir.join("go").exists() {
        std::thread::sleep(Duration::from_micros(100));
    }
    for _ in 0..LINES_PER_PROCESS {
        (&log).write_all(LINE).unwrap();
    }
}

fn throughput(naming: &str, max_files: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    {
        // Every archive slot taken before the measurement.
        let log = build(dir.path(), naming_of(naming), max_files);
        while log.stats().rotations <= max_files as u64 {
            (&log).write_all(LINE).unwrap();
        }
    }
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env(
                    ROLE_ENV,
                    format!("writer:{naming}:{max_files}:{}", dir.path().display()),
                )
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    std::fs::write(dir.path().join("go"), b"").unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    (PROCESSES * LINES_PER_PROCESS) as f64 / start.elapsed().as_secs_f64()
}

/// A process that times its writes for a while, with or without compression, after
/// a rotation that leaves a 10 MiB archive to compress. Prints p50, p99 and the longest
/// write in µs, and how long the compression took.
fn run_timed(dir: &Path, compress: bool) {
    // A 10 MiB archive (not the newest, which waits for the next rotation), as if
    // rotated an hour ago, and a newer small one.
    let big = dir.join("app.log.2026-01-01T00-00-00Z");
    let mut file = std::fs::File::create(&big).unwrap();
    for _ in 0..(10 << 20) / LINE.len() {
        file.write_all(LINE).unwrap();
    }
    drop(file);
    std::fs::write(dir.join("app.log.2026-01-01T01-00-00Z"), LINE).unwrap();
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(1000)
        .naming(Naming::Timestamped)
        .compress(compress)
        .build()
        .unwrap();
    // Fill the live file so the first timed writes rotate, which starts the compression.
    while (std::fs::metadata(dir.join("app.log")).unwrap().len() as usize) + LINE.len()
        <= MAX_BYTES as usize
    {
        (&log).write_all(LINE).unwrap();
    }
    let mut took = Vec::new();
    let started = Instant::now();
    let mut compressed_after = None;
    while started.elapsed() < Duration::from_secs(3) {
        let before = Instant::now();
        (&log).write_all(LINE).unwrap();
        took.push(before.elapsed());
        if compressed_after.is_none() && !big.exists() {
            compressed_after = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    took.sort_unstable();
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize].as_micros();
    println!(
        "{} {} {} {}",
        at(0.5),
        at(0.99),
        took.last().unwrap().as_micros(),
        compressed_after.map_or("-".into(), |d| format!("{} ms", d.as_millis()))
    );
}

fn latency(compress: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .env(
            ROLE_ENV,
            format!("timed:{compress}:0:{}", dir.path().display()),
        )
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let mut parts = role.splitn(4, ':');
        let (role, option, max_files, dir) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap().parse().unwrap(),
            PathBuf::from(parts.next().unwrap()),
        );
        match role {
            "writer" => run_writer(&dir, naming_of(option), max_files),
            _ => run_timed(&dir, option == "true"),
        }
        return;
    }
    println!(
        "Rotation-heavy throughput: {PROCESSES} processes x {LINES_PER_PROCESS} lines, {MAX_BYTES}-byte files (lines/s):"
    );
    println!("| naming | 5 archives | 500 archives | 500 / 5 |");
    println!("|---|---:|---:|---:|");
    for naming in ["numbered", "timestamped"] {
        let few = throughput(naming, 5);
        let many = throughput(naming, 500);
        println!("| {naming} | {few:.0} | {many:.0} | {:.2}x |", many / few);
    }
    println!();
    println!("A writer's latency while its process gzips a 10 MiB archive (µs):");
    println!("| compression | p50 | p99 | longest | archive compressed after |");
    println!("|---|---:|---:|---:|---:|");
    for compress in [false, true] {
        let figures = latency(compress);
        let mut parts = figures.split_whitespace();
        let mut next = || parts.next().unwrap_or("?").to_string();
        let (p50, p99, longest) = (next(), next(), next());
        let rest: Vec<String> = std::iter::from_fn(|| Some(next()))
            .take_while(|part| part != "?")
            .collect();
        println!(
            "| {} | {p50} | {p99} | {longest} | {} |",
            if compress { "on" } else { "off" },
            rest.join(" ")
        );
    }
}
