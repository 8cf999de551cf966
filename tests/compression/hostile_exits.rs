//! Compression against hostile ends of processes, with real processes.
//!
//! - A fleet of short-lived processes (each lives about 50 ms), 16 at a time, mixing
//!   normal exits, exits with a zero `compress_exit_timeout`, processes without
//!   compression, and processes killed with SIGKILL at random moments while big archives
//!   are being compressed: no acknowledged line is lost, and after one more normal run
//!   every archive but the newest is gzipped and no temporary file is left.
//! - An `on_error` hook that calls `std::process::exit` on the compressor's own thread:
//!   the exit does not wait for that thread, and the process ends.
//! - A child forked without exec that exits normally while its parent compresses does
//!   not wait for its parent's compression.

use crate::common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, archive_stamp, fmt_line, stamped_archives};
use tracing_shared_file::{Naming, SharedFile};

const MAX_BYTES: u64 = 2048;
const KEEP_ALL: usize = 100_000;
const LINES: u64 = 100;
const DEADLINE: Duration = Duration::from_secs(180);
const ENV_LOG: &str = "TSF_HOSTILE_EXIT_LOG";
const ENV_PROCESS: &str = "TSF_HOSTILE_EXIT_PROCESS";
const ENV_MODE: &str = "TSF_HOSTILE_EXIT_MODE";

/// How a short-lived job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Returns from the entry: the exit waits for its compression.
    Normal,
    /// Returns, with `compress_exit_timeout(ZERO)`: the exit stops the compression.
    ZeroTimeout,
    /// Without compression.
    Plain,
    /// Killed with SIGKILL by the test, at a random moment.
    Killed,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::ZeroTimeout => "zero",
            Mode::Plain => "plain",
            Mode::Killed => "killed",
        }
    }
}

fn ack_path(log: &Path, process: u32) -> PathBuf {
    log.with_file_name(format!("../sync/ack.{process}"))
}

/// Logs `LINES` records, acknowledging each, then returns.
#[test]
fn job_entry() {
    let Some(log) = std::env::var_os(ENV_LOG) else {
        return;
    };
    let log = PathBuf::from(log);
    let process: u32 = std::env::var(ENV_PROCESS).unwrap().parse().unwrap();
    let mode = std::env::var(ENV_MODE).unwrap();
    let mut builder = SharedFile::builder(&log)
        .max_bytes(MAX_BYTES)
        .max_files(KEEP_ALL)
        .naming(Naming::Timestamped)
        .compress(mode != "plain");
    if mode == "zero" {
        builder = builder.compress_exit_timeout(Duration::ZERO);
    }
    let shared = builder.build().expect("build");
    let ack = fs::File::create(ack_path(&log, process)).unwrap();
    let writer = WriterId { process, thread: 0 };
    for seq in 0..LINES {
        (&shared)
            .write_all(fmt_line(writer, seq).as_bytes())
            .unwrap();
        ack.write_at(&(seq + 1).to_le_bytes(), 0).unwrap();
    }
}

fn acknowledged(log: &Path, process: u32) -> u64 {
    fs::read(ack_path(log, process))
        .ok()
        .and_then(|bytes| Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)))
        .unwrap_or(0)
}

fn spawn_job(log: &Path, process: u32, mode: Mode) -> Child {
    let mut command = common::entry_command(&common::entry!(job_entry));
    command
        .env(ENV_LOG, log)
        .env(ENV_PROCESS, process.to_string())
        .env(ENV_MODE, mode.name())
        .stdout(Stdio::null());
    common::spawn_retrying(&mut command).unwrap()
}

/// splitmix64, so that a failing run can be replayed from its printed seed.
struct Rng(u64);

impl Rng {
    /// Seeded from the clock; returns the seed too, to print.
    fn from_clock() -> (u64, Self) {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let seed = seed.as_nanos() as u64;
        (seed, Rng(seed))
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound
    }
}

/// Plants `count` plain archives of `lines` records, with old stamps, the `first`th
/// and on (each stamp a second after the one before); returns their writers.
fn plant_big(log: &Path, first: u32, count: u32, lines: u64) -> Vec<WriterId> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (first..first + count)
        .map(|k| {
            let writer = WriterId {
                process: 5000 + k,
                thread: 0,
            };
            let name = format!("app.log.{}", archive_stamp(now - 86_400 + i64::from(k)));
            let file = fs::File::create(log.with_file_name(name)).unwrap();
            let mut file = std::io::BufWriter::new(file);
            for seq in 0..lines {
                file.write_all(fmt_line(writer, seq).as_bytes()).unwrap();
            }
            file.flush().unwrap();
            writer
        })
        .collect()
}

/// Plain archives other than the newest, and hidden temporary files.
fn undone(log: &Path) -> Vec<String> {
    let archives = stamped_archives(log);
    let newest = archives.last().map(|a| (a.stamp, a.counter));
    let mut undone: Vec<String> = archives
        .iter()
        .filter(|a| a.gz == (Some((a.stamp, a.counter)) == newest))
        .map(|a| a.name.clone())
        .collect();
    for entry in fs::read_dir(log.parent().unwrap()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".tmp") {
            undone.push(name);
        }
    }
    undone
}

#[test]
fn short_lived_processes_killed_or_cut_short_lose_nothing_and_leave_nothing() {
    const JOBS: u32 = 64;
    const AT_A_TIME: usize = 16;
    const BIG_LINES: u64 = 10_000;
    let (seed, mut rng) = Rng::from_clock();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("logs")).unwrap();
    fs::create_dir(dir.path().join("sync")).unwrap();
    let log = dir.path().join("logs/app.log");
    let mut big = plant_big(&log, 0, 6, BIG_LINES);
    let modes = [Mode::Normal, Mode::ZeroTimeout, Mode::Plain, Mode::Killed];
    // The last 16 are all killed or cut short, so that they leave work undone for the
    // last job to finish.
    let mut jobs: Vec<(u32, Mode)> = (0..JOBS)
        .map(|process| match process < JOBS - 16 {
            true => (process, modes[rng.below(4) as usize]),
            false => (
                process,
                [Mode::Killed, Mode::ZeroTimeout][rng.below(2) as usize],
            ),
        })
        .collect();
    let deadline = Instant::now() + DEADLINE;
    let mut running: Vec<(u32, Mode, Child, Instant)> = Vec::new();
    let mut next = jobs.iter();
    loop {
        while running.len() < AT_A_TIME
            && let Some(&(process, mode)) = next.next()
        {
            // More to compress all along, so that the kills and cut-short exits land
            // while archives are being compressed.
            if rng.below(3) == 0 {
                big.extend(plant_big(&log, 100 + process, 1, BIG_LINES));
            }
            let kill_at = Instant::now() + Duration::from_millis(rng.below(150));
            running.push((process, mode, spawn_job(&log, process, mode), kill_at));
        }
        if running.is_empty() {
            break;
        }
        let mut index = 0;
        while index < running.len() {
            let (process, mode, child, kill_at) = &mut running[index];
            if *mode == Mode::Killed && Instant::now() >= *kill_at {
                let _ = child.kill();
            }
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    *mode == Mode::Killed || status.success(),
                    "seed {seed}: job {process} ({mode:?}) failed: {status}"
                );
                running.swap_remove(index);
            } else {
                index += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the jobs never ended"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // One more, alone, ending normally: its pass finishes what the others left.
    let left = undone(&log);
    let temporaries = left.iter().filter(|name| name.ends_with(".tmp")).count();
    println!(
        "seed {seed}: before the last job, {} plain archives and {temporaries} temporary files",
        left.len() - temporaries
    );
    jobs.push((JOBS, Mode::Normal));
    let mut last = spawn_job(&log, JOBS, Mode::Normal);
    assert!(last.wait().unwrap().success(), "seed {seed}");
    assert_eq!(undone(&log), [] as [String; 0], "seed {seed}");
    let verifier = big.iter().fold(
        Verifier::new(&log, u64::MAX, KEEP_ALL)
            .timestamped(true)
            .check_rotation_points(false),
        |verifier, &writer| verifier.expect(writer, Expect::Exactly(BIG_LINES)),
    );
    let report = jobs
        .iter()
        .fold(verifier, |verifier, &(process, mode)| {
            let writer = WriterId { process, thread: 0 };
            verifier.expect(
                writer,
                match mode {
                    Mode::Killed => Expect::Prefix {
                        acknowledged: acknowledged(&log, process),
                    },
                    _ => Expect::Exactly(LINES),
                },
            )
        })
        .verify();
    assert!(report.is_ok(), "seed {seed}: {report}");
    assert_eq!(
        report.compressed,
        report.archives - 1,
        "seed {seed}: {report}"
    );
}

const ENV_HOOK_LOG: &str = "TSF_HOSTILE_EXIT_HOOK_LOG";
const ROTATOR: WriterId = WriterId {
    process: 2,
    thread: 0,
};

/// Timestamped, gzipped, every archive kept, one record per file.
fn one_record_per_file(log: &Path) -> tracing_shared_file::Builder {
    SharedFile::builder(log)
        .max_bytes(160)
        .max_files(KEEP_ALL)
        .naming(Naming::Timestamped)
        .compress(true)
}

/// Compression fails (a directory sits at an archive's temporary name), and the
/// `on_error` hook, which runs on the compressor's thread, exits the process with 3.
#[test]
fn exiting_hook_entry() {
    let Some(log) = std::env::var_os(ENV_HOOK_LOG) else {
        return;
    };
    let shared = one_record_per_file(Path::new(&log))
        .on_error(|_| std::process::exit(3))
        .build()
        .unwrap();
    (&shared)
        .write_all(fmt_line(ROTATOR, 0).as_bytes())
        .unwrap();
    // The hook ends the process; this only bounds the wait if it did not.
    std::thread::sleep(Duration::from_secs(60));
}

/// One record in the live file, so that the next event rotates; returns its writer.
fn seed_live_file(log: &Path) -> WriterId {
    let seed = WriterId {
        process: 1,
        thread: 0,
    };
    fs::write(log, fmt_line(seed, 0)).unwrap();
    seed
}

#[test]
fn an_exit_from_a_hook_on_the_compressor_thread_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    seed_live_file(&log);
    let archives = plant_big(&log, 0, 2, 10);
    let blocked = format!(".{}.gz.tmp", stamped_archives(&log)[0].name);
    fs::create_dir(log.with_file_name(blocked)).unwrap();
    let mut command = common::entry_command(&common::entry!(exiting_hook_entry));
    command.env(ENV_HOOK_LOG, &log).stdout(Stdio::null());
    let mut child = common::spawn_retrying(&mut command).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the process hung in its exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(3));
    assert_eq!(archives.len(), 2);
}

/// The parent compresses a big archive; a child forked meanwhile exits normally (through
/// `exit`, which runs the exit handlers) and is gone while the parent's compression is
/// still under way.
#[test]
fn a_forked_child_exits_without_waiting_for_its_parents_compression() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let seed = seed_live_file(&log);
    let big = plant_big(&log, 0, 1, 200_000);
    let big_name = stamped_archives(&log)[0].name.clone();
    let shared = one_record_per_file(&log).build().unwrap();
    let writer = ROTATOR;
    (&shared).write_all(fmt_line(writer, 0).as_bytes()).unwrap();
    let claim = log.with_file_name(format!(".{big_name}.gz.tmp"));
    let started = Instant::now() + Duration::from_secs(30);
    while !claim.exists() {
        assert!(Instant::now() < started, "the compression never started");
        std::thread::sleep(Duration::from_micros(200));
    }
    // SAFETY: the child only calls `exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: ends the child through its exit handlers, as a return from main would.
        unsafe { libc::exit(0) };
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let gz = log.with_file_name(format!("{big_name}.gz"));
    assert!(
        claim.exists() && !gz.exists(),
        "the child waited for its parent's compression; make the archive bigger"
    );
    assert!(shared.wait_for_compression(DEADLINE));
    assert!(gz.exists() && !claim.exists());
    let report = Verifier::new(&log, u64::MAX, KEEP_ALL)
        .timestamped(true)
        .check_rotation_points(false)
        .expect(seed, Expect::Exactly(1))
        .expect(writer, Expect::Exactly(1))
        .expect(big[0], Expect::Exactly(200_000))
        .verify();
    assert!(report.is_ok(), "{report}");
}
