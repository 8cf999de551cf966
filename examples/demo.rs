//! The main job: several processes, each with several threads, log through one
//! [`SharedFile`](tracing_shared_file::SharedFile) with a small `max_bytes`, so it rotates
//! hundreds of times while they write. Then every file is read back and every line is
//! checked: none lost, duplicated or torn, and no file over `max_bytes`.
//!
//! ```text
//! cargo run --example demo
//! cargo run --release --example demo -- --processes 8 --lines 100000
//! ```
//!
//! The workers are this same program, started again with their orders in environment
//! variables. The workload and the verifier are the ones the integration tests use.

// The tests' shared code; the demo uses only part of it.
#[path = "../tests/common/workload.rs"]
#[allow(dead_code)]
mod workload;

#[path = "../tests/common/verifier.rs"]
#[allow(dead_code)]
mod verifier;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use verifier::Verifier;
use workload::{Workers, WriterSpec, run_writer};

const USAGE: &str = "\
Several processes log to one rotating file at once; then every line is verified.

Usage: cargo run --example demo -- [OPTIONS]

Options:
  --processes N   writer processes (default 4)
  --threads N     threads per process (default 2)
  --lines N       lines per thread (default 20000)
  --max-bytes N   rotate before a file would exceed N bytes (default 65536)
  --dir PATH      where to put logs/ and sync/; must not hold them already
                  (default: a new directory under the system temp directory)
  -h, --help      print this help";

/// Generous bytes per line for sizing `max_files`: the real lines are under 150 bytes.
const BYTES_PER_LINE_BOUND: u64 = 200;

#[derive(Debug)]
struct Options {
    processes: u32,
    threads: u32,
    lines: u64,
    max_bytes: u64,
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    if let Some(spec) = WriterSpec::from_env() {
        return worker(&spec);
    }
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("demo: {message} (see --help)");
            return ExitCode::from(2);
        }
    };
    match parent(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("demo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One writer process: log the records, then report any write error.
fn worker(spec: &WriterSpec) -> ExitCode {
    let stats = run_writer(spec);
    if stats.write_errors > 0 {
        eprintln!(
            "demo worker {}: {} write errors ({} events dropped)",
            spec.process, stats.write_errors, stats.events_dropped
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `Ok(None)` when help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        processes: 4,
        threads: 2,
        lines: 20_000,
        max_bytes: 64 * 1024,
        dir: None,
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--processes" => options.processes = number(&flag, &value()?)?,
            "--threads" => options.threads = number(&flag, &value()?)?,
            "--lines" => options.lines = number(&flag, &value()?)?,
            "--max-bytes" => options.max_bytes = number(&flag, &value()?)?,
            "--dir" => options.dir = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    for (flag, value) in [
        ("--processes", u64::from(options.processes)),
        ("--threads", u64::from(options.threads)),
        ("--max-bytes", options.max_bytes),
    ] {
        if value == 0 {
            return Err(format!("{flag} must be at least 1"));
        }
    }
    Ok(Some(options))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} expects a whole number, got `{value}`"))
}

/// Runs the workers and verifies their output; `Ok(false)` when a defect was found.
fn parent(options: &Options) -> Result<bool, String> {
    let &Options {
        processes,
        threads,
        lines,
        max_bytes,
        ..
    } = options;
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => default_dir()?,
    };
    let log_dir = dir.join("logs");
    let sync_dir = dir.join("sync");
    // Fresh directories only: old logs would fail verification, and an old `go` file
    // would start the workers before all of them are ready.
    for sub in [&log_dir, &sync_dir] {
        std::fs::create_dir_all(sub.parent().unwrap_or(&dir))
            .and_then(|()| std::fs::create_dir(sub))
            .map_err(|e| format!("cannot create {} (use a new --dir): {e}", sub.display()))?;
    }
    let log = log_dir.join("app.log");

    let total_lines = u64::from(processes)
        .saturating_mul(u64::from(threads))
        .saturating_mul(lines);
    // Enough that no rotated file is ever deleted, so every line can be checked.
    let max_files =
        usize::try_from(total_lines.saturating_mul(BYTES_PER_LINE_BOUND) / max_bytes + 16)
            .map_err(|_| "too many lines for this platform".to_string())?;

    let specs: Vec<WriterSpec> = (0..processes)
        .map(|process| WriterSpec {
            max_bytes,
            max_files,
            process,
            threads,
            lines_per_thread: lines,
            ..WriterSpec::new(log.clone(), sync_dir.clone())
        })
        .collect();

    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    println!(
        "tracing-shared-file demo: {processes} processes x {threads} threads x {lines} lines, \
         max_bytes {max_bytes}, keeping every rotated file (max_files {max_files}, enough \
         for this run)"
    );
    // `start` returns once every worker is ready and has been told to go.
    let workers = Workers::start(|| Command::new(&exe), &specs);
    let started = Instant::now();
    workers.wait();
    let elapsed = started.elapsed();

    let verifier = (0..processes).fold(
        Verifier::new(&log, max_bytes, max_files),
        |verifier, process| verifier.expect_process(process, threads, lines),
    );
    let report = verifier.verify();

    let build = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    let seconds = elapsed.as_secs_f64();
    println!(
        "  wrote       {total_lines} lines in {seconds:.2} s ({:.0} lines/s, {build})",
        total_lines as f64 / seconds
    );
    let live = report.files.len() - report.archives;
    println!(
        "  files       {live} live + {} rotated, {} bytes in all",
        report.archives, report.bytes_total
    );
    let deleted_note = if report.archives < max_files {
        "none deleted"
    } else {
        "max_files reached: older files may have been deleted"
    };
    println!("  rotations   {} ({deleted_note})", report.archives);
    println!(
        "  verified    {} of {total_lines} lines",
        report.lines_verified
    );
    println!(
        "  defects     lost {}, duplicated {}, torn {}, unexpected {}, oversized files {}",
        report.lost, report.duplicated, report.torn, report.unexpected, report.oversized
    );
    // The verifier counts a file over max_bytes as a defect unless it holds one line.
    let size_note = if report.largest_file <= max_bytes {
        "no file is over max_bytes"
    } else {
        "files over max_bytes hold a single line each"
    };
    println!(
        "  largest     {} bytes, max_bytes {max_bytes}",
        report.largest_file
    );
    println!("  directory   {}", dir.display());

    if report.is_ok() {
        println!("OK: every line is in the files exactly once and whole; {size_note}.");
        return Ok(true);
    }
    const SHOWN: usize = 10;
    println!("FAILED: {} problems", report.problems.len());
    for problem in report.problems.iter().take(SHOWN) {
        println!("  - {problem}");
    }
    if report.problems.len() > SHOWN {
        println!("  ... and {} more", report.problems.len() - SHOWN);
    }
    Ok(false)
}

/// A new directory under the system temp directory, named for this run.
fn default_dir() -> Result<PathBuf, String> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = std::env::temp_dir().join(format!(
        "tracing-shared-file-demo-{seconds}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
