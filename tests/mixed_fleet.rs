//! Processes that disagree share one log without a rotation storm and without losing a
//! line that the limits they agree on keep: other periods, clocks ahead and behind
//! (libfaketime), the other naming, other sizes in many short-lived processes.
//!
//! - The live file keeps the schedule it was opened under: two processes with other
//!   periods, or with clocks two hours apart, rotate at most twice in a one-second run.
//! - Numbered and timestamped archives count together: at most `max_files` archives in
//!   all, and every writer's surviving lines are its newest, each once.
//! - A disagreement is reported once per lock file, not once per process.
//!
//! Every writer is a real process: this test binary, re-run with `TSF_FLEET_CHILD` set,
//! under `faketime` for a clock that is off. Without `faketime` (see
//! `.ci/install-test-tools`) the clock cases print "skipped" and pass.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::log_files::parse_record;
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::{Naming, Period, SharedFile};

const CHILD_ENV: &str = "TSF_FLEET_CHILD";
const REPORT_PREFIX: &str = "tracing-shared-file:";
const DEADLINE: Duration = Duration::from_secs(60);
const LARGE: u64 = 100 * 1024 * 1024;

/// What one writer process does.
#[derive(Debug, Clone)]
struct Job {
    process: u32,
    lines: u64,
    gap_ms: u64,
    max_bytes: u64,
    max_files: usize,
    timestamped: bool,
    /// Seconds; 0 for no time rotation, 60 for `Period::Minute`.
    period: u64,
    /// Run under `faketime -f <this>`.
    clock: Option<&'static str>,
}

impl Job {
    fn new(process: u32) -> Self {
        Job {
            process,
            lines: 50,
            gap_ms: 20,
            max_bytes: LARGE,
            max_files: 5,
            timestamped: true,
            period: 60,
            clock: None,
        }
    }

    fn encode(&self, log: &Path) -> String {
        format!(
            "{};{};{};{};{};{};{};{}",
            log.display(),
            self.process,
            self.lines,
            self.gap_ms,
            self.max_bytes,
            self.max_files,
            u8::from(self.timestamped),
            self.period
        )
    }
}

/// Child side: one writer process.
#[test]
fn fleet_writer_entry() {
    let Some(config) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let fields: Vec<String> = config
        .to_str()
        .unwrap()
        .split(';')
        .map(str::to_owned)
        .collect();
    let number = |i: usize| fields[i].parse::<u64>().unwrap();
    let mut builder = SharedFile::builder(&fields[0])
        .max_bytes(number(4))
        .max_files(number(5) as usize);
    if number(6) == 1 {
        builder = builder.naming(Naming::Timestamped);
    }
    builder = match number(7) {
        0 => builder,
        60 => builder.rotate_every(Period::Minute),
        seconds => builder.rotate_every(Period::Every(Duration::from_secs(seconds))),
    };
    let log = builder.build().unwrap();
    let writer = WriterId {
        process: number(1) as u32,
        thread: 0,
    };
    for seq in 0..number(2) {
        (&log).write_all(fmt_line(writer, seq).as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(number(3)));
    }
    let stats = log.stats();
    println!(
        "\nSTATS rotations={} rotation_errors={} write_errors={}",
        stats.rotations, stats.rotation_errors, stats.write_errors
    );
}

/// Whether `faketime` can run here; if not, says why the test skips.
fn faketime_available() -> bool {
    let works = Command::new("faketime")
        .args(["-f", "+2h", "true"])
        .status()
        .is_ok_and(|status| status.success());
    if !works {
        eprintln!("skipped: faketime is not installed (run .ci/install-test-tools)");
    }
    works
}

struct Running {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// What a writer process left: its rotations and the library's reports.
struct Done {
    rotations: u64,
    reports: Vec<String>,
}

fn spawn(log: &Path, job: &Job) -> Running {
    let dir = log.parent().unwrap();
    let stdout = dir.join(format!("p{}.stdout", job.process));
    let stderr = dir.join(format!("p{}.stderr", job.process));
    let exe = std::env::current_exe().unwrap();
    let mut command = match job.clock {
        Some(offset) => {
            let mut command = Command::new("faketime");
            command.args(["-f", offset]).arg(&exe);
            command.args([
                "--exact",
                "fleet_writer_entry",
                "--nocapture",
                "--test-threads=1",
            ]);
            // The test harness's own timers stay real.
            command.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
            command
        }
        None => common::entry_command("fleet_writer_entry"),
    };
    command
        .env(CHILD_ENV, job.encode(log))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap());
    let child = common::spawn_retrying(&mut command).expect("spawn a writer");
    Running {
        child: Some(child),
        stdout,
        stderr,
    }
}

impl Running {
    fn finish(mut self) -> Done {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                break status;
            }
            assert!(Instant::now() < deadline, "a writer hung");
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = fs::read_to_string(&self.stdout).unwrap();
        let stderr = fs::read_to_string(&self.stderr).unwrap();
        assert!(status.success(), "a writer failed ({status}):\n{stderr}");
        let stats = stdout
            .lines()
            .find_map(|line| line.strip_prefix("STATS "))
            .unwrap_or_else(|| panic!("no stats:\n{stdout}"));
        assert!(
            stats.ends_with("rotation_errors=0 write_errors=0"),
            "{stats}\n{stderr}"
        );
        let rotations = stats
            .split(' ')
            .find_map(|field| field.strip_prefix("rotations="))
            .unwrap()
            .parse()
            .unwrap();
        Done {
            rotations,
            reports: stderr
                .lines()
                .filter(|line| line.starts_with(REPORT_PREFIX))
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `jobs` at once; their rotations in all, and every report.
fn run_together(log: &Path, jobs: &[Job]) -> (u64, Vec<String>) {
    let running: Vec<Running> = jobs.iter().map(|job| spawn(log, job)).collect();
    let done: Vec<Done> = running.into_iter().map(Running::finish).collect();
    let rotations = done.iter().map(|done| done.rotations).sum();
    let reports = done.into_iter().flat_map(|done| done.reports).collect();
    (rotations, reports)
}

/// Two processes, 50 lines each, 20 ms apart: every line once, and at most two rotations
/// (one for the disagreement, one if the second crosses a boundary).
fn two_in_one_second(first: Job, second: Job) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let (rotations, reports) = run_together(&log, &[first.clone(), second.clone()]);
    assert!(rotations <= 2, "{rotations} rotations in one second");
    Verifier::new(&log, LARGE, 5)
        .timestamped(true)
        .check_rotation_points(false)
        .check_record_order(true)
        .expect_process(first.process, 1, first.lines)
        .expect_process(second.process, 1, second.lines)
        .verify()
        .assert_ok();
    reports
}

#[test]
fn other_periods_keep_the_live_files_schedule_with_no_storm() {
    let minute = Job::new(1);
    let hourly = Job {
        period: 3600,
        ..Job::new(2)
    };
    let reports = two_in_one_second(minute, hourly);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    for word in [
        "rotate_every",
        "Minute",
        "Every(3600 s)",
        "keeps the schedule",
    ] {
        assert!(report.contains(word), "{word} missing from: {report}");
    }
}

#[test]
fn a_clock_two_hours_ahead_rotates_once_at_most() {
    if !faketime_available() {
        return;
    }
    let ahead = Job {
        clock: Some("+2h"),
        ..Job::new(2)
    };
    let reports = two_in_one_second(Job::new(1), ahead);
    assert_eq!(reports, Vec::<String>::new());
}

#[test]
fn a_clock_two_hours_behind_rotates_once_at_most() {
    if !faketime_available() {
        return;
    }
    let behind = Job {
        clock: Some("-2h"),
        ..Job::new(2)
    };
    let reports = two_in_one_second(Job::new(1), behind);
    assert_eq!(reports, Vec::<String>::new());
}

/// Every file of the log, with the names of its archives of both forms.
fn files_of(log: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let name = log.file_name().unwrap().to_str().unwrap();
    let mut files = Vec::new();
    let mut archives = Vec::new();
    for entry in fs::read_dir(log.parent().unwrap()).unwrap() {
        let entry_name = entry.unwrap().file_name().into_string().unwrap();
        match entry_name.strip_prefix(name) {
            Some("") => files.push(log.to_path_buf()),
            Some(".lock") | None => {}
            Some(_) => {
                archives.push(entry_name.clone());
                files.push(log.with_file_name(&entry_name));
            }
        }
    }
    (files, archives)
}

/// Every whole line of the log's files, by writer: the sequences, each as often as found.
fn lines_by_writer(files: &[PathBuf]) -> BTreeMap<u32, Vec<u64>> {
    let mut found: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "torn end in {file:?}"
        );
        for line in text.lines() {
            let (writer, seq) = parse_record(line)
                .unwrap_or_else(|| panic!("not a whole record in {file:?}: {line:?}"));
            assert_eq!(format!("{line}\n"), fmt_line(writer, seq));
            found.entry(writer.process).or_default().push(seq);
        }
    }
    found
}

#[test]
fn numbered_and_timestamped_archives_are_retired_together_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let job = |process, timestamped| Job {
        lines: 400,
        gap_ms: 0,
        max_bytes: 2048,
        max_files: 3,
        timestamped,
        period: 0,
        ..Job::new(process)
    };
    let (rotations, reports) = run_together(&log, &[job(1, false), job(2, true)]);
    assert!(
        rotations > 3,
        "too few rotations to test retention: {rotations}"
    );
    let (files, archives) = files_of(&log);
    assert!(archives.len() <= 3, "more than max_files: {archives:?}");
    // Each writer's surviving lines are its newest, once each: nothing newer was deleted
    // while something older was kept, whichever naming held it.
    for (process, mut seqs) in lines_by_writer(&files) {
        seqs.sort_unstable();
        let first = seqs[0];
        assert_eq!(
            seqs,
            (first..400).collect::<Vec<_>>(),
            "writer {process}: {archives:?}"
        );
    }
    let naming: Vec<&String> = reports.iter().filter(|r| r.contains("naming")).collect();
    assert_eq!(naming.len(), 1, "{reports:#?}");
    assert!(naming[0].contains("Numbered") && naming[0].contains("Timestamped"));
}

#[test]
fn fifty_short_jobs_report_their_disagreement_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let jobs: Vec<Job> = (0..50)
        .map(|process| Job {
            lines: 5,
            gap_ms: 0,
            max_bytes: if process % 2 == 0 { 65_536 } else { 16_384 },
            max_files: 1000,
            period: 0,
            ..Job::new(process)
        })
        .collect();
    // Cron-style: ten at a time, each living a few milliseconds.
    let mut reports = Vec::new();
    for wave in jobs.chunks(10) {
        reports.extend(run_together(&log, wave).1);
    }
    assert_eq!(reports.len(), 1, "{reports:#?}");
    for value in ["max_bytes", "65536", "16384", "the smaller rules"] {
        assert!(
            reports[0].contains(value),
            "{value} missing: {}",
            reports[0]
        );
    }
    let mut verifier = Verifier::new(&log, 65_536, 1000)
        .timestamped(true)
        .check_rotation_points(false);
    for job in &jobs {
        verifier = verifier.expect(
            WriterId {
                process: job.process,
                thread: 0,
            },
            Expect::Exactly(job.lines),
        );
    }
    verifier.verify().assert_ok();
}
