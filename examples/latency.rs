//! Latency of one log call while P processes log at a steady rate: p50, p99, p99.9 and the
//! maximum of the time `tracing::info!` takes, for each mode side by side in one run, every
//! run checked by the verifier.
//!
//! ```sh
//! cargo run --release --example latency                 # the full table (about 90 s)
//! cargo run --release --example latency -- --help       # options
//! ```
//!
//! Each of P processes has one logging thread, paced at `--rate` events/s (20,000 by
//! default) with a spin wait, not a sleep: event i is due at start + i/rate. The thread
//! spins until the event is due, then times the one `tracing::info!` call. A thread that
//! falls behind logs the events already due back to back; only the call is timed, not
//! how late it started (the largest lateness is printed with each run). The first events
//! (`--warmup`) are logged and verified but not timed: they pay one-time costs (callsite
//! registration, thread-locals, the writer's first open).
//!
//! Each child records every latency into a vector allocated before the start, and hands
//! them to the parent in a file; the quantiles are over all producers' samples of one
//! (mode, P) combined. Every (mode, P) runs `--repeat` times (interleaved, so that a
//! change in the machine's load falls on every mode alike); the table shows the range
//! over the runs, the targets compare the medians.
//!
//! Modes, all writing the same lines (this crate's `LineFormat`, about 120 bytes):
//! - `sync`: `SharedFile::layer()`, rotating at `--max-bytes` (1 MiB).
//! - `non-blocking`: `NonBlocking::layer()` over `SharedFile::non_blocking()`, as the
//!   README shows, rotating at `--max-bytes`.
//! - `appender`: the same format over `tracing-appender`'s `rolling::never` and its
//!   lossless `non_blocking`, the single-process peer. It neither locks nor rotates.
//!
//! The clock is the TSC (`rdtsc`, calibrated against `Instant`) on x86_64, `Instant`
//! elsewhere or with `--clock instant`. The cost of reading it is measured and printed;
//! it is included in every sample, not subtracted.

#[allow(dead_code)]
#[path = "../tests/common/workload.rs"]
mod workload;

#[allow(dead_code)]
#[path = "../tests/common/verifier.rs"]
mod verifier;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use tracing_shared_file::{LineFormat, PanicSafe, SharedFile};
use tracing_subscriber::prelude::*;
use verifier::Verifier;
use workload::{Workers, WriterId, WriterSpec};

const MODES: [&str; 3] = ["sync", "non-blocking", "appender"];
const ENV_MODE: &str = "LATENCY_MODE";
const ENV_RATE: &str = "LATENCY_RATE";
const ENV_WARMUP: &str = "LATENCY_WARMUP";
const ENV_CLOCK: &str = "LATENCY_CLOCK";
const ENV_TICKS_PER_SEC: &str = "LATENCY_TICKS_PER_SEC";

struct Options {
    processes: Vec<u32>,
    events: u64,
    rate: u64,
    warmup: Option<u64>,
    modes: Vec<String>,
    max_bytes: u64,
    repeat: usize,
    clock: ClockKind,
    markdown: bool,
}

fn usage() -> &'static str {
    "usage: latency [--processes 1,2,4] [--events 60000] [--rate 20000] [--warmup N] \
     [--modes sync,non-blocking,appender] [--max-bytes 1048576] [--repeat 3] \
     [--clock tsc|instant] [--markdown]\n\
     \n\
     --events   events per producer, warm-up included\n\
     --rate     events/s per producer\n\
     --warmup   events logged but not timed at the start (default: 1000, at most a tenth)\n\
     --clock    tsc (x86_64 only, the default there) or instant (std::time::Instant)"
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        processes: vec![1, 2, 4],
        events: 60_000,
        rate: 20_000,
        warmup: None,
        modes: MODES.iter().map(|m| m.to_string()).collect(),
        max_bytes: 1024 * 1024,
        repeat: 3,
        clock: ClockKind::default_for_target(),
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
            "--events" => options.events = number(value()?)?.max(1),
            "--rate" => options.rate = number(value()?)?.max(1),
            "--warmup" => options.warmup = Some(number(value()?)?),
            "--max-bytes" => options.max_bytes = number(value()?)?,
            "--modes" => options.modes = value()?.split(',').map(str::to_string).collect(),
            "--repeat" => options.repeat = (number(value()?)? as usize).max(1),
            "--clock" => {
                options.clock = match value()?.as_str() {
                    "tsc" if cfg!(target_arch = "x86_64") => ClockKind::Tsc,
                    "tsc" => return Err("--clock tsc needs x86_64".to_string()),
                    "instant" => ClockKind::Instant,
                    other => return Err(format!("unknown clock {other}; clocks: tsc,instant")),
                }
            }
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

impl Options {
    fn warmup(&self) -> u64 {
        self.warmup.unwrap_or(1000).min(self.events / 10)
    }
}

// ---------------------------------------------------------------------------------------
// The clock

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClockKind {
    Tsc,
    Instant,
}

impl ClockKind {
    fn default_for_target() -> Self {
        if cfg!(target_arch = "x86_64") {
            ClockKind::Tsc
        } else {
            ClockKind::Instant
        }
    }

    fn name(self) -> &'static str {
        match self {
            ClockKind::Tsc => "tsc",
            ClockKind::Instant => "instant",
        }
    }
}

/// Reads ticks of `kind`: TSC cycles, or nanoseconds since `epoch`.
#[derive(Clone, Copy)]
struct Clock {
    kind: ClockKind,
    epoch: Instant,
    ticks_per_sec: f64,
}

impl Clock {
    /// A clock whose tick rate is already known (the parent measured it).
    fn new(kind: ClockKind, ticks_per_sec: f64) -> Self {
        Clock {
            kind,
            epoch: Instant::now(),
            ticks_per_sec,
        }
    }

    /// Measures the TSC's rate against `Instant` over a fifth of a second.
    fn calibrated(kind: ClockKind) -> Self {
        let mut clock = Clock::new(kind, 1e9);
        if kind == ClockKind::Tsc {
            let (i0, t0) = (Instant::now(), clock.now());
            std::thread::sleep(Duration::from_millis(200));
            let (i1, t1) = (Instant::now(), clock.now());
            clock.ticks_per_sec = (t1 - t0) as f64 / (i1 - i0).as_secs_f64();
        }
        clock
    }

    #[inline(always)]
    fn now(&self) -> u64 {
        match self.kind {
            #[cfg(target_arch = "x86_64")]
            // The fence keeps the read from moving before the code it follows.
            ClockKind::Tsc => unsafe {
                std::arch::x86_64::_mm_lfence();
                std::arch::x86_64::_rdtsc()
            },
            _ => self.epoch.elapsed().as_nanos() as u64,
        }
    }

    fn ns(&self, ticks: u64) -> u64 {
        (ticks as f64 * 1e9 / self.ticks_per_sec) as u64
    }

    /// The time an empty timed region reads: (p50, p99, min) in ns, over a million tries.
    fn overhead_ns(&self) -> (f64, f64, f64) {
        let mut samples: Vec<u64> = (0..1_000_000)
            .map(|_| {
                let t0 = self.now();
                let t1 = self.now();
                t1.wrapping_sub(t0)
            })
            .collect();
        samples.sort_unstable();
        let ns = |ticks: u64| ticks as f64 * 1e9 / self.ticks_per_sec;
        (
            ns(quantile(&samples, 0.5)),
            ns(quantile(&samples, 0.99)),
            ns(samples[0]),
        )
    }
}

// ---------------------------------------------------------------------------------------
// The parent

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
    let started = Instant::now();
    let clock = Clock::calibrated(options.clock);
    let overhead = clock.overhead_ns();
    let instant_overhead = Clock::new(ClockKind::Instant, 1e9).overhead_ns();
    let root = std::env::temp_dir().join(format!(
        "tracing-shared-file-latency-{}",
        std::process::id()
    ));
    let mut results: Vec<RunResult> = Vec::new();
    // Interleaved: for each P, each repeat runs every mode once.
    for &processes in &options.processes {
        for i in 0..options.repeat {
            for mode in &options.modes {
                let dir = root.join(format!("{mode}-{processes}-{i}"));
                let result = run(&dir, mode, processes, &options, &clock);
                let _ = std::fs::remove_dir_all(&dir);
                eprintln!(
                    "{mode:>13} P={processes} run {}: p50 {} p99 {} p99.9 {} max {} us, {:.0} events/s, latest start {} us, {}",
                    i + 1,
                    micros(result.p50),
                    micros(result.p99),
                    micros(result.p999),
                    micros(result.max),
                    result.events_per_sec,
                    micros(result.max_late),
                    result.verdict
                );
                results.push(result);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    print_table(&results, &options, &clock, overhead, instant_overhead);
    print_targets(&results);
    eprintln!("took {:.0} s", started.elapsed().as_secs_f64());
    if results.iter().any(|r| !r.ok) {
        eprintln!("FAILED: the verifier found defects");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

struct RunResult {
    mode: String,
    processes: u32,
    /// Quantiles over every producer's samples, in ns.
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
    /// The sum over producers of each one's events/s.
    events_per_sec: f64,
    /// The latest any event started after it was due, in ns.
    max_late: u64,
    ok: bool,
    verdict: String,
}

fn run(dir: &Path, mode: &str, processes: u32, options: &Options, clock: &Clock) -> RunResult {
    let sync_dir = dir.join("sync");
    std::fs::create_dir_all(&sync_dir).expect("create the run directory");
    let log = dir.join("logs/app.log");
    let total = u64::from(processes) * options.events;
    // Keep every archive, so that the verifier can account for every line.
    let max_files = (total * 200 / options.max_bytes.max(1)) as usize + 16;
    let specs: Vec<WriterSpec> = (0..processes)
        .map(|process| WriterSpec {
            max_bytes: options.max_bytes,
            max_files,
            process,
            threads: 1,
            lines_per_thread: options.events,
            ..WriterSpec::new(log.clone(), sync_dir.clone())
        })
        .collect();
    let workers = Workers::start(
        || {
            let mut command = Command::new(std::env::current_exe().expect("current_exe"));
            command
                .env(ENV_MODE, mode)
                .env(ENV_RATE, options.rate.to_string())
                .env(ENV_WARMUP, options.warmup().to_string())
                .env(ENV_CLOCK, clock.kind.name())
                .env(ENV_TICKS_PER_SEC, clock.ticks_per_sec.to_string());
            command
        },
        &specs,
    );
    workers.wait();

    let mut samples: Vec<u64> = Vec::new();
    let mut events_per_sec = 0.0;
    let mut max_late = 0;
    for spec in &specs {
        let bytes = std::fs::read(samples_path(spec)).expect("a worker's samples");
        samples.extend(
            bytes
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))),
        );
        let summary = std::fs::read_to_string(summary_path(spec)).expect("a worker's summary");
        let mut fields = summary.split_whitespace();
        events_per_sec += fields
            .next()
            .and_then(|f| f.parse::<f64>().ok())
            .expect("events/s");
        max_late = max_late.max(
            fields
                .next()
                .and_then(|f| f.parse::<u64>().ok())
                .expect("lateness"),
        );
    }
    samples.sort_unstable();

    // The appender neither rotates nor limits its file: one file, of any size.
    let max_bytes = if mode == "appender" {
        u64::MAX
    } else {
        options.max_bytes
    };
    let report = specs
        .iter()
        .fold(Verifier::new(&log, max_bytes, max_files), |v, s| {
            v.expect_process(s.process, s.threads, s.lines_per_thread)
        })
        .verify();
    let ok = report.is_ok();
    let verdict = if ok {
        format!(
            "verified {} lines in {} files, 0 lost/duplicated/torn",
            report.lines_verified,
            report.files.len()
        )
    } else {
        format!("DEFECTS: {report}")
    };
    RunResult {
        mode: mode.to_string(),
        processes,
        p50: quantile(&samples, 0.5),
        p99: quantile(&samples, 0.99),
        p999: quantile(&samples, 0.999),
        max: samples.last().copied().unwrap_or(0),
        events_per_sec,
        max_late,
        ok,
        verdict,
    }
}

/// The nearest-rank quantile `q` of `sorted`.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn samples_path(spec: &WriterSpec) -> std::path::PathBuf {
    spec.sync_dir.join(format!("samples.{}", spec.process))
}

fn summary_path(spec: &WriterSpec) -> std::path::PathBuf {
    spec.sync_dir.join(format!("summary.{}", spec.process))
}

// ---------------------------------------------------------------------------------------
// A child: one producer

/// What must stay alive until the end: the background writer's guard, flushing on drop.
enum Guard {
    None,
    Shared(#[allow(dead_code)] tracing_shared_file::WorkerGuard),
    Appender(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard),
}

fn install(mode: &str, spec: &WriterSpec) -> Guard {
    let shared = || {
        SharedFile::builder(&spec.log)
            .max_bytes(spec.max_bytes)
            .max_files(spec.max_files)
            .build()
            .expect("build the SharedFile")
    };
    match mode {
        "sync" => {
            tracing_subscriber::registry().with(shared().layer()).init();
            Guard::None
        }
        "non-blocking" => {
            let (writer, guard) = shared().non_blocking();
            tracing_subscriber::registry().with(writer.layer()).init();
            Guard::Shared(guard)
        }
        "appender" => {
            let dir = spec.log.parent().expect("a parent");
            std::fs::create_dir_all(dir).expect("create the log directory");
            let name = spec.log.file_name().expect("a file name");
            let appender = tracing_appender::rolling::never(dir, name);
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(appender);
            // The very layer of `SharedFile::layer()`, so that only the writer differs.
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(PanicSafe::new(LineFormat::new()))
                .with_writer(writer);
            tracing_subscriber::registry().with(layer).init();
            Guard::Appender(guard)
        }
        other => panic!("unknown mode {other}"),
    }
}

fn worker(spec: &WriterSpec) -> ExitCode {
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} missing"));
    let mode = env(ENV_MODE);
    let rate: f64 = env(ENV_RATE).parse().expect("rate");
    let warmup: u64 = env(ENV_WARMUP).parse().expect("warmup");
    let kind = match env(ENV_CLOCK).as_str() {
        "tsc" => ClockKind::Tsc,
        _ => ClockKind::Instant,
    };
    let clock = Clock::new(kind, env(ENV_TICKS_PER_SEC).parse().expect("ticks/s"));
    let guard = install(&mode, spec);

    // Every message formatted in advance, in one buffer, and every sample's slot written
    // once: nothing is allocated or faulted in while logging.
    let writer = WriterId {
        process: spec.process,
        thread: 0,
    };
    let events = spec.lines_per_thread;
    let mut text = String::new();
    let mut ends = Vec::with_capacity(events as usize);
    for seq in 0..events {
        text.push_str(&workload::record(writer, seq));
        ends.push(text.len());
    }
    let mut samples = vec![u64::MAX; events.saturating_sub(warmup) as usize];
    let ticks_per_event = clock.ticks_per_sec / rate;

    std::fs::write(spec.sync_dir.join(format!("ready.{}", spec.process)), b"")
        .expect("signal ready");
    workload::wait_for_file(&spec.sync_dir.join("go"));

    let start = clock.now();
    let mut max_late = 0;
    let mut begin = 0;
    for (seq, &end) in ends.iter().enumerate() {
        let message = &text[begin..end];
        begin = end;
        let due = start + (seq as f64 * ticks_per_event) as u64;
        let mut now = clock.now();
        while now < due {
            std::hint::spin_loop();
            now = clock.now();
        }
        let t0 = clock.now();
        tracing::info!(target: "workload", "{}", message);
        let t1 = clock.now();
        if let Some(slot) = (seq as u64)
            .checked_sub(warmup)
            .and_then(|i| samples.get_mut(i as usize))
        {
            *slot = t1.wrapping_sub(t0);
            max_late = max_late.max(t0.saturating_sub(due));
        }
    }
    let finish = clock.now();
    drop(guard);

    let seconds = clock.ns(finish.saturating_sub(start)) as f64 / 1e9;
    let bytes: Vec<u8> = samples
        .iter()
        .flat_map(|&ticks| clock.ns(ticks).to_le_bytes())
        .collect();
    std::fs::write(samples_path(spec), bytes).expect("write the samples");
    std::fs::write(
        summary_path(spec),
        format!("{} {}", events as f64 / seconds, clock.ns(max_late)),
    )
    .expect("write the summary");
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------
// The report

/// Nanoseconds as microseconds, with as many decimals as the size deserves.
fn micros(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn range(values: impl Iterator<Item = u64>, show: impl Fn(u64) -> String) -> String {
    let values: Vec<u64> = values.collect();
    let (lo, hi) = (
        values.iter().copied().min().unwrap_or(0),
        values.iter().copied().max().unwrap_or(0),
    );
    let (lo, hi) = (show(lo), show(hi));
    if lo == hi { lo } else { format!("{lo}–{hi}") }
}

fn print_table(
    results: &[RunResult],
    options: &Options,
    clock: &Clock,
    overhead: (f64, f64, f64),
    instant_overhead: (f64, f64, f64),
) {
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::OS
    );
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let clock_line = format!(
        "clock: {}{}; an empty timed region reads p50 {:.0} ns, p99 {:.0} ns, min {:.0} ns \
         (Instant::now: p50 {:.0} ns, p99 {:.0} ns); included in every sample, not subtracted",
        clock.kind.name(),
        if clock.kind == ClockKind::Tsc {
            format!(" at {:.3} GHz", clock.ticks_per_sec / 1e9)
        } else {
            String::new()
        },
        overhead.0,
        overhead.1,
        overhead.2,
        instant_overhead.0,
        instant_overhead.1,
    );
    let header = format!(
        "{} events per producer ({} untimed warm-up) at {} events/s each, max_bytes {}, \
         range over {} runs, {machine}, {build} build",
        options.events,
        options.warmup(),
        options.rate,
        options.max_bytes,
        options.repeat
    );
    let mut groups: Vec<(&str, u32)> = Vec::new();
    for r in results {
        if !groups.contains(&(r.mode.as_str(), r.processes)) {
            groups.push((r.mode.as_str(), r.processes));
        }
    }
    // Mode by mode, as the modes were given.
    groups.sort_by_key(|&(mode, p)| (options.modes.iter().position(|m| m == mode), p));
    if options.markdown {
        println!("\n{header}\n\n{clock_line}\n");
        println!(
            "| mode | P | p50 µs | p99 µs | p99.9 µs | max µs | events/s (all producers) | verifier |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---|");
    } else {
        println!("\n{header}\n{clock_line}\n");
    }
    for (mode, processes) in groups {
        let runs: Vec<&RunResult> = results
            .iter()
            .filter(|r| r.mode == mode && r.processes == processes)
            .collect();
        let column = |f: fn(&RunResult) -> u64| range(runs.iter().map(|r| f(r)), micros);
        let rate = range(runs.iter().map(|r| r.events_per_sec.round() as u64), |v| {
            v.to_string()
        });
        let failed = runs.iter().filter(|r| !r.ok).count();
        let verdict = if failed == 0 {
            "ok".to_string()
        } else {
            format!("FAIL ({failed}/{})", runs.len())
        };
        let (p50, p99, p999, max) = (
            column(|r| r.p50),
            column(|r| r.p99),
            column(|r| r.p999),
            column(|r| r.max),
        );
        if options.markdown {
            println!(
                "| {mode} | {processes} | {p50} | {p99} | {p999} | {max} | {rate} | {verdict} |"
            );
        } else {
            println!(
                "{mode:>13} P={processes}  p50 {p50:>11}  p99 {p99:>11}  p99.9 {p999:>11}  max {max:>11} us  {rate:>13} events/s  {verdict}"
            );
        }
    }
}

/// The median over the runs of (mode, P) of one quantile, in ns.
fn median(
    results: &[RunResult],
    mode: &str,
    processes: u32,
    f: fn(&RunResult) -> u64,
) -> Option<u64> {
    let mut values: Vec<u64> = results
        .iter()
        .filter(|r| r.mode == mode && r.processes == processes)
        .map(f)
        .collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// The issue's targets, measured in this run (medians over the runs).
fn print_targets(results: &[RunResult]) {
    println!("\ntargets (medians over the runs):");
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    for (name, f) in [
        ("p99", (|r: &RunResult| r.p99) as fn(&RunResult) -> u64),
        ("p99.9", |r: &RunResult| r.p999),
    ] {
        let label = format!("non-blocking {name} P=4 / appender {name} P=4");
        match (
            median(results, "non-blocking", 4, f),
            median(results, "appender", 4, f),
        ) {
            (Some(ours), Some(theirs)) => {
                let ratio = ours as f64 / theirs.max(1) as f64;
                println!(
                    "  {label:<44} {ratio:>5.2}x  ({} vs {} us)  target <= 1x  {}",
                    micros(ours),
                    micros(theirs),
                    verdict(ours <= theirs)
                );
            }
            _ => println!("  {label:<44}   -    (not run)"),
        }
    }
    for processes in [1, 2] {
        for (name, f, limit) in [
            (
                "p50",
                (|r: &RunResult| r.p50) as fn(&RunResult) -> u64,
                1000,
            ),
            ("p99", |r: &RunResult| r.p99, 2000),
        ] {
            let label = format!("non-blocking {name} P={processes}");
            match median(results, "non-blocking", processes, f) {
                Some(ns) => println!(
                    "  {label:<44} {:>5} us  target <= {} us  {}",
                    micros(ns),
                    limit / 1000,
                    verdict(ns <= limit)
                ),
                None => println!("  {label:<44}   -    (not run)"),
            }
        }
    }
}
