//! How long a process's exit waits for its compression: a program that rotates once, with
//! a plain archive of a given size waiting to be gzipped, then returns from `main`.
//!
//! ```sh
//! cargo run --release --example compression_exit                        # 16 KiB and 10 MiB
//! cargo run --release --example compression_exit -- --sizes 16384,104857600 --repeat 5
//! ```
//!
//! For each size, a child process builds a timestamped, gzipped log beside a planted
//! plain archive of that size (log lines of about 120 bytes), writes one line, which
//! rotates and hands the archive to the compressor, and returns from `main`. The exit
//! delay is the time from just before that return (as the child wrote it down) until the
//! parent sees the child gone; the same run without `compress` is the baseline, the cost
//! of exiting at all. After each child, the example checks that the archive is gzipped
//! (and holds exactly the planted lines), that no temporary file is left, and exits
//! non-zero otherwise. The medians over `--repeat` runs are printed.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_shared_file::{Naming, SharedFile};

const ENV_CHILD: &str = "TSF_EXIT_DELAY_LOG";
const ENV_COMPRESS: &str = "TSF_EXIT_DELAY_COMPRESS";

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn line(seq: u64) -> String {
    format!(
        "2026-11-26T15:00:00.{:06}Z  INFO app::jobs: finished job id={seq} queue=default attempts=1 elapsed_ms={}\n",
        seq % 1_000_000,
        seq % 997
    )
}

/// The child: rotate once, note the time, return from `main`.
fn child(log: &Path, compress: bool) -> ExitCode {
    let shared = SharedFile::builder(log)
        .max_bytes(200)
        .max_files(1000)
        .naming(Naming::Timestamped)
        .compress(compress)
        // Long enough for any size this example is run with: what is measured is the wait.
        .compress_exit_timeout(Duration::from_secs(600))
        .build()
        .expect("build");
    (&shared).write_all(line(0).as_bytes()).expect("write");
    assert_eq!(shared.stats().rotations, 1);
    let now = since_epoch().as_nanos();
    std::fs::write(log.with_file_name("returned"), now.to_string()).expect("note the time");
    ExitCode::SUCCESS
}

/// Plants a plain archive of about `size` bytes beside `log`, and a live file of one line
/// (so that the child's line rotates); returns the archive's content.
fn plant(log: &Path, size: u64) -> Vec<u8> {
    std::fs::write(log, line(0)).unwrap();
    let mut content = Vec::with_capacity(size as usize + 200);
    let mut seq = 1;
    while (content.len() as u64) < size {
        content.extend_from_slice(line(seq).as_bytes());
        seq += 1;
    }
    std::fs::write(log.with_file_name("app.log.2020-01-01T00-00-00Z"), &content).unwrap();
    content
}

/// One child run: the exit delay, or what went wrong.
fn run(size: u64, compress: bool) -> Result<Duration, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let log = dir.path().join("app.log");
    let content = plant(&log, size);
    let status = Command::new(std::env::current_exe().unwrap())
        .env(ENV_CHILD, &log)
        .env(ENV_COMPRESS, if compress { "1" } else { "0" })
        .status()
        .map_err(|e| e.to_string())?;
    let exited = since_epoch();
    if !status.success() {
        return Err(format!("the child failed: {status}"));
    }
    let returned: u128 = std::fs::read_to_string(dir.path().join("returned"))
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|_| "a bad time".to_string())?;
    let delay = exited.saturating_sub(Duration::from_nanos(returned as u64));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    if names.iter().any(|name| name.ends_with(".tmp")) {
        return Err(format!("a temporary file was left: {names:?}"));
    }
    if compress {
        let gz = log.with_file_name("app.log.2020-01-01T00-00-00Z.gz");
        let mut decoded = Vec::new();
        std::fs::File::open(&gz)
            .map_err(|e| format!("the archive was not gzipped at exit ({e}): {names:?}"))
            .and_then(|file| {
                flate2::read::GzDecoder::new(file)
                    .read_to_end(&mut decoded)
                    .map_err(|e| format!("a corrupt gzip: {e}"))
            })?;
        if decoded != content {
            return Err("the gzip does not hold the archive's lines".into());
        }
    }
    Ok(delay)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> ExitCode {
    if let Some(log) = std::env::var_os(ENV_CHILD) {
        let compress = std::env::var(ENV_COMPRESS).as_deref() == Ok("1");
        return child(Path::new(&log), compress);
    }
    let mut sizes = vec![16 * 1024, 10 * 1024 * 1024];
    let mut repeat = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("a value after the option");
        match arg.as_str() {
            "--sizes" => {
                sizes = value()
                    .split(',')
                    .map(|size| size.parse().expect("sizes in bytes"))
                    .collect();
            }
            "--repeat" => repeat = value().parse().expect("a number of runs"),
            _ => {
                eprintln!("usage: compression_exit [--sizes BYTES,BYTES..] [--repeat N]");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "exit delay, median of {repeat} runs (from the return from main to the exit seen by the parent)"
    );
    for size in sizes {
        let mut with = Vec::new();
        let mut without = Vec::new();
        for _ in 0..repeat {
            for (compress, samples) in [(true, &mut with), (false, &mut without)] {
                match run(size, compress) {
                    Ok(delay) => samples.push(delay),
                    Err(why) => {
                        eprintln!("archive of {size} bytes, compress {compress}: {why}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        let (with, without) = (median(with), median(without));
        println!(
            "archive of {size:>11} bytes: {:>9.1} ms with compress, {:>6.1} ms without",
            with.as_secs_f64() * 1e3,
            without.as_secs_f64() * 1e3
        );
    }
    ExitCode::SUCCESS
}
