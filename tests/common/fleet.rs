//! `Fleet`: writer processes that log records in phases, so that a test can do its damage
//! mid-run and still be sure that every writer logs after it.
//!
//! The workers are a test entry of the running binary, run again in a child process: a
//! module that starts a `Fleet` has an entry test that calls `worker_main`, and names it
//! to [`Fleet::for_entry`] by its full name (`entry!`).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

use super::children::{CHILD_DEADLINE, Finished, RunningChild, spawn_entry, touch};
use super::workload::{WriterId, record, wait_for_file};

const WORKER_ENV: &str = "TSF_HOSTILE_WORKER";
const WORKER_LOG_ENV: &str = "TSF_HOSTILE_WORKER_LOG";
const WORKER_SYNC_ENV: &str = "TSF_HOSTILE_WORKER_SYNC";
const WORKER_CONFIG_ENV: &str = "TSF_HOSTILE_WORKER_CONFIG";

/// What one writer process does. Records are numbered on through the phases; between
/// two phases the worker creates `<sync>/phase<i>.<process>` and waits for
/// `<sync>/resume<i>`, so the test can do its damage while the writers are busy and still
/// be sure that every writer logs after it.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub log: PathBuf,
    pub max_bytes: u64,
    pub max_files: usize,
    pub threads: u32,
    pub phases: Vec<u64>,
}

impl WorkerConfig {
    pub fn total_per_thread(&self) -> u64 {
        self.phases.iter().sum()
    }
}

/// Child side of the writer processes: does nothing unless run by `Fleet::start`.
pub fn worker_main() {
    let Some(process) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    let process: u32 = process.to_str().unwrap().parse().unwrap();
    let log_path = PathBuf::from(std::env::var_os(WORKER_LOG_ENV).unwrap());
    let sync = PathBuf::from(std::env::var_os(WORKER_SYNC_ENV).unwrap());
    let numbers: Vec<u64> = std::env::var(WORKER_CONFIG_ENV)
        .unwrap()
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    let (max_bytes, max_files, threads, phases) = (
        numbers[0],
        numbers[1] as usize,
        numbers[2] as u32,
        &numbers[3..],
    );

    let log = SharedFile::builder(&log_path)
        .max_bytes(max_bytes)
        .max_files(max_files)
        .build()
        .expect("worker cannot build its SharedFile");
    tracing_subscriber::registry().with(log.layer()).init();
    touch(&sync.join(format!("ready.{process}")));
    wait_for_file(&sync.join("go"));

    let mut first_seq = 0;
    for (phase, &lines) in phases.iter().enumerate() {
        if phase > 0 {
            touch(&sync.join(format!("phase{phase}.{process}")));
            wait_for_file(&sync.join(format!("resume{phase}")));
        }
        std::thread::scope(|scope| {
            for thread in 0..threads {
                scope.spawn(move || {
                    let writer = WriterId { process, thread };
                    for seq in first_seq..first_seq + lines {
                        tracing::info!(target: "workload", "{}", record(writer, seq));
                    }
                });
            }
        });
        first_seq += lines;
    }
    let stats = log.stats();
    let summary = format!(
        "written={} write_errors={} dropped={} rotations={} rotation_errors={}\npath={}",
        stats.events_written,
        stats.write_errors,
        stats.events_dropped,
        stats.rotations,
        stats.rotation_errors,
        log.path().display()
    );
    fs::write(sync.join(format!("stats.{process}")), summary).expect("write stats");
}

/// Writer processes of one test, sharing one sync directory. Each runs the test binary's
/// `worker_entry` test, which must call `worker_main`.
pub struct Fleet {
    pub sync: PathBuf,
    /// The full test name of the entry that calls `worker_main`.
    entry: String,
    configs: BTreeMap<u32, WorkerConfig>,
    running: Vec<(u32, RunningChild)>,
}

impl Fleet {
    /// Workers that run the test `entry` (a full test name, as `entry!` gives it).
    pub fn for_entry(sync: &Path, entry: &str) -> Self {
        fs::create_dir_all(sync).expect("create sync dir");
        Fleet {
            sync: sync.to_path_buf(),
            entry: entry.to_string(),
            configs: BTreeMap::new(),
            running: Vec::new(),
        }
    }

    /// Spawns one worker per process number, waits until all have built their
    /// `SharedFile`, then lets them go (workers spawned after the first `start` go as
    /// soon as they are ready).
    pub fn start(&mut self, processes: impl IntoIterator<Item = u32>, config: &WorkerConfig) {
        let exe = std::env::current_exe().expect("current_exe");
        let processes: Vec<u32> = processes.into_iter().collect();
        for &process in &processes {
            let numbers: Vec<String> = [config.max_bytes, config.max_files as u64]
                .into_iter()
                .chain([u64::from(config.threads)])
                .chain(config.phases.iter().copied())
                .map(|n| n.to_string())
                .collect();
            let child = spawn_entry(
                &exe,
                &self.entry,
                &self.sync,
                &format!("worker{process}"),
                |command| {
                    command
                        .env(WORKER_ENV, process.to_string())
                        .env(WORKER_LOG_ENV, &config.log)
                        .env(WORKER_SYNC_ENV, &self.sync)
                        .env(WORKER_CONFIG_ENV, numbers.join(","));
                },
            );
            self.configs.insert(process, config.clone());
            self.running.push((process, child));
        }
        for &process in &processes {
            self.wait_for(&format!("ready.{process}"));
        }
        touch(&self.sync.join("go"));
    }

    /// Waits for a file in the sync directory, failing early if a worker died.
    fn wait_for(&mut self, name: &str) {
        let path = self.sync.join(name);
        self.wait_until(name, || path.exists());
    }

    /// Waits until `done()`, failing early if a worker died.
    pub fn wait_until(&mut self, name: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + CHILD_DEADLINE;
        while !done() {
            for (process, running) in &mut self.running {
                if let Some(status) = running.exited()
                    && !status.success()
                {
                    panic!(
                        "worker {process} died ({status}) while the test waited for {name}:\n{}",
                        running.stderr()
                    );
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {name}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until every worker in `processes` finished phase `phase`, then lets them on.
    pub fn resume(&mut self, processes: impl IntoIterator<Item = u32>, phase: usize) {
        for process in processes {
            self.wait_for(&format!("phase{phase}.{process}"));
        }
        touch(&self.sync.join(format!("resume{phase}")));
    }

    /// The process ids of the workers not yet waited for.
    #[cfg(unix)]
    pub fn pids(&self) -> Vec<libc::pid_t> {
        self.running
            .iter()
            .map(|(_, running)| running.pid())
            .collect()
    }

    /// Waits for every worker; returns each one's outcome and the stats it wrote.
    pub fn finish(mut self) -> Vec<WorkerOutcome> {
        let deadline = Instant::now() + CHILD_DEADLINE;
        let running = std::mem::take(&mut self.running);
        running
            .into_iter()
            .map(|(process, child)| {
                let finished = child.wait(deadline);
                finished.assert_success();
                let stats_text = fs::read_to_string(self.sync.join(format!("stats.{process}")))
                    .unwrap_or_else(|e| panic!("worker {process} wrote no stats: {e}"));
                WorkerOutcome {
                    process,
                    config: self.configs[&process].clone(),
                    stats: parse_stats(&stats_text),
                    finished,
                }
            })
            .collect()
    }
}

/// How one worker of a `Fleet` ended, and what it was asked to do.
pub struct WorkerOutcome {
    pub process: u32,
    pub config: WorkerConfig,
    pub stats: HashMap<String, String>,
    pub finished: Finished,
}

impl WorkerOutcome {
    pub fn stat(&self, name: &str) -> u64 {
        self.stats[name].parse().unwrap()
    }

    pub fn expected_events(&self) -> u64 {
        u64::from(self.config.threads) * self.config.total_per_thread()
    }

    pub fn writers(&self) -> impl Iterator<Item = WriterId> + '_ {
        (0..self.config.threads).map(|thread| WriterId {
            process: self.process,
            thread,
        })
    }
}

/// `key=value` pairs separated by spaces or newlines.
fn parse_stats(text: &str) -> HashMap<String, String> {
    text.split([' ', '\n'])
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
