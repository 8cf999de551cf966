//! Throughput of many processes sharing one file: P processes x T threads x N lines, in
//! each mode, side by side in one run, every run checked by the verifier.
//!
//! ```sh
//! cargo run --release --example throughput               # the full table
//! cargo run --release --example throughput -- --help     # options
//! ```
//!
//! Modes:
//! - `raw-append`: one `write(2)` per line on an `O_APPEND` file, no lock, no rotation:
//!   the floor for an unlocked append.
//! - `raw-flock`: `flock`, `fstat`, `write`, unlock per line, no rotation: the floor for a
//!   locked append.
//! - `sync`: `tracing::info!` through `SharedFile::layer()`.
//! - `non-blocking`: `tracing::info!` through a fmt layer on `SharedFile::non_blocking()`.
//! - `appender`: `tracing::info!` through `tracing-appender`'s `rolling::never` and its
//!   `non_blocking` (lossless), the single-process peer. It neither locks nor rotates.
//! - `format-only`: `tracing::info!` through the same fmt layer writing into `io::sink`:
//!   the cost of formatting alone, the ceiling for any writer. Nothing is written, so
//!   nothing is verified (`n/a`).
//!
//! The raw modes write the same lines as the fmt layer would, formatted in advance.

#[allow(dead_code)]
#[path = "../tests/common/workload.rs"]
mod workload;

#[allow(dead_code)]
#[path = "../tests/common/verifier.rs"]
mod verifier;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use verifier::{Expect, Verifier};
use workload::{Workers, WriteMode, WriterSpec, fmt_line, run_writer};

const MODES: [&str; 6] = [
    "raw-append",
    "raw-flock",
    "sync",
    "non-blocking",
    "appender",
    "format-only",
];
const ENV_MODE: &str = "THROUGHPUT_MODE";

struct Options {
    processes: Vec<u32>,
    threads: u32,
    lines: u64,
    modes: Vec<String>,
    max_bytes: u64,
    rotation_heavy: bool,
    repeat: usize,
    markdown: bool,
}

fn usage() -> &'static str {
    "usage: throughput [--processes 1,2,4,8] [--threads 1] [--lines 100000] \
     [--modes raw-append,raw-flock,sync,non-blocking,appender,format-only] [--max-bytes 268435456] \
     [--no-rotation-heavy] [--repeat 5] [--markdown]"
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        processes: vec![1, 2, 4, 8],
        threads: 1,
        lines: 100_000,
        modes: MODES.iter().map(|m| m.to_string()).collect(),
        max_bytes: 256 * 1024 * 1024,
        rotation_heavy: true,
        repeat: 5,
        markdown: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match arg.as_str() {
            "--processes" => {
                options.processes = value()?
                    .split(',')
                    .map(|p| p.parse().map_err(|e| format!("{p}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--threads" => options.threads = number(value()?)? as u32,
            "--lines" => options.lines = number(value()?)?,
            "--max-bytes" => options.max_bytes = number(value()?)?,
            "--modes" => options.modes = value()?.split(',').map(str::to_string).collect(),
            "--no-rotation-heavy" => options.rotation_heavy = false,
            "--repeat" => options.repeat = (number(value()?)? as usize).max(1),
            "--markdown" => options.markdown = true,
            "--help" | "-h" => return Err(usage().to_string()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if let Some(bad) = options.modes.iter().find(|m| !MODES.contains(&m.as_str())) {
        return Err(format!("unknown mode {bad}; modes: {}", MODES.join(",")));
    }
    Ok(options)
}

fn main() -> ExitCode {
    if let Some(spec) = WriterSpec::from_env() {
        return worker(&spec);
    }
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with --release for meaningful numbers");
    }
    let root = std::env::temp_dir().join(format!(
        "tracing-shared-file-throughput-{}",
        std::process::id()
    ));
    let mut results = Vec::new();
    let mut defects = false;
    let mut cases: Vec<(String, u64)> = options
        .modes
        .iter()
        .map(|m| (m.clone(), options.max_bytes))
        .collect();
    let heavy_from = cases.len();
    if options.rotation_heavy {
        for mode in ["sync", "non-blocking"] {
            if options.modes.iter().any(|m| m == mode) {
                cases.push((mode.to_string(), ROTATION_HEAVY));
            }
        }
    }
    for (case, (mode, max_bytes)) in cases.iter().enumerate() {
        for &processes in &options.processes {
            // The median of several runs: one run of a few hundred milliseconds on a shared
            // machine is noisy.
            let mut repeats: Vec<RunResult> = (0..options.repeat)
                .map(|i| {
                    let dir = root.join(format!("{mode}-{max_bytes}-{processes}-{i}"));
                    let result = run(&dir, mode, processes, &options, *max_bytes);
                    let _ = std::fs::remove_dir_all(&dir);
                    defects |= !result.ok;
                    result
                })
                .collect();
            repeats.sort_by(|a, b| a.lines_per_sec.total_cmp(&b.lines_per_sec));
            let mut result = repeats.swap_remove(repeats.len() / 2);
            result.rotation_heavy = case >= heavy_from;
            eprintln!(
                "{mode:>13} max_bytes {max_bytes:>10} P={processes}: {:>10.0} lines/s (median of {}), peak RSS {} KiB, {}",
                result.lines_per_sec, options.repeat, result.peak_rss_kib, result.verdict
            );
            results.push(result);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    print_table(&results, &options);
    print_targets(&results);
    if defects {
        eprintln!("FAILED: the verifier found defects");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The `max_bytes` and `max_files` of the rotation-heavy runs.
const ROTATION_HEAVY: u64 = 64 * 1024;
const ROTATION_HEAVY_FILES: usize = 10;

struct RunResult {
    mode: String,
    rotation_heavy: bool,
    max_bytes: u64,
    processes: u32,
    lines_per_sec: f64,
    peak_rss_kib: u64,
    files: usize,
    ok: bool,
    /// Whether the verifier checked the run (not for `format-only`, which writes nothing).
    verified: bool,
    verdict: String,
}

fn run(dir: &Path, mode: &str, processes: u32, options: &Options, max_bytes: u64) -> RunResult {
    let sync_dir = dir.join("sync");
    std::fs::create_dir_all(&sync_dir).expect("create the run directory");
    let log = dir.join("logs/app.log");
    let total_lines = u64::from(processes) * u64::from(options.threads) * options.lines;
    // Rotation-heavy runs keep a realistic number of archives (shifting thousands would
    // measure the archive count, not rotation), so the oldest records are deleted and
    // the verifier checks that only the oldest are missing. Other runs keep everything.
    let keep_everything = max_bytes != ROTATION_HEAVY;
    let max_files = if keep_everything {
        (total_lines * 200 / max_bytes) as usize + 16
    } else {
        ROTATION_HEAVY_FILES
    };
    let specs: Vec<WriterSpec> = (0..processes)
        .map(|process| WriterSpec {
            max_bytes,
            max_files,
            process,
            threads: options.threads,
            lines_per_thread: options.lines,
            mode: if mode == "non-blocking" {
                WriteMode::NonBlocking
            } else {
                WriteMode::Tracing
            },
            ..WriterSpec::new(log.clone(), sync_dir.clone())
        })
        .collect();
    let workers = Workers::start(
        || {
            let mut command = Command::new(std::env::current_exe().expect("current_exe"));
            command.env(ENV_MODE, mode);
            command
        },
        &specs,
    );
    let started = Instant::now();
    workers.wait();
    let elapsed = started.elapsed();

    let peak_rss_kib = (0..processes)
        .filter_map(|p| std::fs::read_to_string(sync_dir.join(format!("rss.{p}"))).ok())
        .filter_map(|s| s.trim().parse().ok())
        .max()
        .unwrap_or(0);
    let mut result = RunResult {
        mode: mode.to_string(),
        rotation_heavy: false,
        max_bytes,
        processes,
        lines_per_sec: total_lines as f64 / elapsed.as_secs_f64(),
        peak_rss_kib,
        files: 0,
        ok: true,
        verified: false,
        verdict: "nothing written, nothing verified".to_string(),
    };
    if mode == "format-only" {
        return result;
    }
    let report = specs
        .iter()
        .fold(Verifier::new(&log, max_bytes, max_files), |v, s| {
            let expect = if keep_everything {
                Expect::Exactly(s.lines_per_thread)
            } else {
                Expect::Newest {
                    total: s.lines_per_thread,
                }
            };
            v.expect_threads(s.process, s.threads, expect)
        })
        .verify();
    result.ok = report.is_ok();
    result.verified = true;
    result.files = report.files.len();
    result.verdict = if result.ok {
        format!(
            "verified {} lines, 0 lost/duplicated/torn",
            report.lines_verified
        )
    } else {
        format!("DEFECTS: {report}")
    };
    result
}

/// One worker process: waits for the start signal, writes its lines in `mode`, then
/// records its peak resident memory.
fn worker(spec: &WriterSpec) -> ExitCode {
    let mode = std::env::var(ENV_MODE).unwrap_or_default();
    match mode.as_str() {
        "raw-append" | "raw-flock" => raw_worker(spec, mode == "raw-flock"),
        "appender" => appender_worker(spec),
        "format-only" => fmt_worker(spec, std::io::sink),
        _ => {
            let stats = run_writer(spec);
            if stats.write_errors > 0 {
                eprintln!(
                    "worker {}: {} write errors",
                    spec.process, stats.write_errors
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let rss = peak_rss_kib().unwrap_or(0);
    let _ = std::fs::write(
        spec.sync_dir.join(format!("rss.{}", spec.process)),
        rss.to_string(),
    );
    ExitCode::SUCCESS
}

fn signal_ready_and_wait(spec: &WriterSpec) {
    std::fs::write(spec.sync_dir.join(format!("ready.{}", spec.process)), b"")
        .expect("signal ready");
    workload::wait_for_file(&spec.sync_dir.join("go"));
}

fn raw_worker(spec: &WriterSpec, locked: bool) {
    std::fs::create_dir_all(spec.log.parent().expect("a parent")).expect("create the log dir");
    let open = |path: &Path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open")
    };
    let lock_path = PathBuf::from(format!("{}.lock", spec.log.display()));
    // Lines formatted in advance, so only the system calls are measured.
    let lines: Vec<Vec<String>> = spec
        .writers()
        .map(|w| (0..spec.lines_per_thread).map(|s| fmt_line(w, s)).collect())
        .collect();
    signal_ready_and_wait(spec);
    std::thread::scope(|scope| {
        for lines in &lines {
            let (log, lock) = (open(&spec.log), open(&lock_path));
            scope.spawn(move || {
                let mut log = &log;
                for line in lines {
                    if locked {
                        lock.lock().expect("flock");
                        std::hint::black_box(log.metadata().expect("fstat").len());
                    }
                    log.write_all(line.as_bytes()).expect("write");
                    if locked {
                        lock.unlock().expect("unlock");
                    }
                }
            });
        }
    });
}

fn appender_worker(spec: &WriterSpec) {
    let dir = spec.log.parent().expect("a parent");
    let name = spec.log.file_name().expect("a file name");
    let appender = tracing_appender::rolling::never(dir, name);
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(appender);
    fmt_worker(spec, writer);
    drop(guard);
}

/// Logs every line through the fmt layer that the `non-blocking` mode uses, writing to
/// `writer`.
fn fmt_worker<W>(spec: &WriterSpec, writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    workload::init_fmt_with(writer);
    signal_ready_and_wait(spec);
    std::thread::scope(|scope| {
        for writer in spec.writers() {
            scope.spawn(move || {
                for seq in 0..spec.lines_per_thread {
                    tracing::info!(target: "workload", "{}", workload::record(writer, seq));
                }
            });
        }
    });
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn lookup(results: &[RunResult], mode: &str, rotation_heavy: bool, processes: u32) -> Option<f64> {
    results
        .iter()
        .find(|r| r.mode == mode && r.processes == processes && r.rotation_heavy == rotation_heavy)
        .map(|r| r.lines_per_sec)
}

fn print_table(results: &[RunResult], options: &Options) {
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::OS
    );
    if options.markdown {
        println!(
            "\n{} threads x {} lines per process, median of {} runs, {machine}, {} build\n",
            options.threads,
            options.lines,
            options.repeat,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
        println!(
            "| mode | max_bytes | P | lines/s | vs raw-append P=1 | peak RSS | files | verifier |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---|");
    }
    let floor = lookup(results, "raw-append", false, 1);
    for r in results {
        let ratio = floor.map_or(String::from("-"), |f| {
            format!("{:.2}x", r.lines_per_sec / f)
        });
        if options.markdown {
            println!(
                "| {} | {} | {} | {:.0} | {ratio} | {} MiB | {} | {} |",
                r.mode,
                human_bytes(r.max_bytes),
                r.processes,
                r.lines_per_sec,
                r.peak_rss_kib / 1024,
                r.files,
                verdict(r)
            );
        } else {
            println!(
                "{:>13} {:>8} P={} {:>10.0} lines/s {ratio:>7} vs raw-append P=1, peak RSS {} KiB, {} files, {}",
                r.mode,
                human_bytes(r.max_bytes),
                r.processes,
                r.lines_per_sec,
                r.peak_rss_kib,
                r.files,
                verdict(r)
            );
        }
    }
}

fn verdict(r: &RunResult) -> &'static str {
    match (r.verified, r.ok) {
        (false, _) => "n/a",
        (true, true) => "ok",
        (true, false) => "DEFECTS",
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// The targets (issues 4 and 12), as ratios measured in this run.
fn print_targets(results: &[RunResult]) {
    let get = |mode, max_bytes, p| lookup(results, mode, max_bytes, p);
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let max_p = results.iter().map(|r| r.processes).max().unwrap_or(1);
    let (light, heavy) = (false, true);
    let rows = [
        (
            "sync P=1 / raw-flock P=1",
            ratio(get("sync", light, 1), get("raw-flock", light, 1)),
            0.9,
        ),
        (
            "non-blocking P=1 / raw-append P=1",
            ratio(get("non-blocking", light, 1), get("raw-append", light, 1)),
            1.3,
        ),
        (
            "non-blocking P=1 / appender P=1",
            ratio(get("non-blocking", light, 1), get("appender", light, 1)),
            2.0,
        ),
        (
            "non-blocking P=1 / format-only P=1",
            ratio(get("non-blocking", light, 1), get("format-only", light, 1)),
            0.9,
        ),
        (
            "sync P=max / sync P=1",
            ratio(get("sync", light, max_p), get("sync", light, 1)),
            0.8,
        ),
        (
            "non-blocking P=max / non-blocking P=1",
            ratio(
                get("non-blocking", light, max_p),
                get("non-blocking", light, 1),
            ),
            0.8,
        ),
        (
            "sync 64 KiB rotation / no rotation, P=1",
            ratio(get("sync", heavy, 1), get("sync", light, 1)),
            0.7,
        ),
        (
            "non-blocking 64 KiB rotation / no rotation, P=1",
            ratio(get("non-blocking", heavy, 1), get("non-blocking", light, 1)),
            0.7,
        ),
    ];
    println!("\ntargets (P=max is P={max_p}):");
    for (name, value, target) in rows {
        match value {
            Some(v) => println!(
                "  {name:<48} {v:>5.2}x  target >= {target}x  {}",
                if v >= target { "met" } else { "MISSED" }
            ),
            None => println!("  {name:<48}   -    (mode not run)"),
        }
    }
}
