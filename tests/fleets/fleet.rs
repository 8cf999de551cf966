//! The writer processes of the fleet tests: each is this test binary re-run for
//! [`writer_entry`] (the one writer entry of the area) with `TSF_FLEET_CHILD` set, with
//! its own options and, under libfaketime, its own clock (an offset, or one that a file
//! steps mid-run). `disagreeing` and `attack` run such fleets.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use common::log_files::parse_record;
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::{Naming, Period, SharedFile};

const CHILD_ENV: &str = "TSF_FLEET_CHILD";
const REPORT_PREFIX: &str = "tracing-shared-file:";
const DEADLINE: Duration = Duration::from_secs(60);
pub const LARGE: u64 = 100 * 1024 * 1024;

/// The clock a writer runs with.
#[derive(Debug, Clone)]
pub enum Clock {
    Real,
    /// `faketime -f <offset>`: `+2h`, `-2h`.
    Offset(&'static str),
    /// An offset that the file holds, read at every call: the test steps it mid-run.
    SteppedBy(PathBuf),
}

/// What one writer process does.
#[derive(Debug, Clone)]
pub struct Job {
    pub process: u32,
    pub lines: u64,
    pub gap_ms: u64,
    pub max_bytes: u64,
    pub max_files: usize,
    pub timestamped: bool,
    /// Seconds; 0 for no time rotation, 60 for `Period::Minute`.
    pub period: u64,
    pub clock: Clock,
    /// Another build of the test binary to run (an older version of the crate), or
    /// `None` for this one.
    pub binary: Option<PathBuf>,
}

impl Job {
    pub fn new(process: u32) -> Self {
        Job {
            process,
            lines: 50,
            gap_ms: 20,
            max_bytes: LARGE,
            max_files: 5,
            timestamped: true,
            period: 60,
            clock: Clock::Real,
            binary: None,
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

/// Child side: one writer process, configured by `TSF_FLEET_CHILD` (a [`Job`]); without
/// it, a no-op.
#[test]
fn writer_entry() {
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

/// The preloaded library of libfaketime, where Debian puts it.
pub fn libfaketime() -> Option<PathBuf> {
    let libs = fs::read_dir("/usr/lib").ok()?;
    libs.filter_map(Result::ok)
        .map(|dir| dir.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|lib| lib.exists())
}

/// Whether `faketime` can run here; if not, says why the test skips.
pub fn faketime_available() -> bool {
    let works = Command::new("faketime")
        .args(["-f", "+2h", "true"])
        .status()
        .is_ok_and(|status| status.success());
    let works = works && libfaketime().is_some();
    if !works {
        eprintln!("skipped: faketime is not installed (run .ci/install-test-tools)");
    }
    works
}

pub struct Running {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// What a writer process left: its rotations and the library's reports.
pub struct Done {
    pub rotations: u64,
    pub reports: Vec<String>,
}

pub fn spawn(log: &Path, job: &Job) -> Running {
    let dir = log.parent().unwrap();
    let stdout = dir.join(format!("p{}.stdout", job.process));
    let stderr = dir.join(format!("p{}.stderr", job.process));
    // Another build is these same test sources against an older crate: same entry name.
    let exe = (job.binary.clone()).unwrap_or_else(|| std::env::current_exe().unwrap());
    let entry = common::entry!(writer_entry);
    let mut command = match &job.clock {
        Clock::Real => common::entry_command_of(&exe, &entry),
        Clock::Offset(offset) => {
            let mut command = Command::new("faketime");
            command.args(["-f", offset]).arg(&exe);
            command.args(["--exact", &entry, "--nocapture", "--test-threads=1"]);
            command
        }
        Clock::SteppedBy(file) => {
            let mut command = common::entry_command_of(&exe, &entry);
            command
                .env(
                    "LD_PRELOAD",
                    libfaketime().expect("faketime_available() first"),
                )
                .env("FAKETIME_TIMESTAMP_FILE", file)
                .env("FAKETIME_NO_CACHE", "1");
            command
        }
    };
    // The test harness's own timers stay real.
    command.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
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
    pub fn finish(mut self) -> Done {
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
pub fn run_together(log: &Path, jobs: &[Job]) -> (u64, Vec<String>) {
    let running: Vec<Running> = jobs.iter().map(|job| spawn(log, job)).collect();
    let done: Vec<Done> = running.into_iter().map(Running::finish).collect();
    let rotations = done.iter().map(|done| done.rotations).sum();
    let reports = done.into_iter().flat_map(|done| done.reports).collect();
    (rotations, reports)
}

/// Every file of the log, with the names of its archives of both forms.
pub fn files_of(log: &Path) -> (Vec<PathBuf>, Vec<String>) {
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
pub fn lines_by_writer(files: &[PathBuf]) -> BTreeMap<u32, Vec<u64>> {
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
