//! Child processes for the cross-process tests: an entry point of the running test binary
//! (a `#[test]` that does nothing unless an environment variable selects it) spawned with
//! its output in files, waited for with a deadline and killed if the test panics first;
//! what it printed, and the library's reports among that, once it exited.
//!
//! Invariant: no child outlives its test. `RunningChild` kills and reaps on drop, and
//! every wait has a deadline, so a hung child fails the test instead of stalling it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any child may take before the test calls it hung.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(60);
/// The prefix of every line the library prints on stderr.
pub const REPORT_PREFIX: &str = "tracing-shared-file:";

/// Creates an empty file: a signal between the test and its children.
pub fn touch(path: &Path) {
    fs::write(path, b"").unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
}

/// Runs `entry` of this test binary (or of `exe`, a copy of it) as a child, with stdout
/// and stderr going to files so that the child can never block on a full pipe.
pub fn spawn_entry(
    exe: &Path,
    entry: &str,
    out_dir: &Path,
    name: &str,
    configure: impl FnOnce(&mut Command),
) -> RunningChild {
    let stdout = out_dir.join(format!("stdout.{name}"));
    let stderr = out_dir.join(format!("stderr.{name}"));
    let mut command = super::entry_command_of(exe, entry);
    command
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("create stdout file"))
        .stderr(File::create(&stderr).expect("create stderr file"));
    configure(&mut command);
    let child = super::spawn_retrying(&mut command)
        .unwrap_or_else(|e| panic!("cannot spawn child {name}: {e}"));
    RunningChild {
        name: name.to_string(),
        child: Some(child),
        stdout,
        stderr,
        deadline: CHILD_DEADLINE,
    }
}

/// [`spawn_entry`] of this test binary, the usual case: `entry` is a full test name, as
/// [`entry!`](super::entry) gives it.
pub fn start_entry(
    entry: &str,
    out_dir: &Path,
    name: &str,
    configure: impl FnOnce(&mut Command),
) -> RunningChild {
    let exe = std::env::current_exe().expect("current_exe");
    spawn_entry(&exe, entry, out_dir, name, configure)
}

/// Whether `status` is that of a child ended by `Child::kill`: SIGKILL on Unix,
/// `TerminateProcess` with exit code 1 on Windows (a test that fails exits with 101).
pub fn was_killed(status: &ExitStatus) -> bool {
    #[cfg(unix)]
    return std::os::unix::process::ExitStatusExt::signal(status) == Some(libc::SIGKILL);
    #[cfg(windows)]
    return status.code() == Some(1);
}

/// Whether every thread of process `pid` is stopped (state `T` or `t` in /proc): a child
/// sent `SIGSTOP` has really stopped once this is true.
#[cfg(unix)]
pub fn is_stopped(pid: libc::pid_t) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).all(|task| {
        fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state == 'T' || state == 't')
        })
    })
}

/// [`start_entry`] with one environment variable set: the usual way a test tells its
/// entry what to do (the entry does nothing without it).
pub fn start_entry_env(
    entry: &str,
    out_dir: &Path,
    name: &str,
    env: &str,
    value: impl AsRef<std::ffi::OsStr>,
) -> RunningChild {
    start_entry(entry, out_dir, name, |command| {
        command.env(env, value);
    })
}

/// A child process that is killed if the test panics before waiting for it: SIGKILL
/// also ends a stopped child, and frees any lock it holds, so that whatever the failing
/// test left waiting on it can finish.
pub struct RunningChild {
    name: String,
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
    /// How long any one wait on this child may take before the test calls it hung.
    deadline: Duration,
}

/// What a child left behind.
pub struct Finished {
    pub name: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The counter `key` of the child's `STATS key=value ...` line on stdout, as the
    /// workload's writers print it.
    #[track_caller]
    pub fn stat(&self, key: &str) -> u64 {
        let stats = self
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix("STATS "))
            .unwrap_or_else(|| panic!("no stats in {}\n{}", self.stdout, self.stderr));
        stats
            .split(' ')
            .find_map(|field| field.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {stats}"))
            .parse()
            .unwrap()
    }

    /// The lines the library printed on stderr.
    pub fn reports(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| line.starts_with(REPORT_PREFIX))
            .collect()
    }

    /// Fails unless the child exited with status 0 and printed no panic.
    #[track_caller]
    pub fn assert_success(&self) {
        self.assert_exited_ok();
        assert!(
            !self.stderr.contains("panicked"),
            "child {} panicked:\n{}",
            self.name,
            self.stderr
        );
    }

    /// Fails unless the child exited with status 0, showing what it printed.
    #[track_caller]
    pub fn assert_exited_ok(&self) {
        assert!(
            self.status.success(),
            "child {} failed ({}):\n--- stderr\n{}\n--- stdout\n{}",
            self.name,
            self.status,
            self.stderr,
            self.stdout
        );
    }

    /// The rest of the one line of stdout that starts with `tag` and a space.
    #[track_caller]
    pub fn line(&self, tag: &str) -> &str {
        let prefix = format!("{tag} ");
        let found: Vec<&str> = self
            .stdout
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .collect();
        match found[..] {
            [line] => line,
            _ => panic!(
                "{}: expected one line starting with {prefix:?}:\n{}",
                self.name, self.stdout
            ),
        }
    }

    /// The `key=value` fields of the one line of stdout that starts with `tag`.
    #[track_caller]
    pub fn fields(&self, tag: &str) -> BTreeMap<String, String> {
        self.line(tag)
            .split_whitespace()
            .map(|field| {
                let (key, value) = field
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: not key=value: {field:?}", self.name));
                (key.to_string(), value.to_string())
            })
            .collect()
    }
}

impl RunningChild {
    /// Sets how long any one wait on this child may take (default [`CHILD_DEADLINE`]).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    #[cfg(unix)]
    pub fn pid(&self) -> libc::pid_t {
        self.child.as_ref().expect("already waited for").id() as libc::pid_t
    }

    /// The child's exit status, if it has exited (it is not reaped twice).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The file the child's stderr goes to.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// What the child printed on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until the child creates `path`, failing at once if it exits first.
    #[track_caller]
    pub fn wait_for_file(&mut self, path: &Path) {
        let deadline = Instant::now() + self.deadline;
        while !path.exists() {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none(),
                "child {} exited ({exited:?}) before creating {}:\n{}",
                self.name,
                path.display(),
                self.stderr()
            );
            assert!(
                Instant::now() < deadline,
                "child {} never created {}:\n{}",
                self.name,
                path.display(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for the child, killing it and failing the test at `deadline`.
    pub fn wait(mut self, deadline: Instant) -> Finished {
        let mut child = self.child.take().expect("waited twice");
        let status = loop {
            if let Some(status) = child.try_wait().expect("cannot wait for child") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "child {} hung; stderr so far:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        Finished {
            name: self.name.clone(),
            status,
            stdout: fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }

    /// Waits for the child, for at most its deadline.
    pub fn finish(self) -> Finished {
        let deadline = Instant::now() + self.deadline;
        self.wait(deadline)
    }

    /// Kills the child now (SIGKILL) and reaps it.
    pub fn kill(mut self) -> Finished {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
        }
        self.finish()
    }
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// Where they were before `Fleet` had a module of its own.
pub use super::fleet::{Fleet, WorkerConfig, WorkerOutcome, worker_main};

/// Waits for `child` (spawned without a `RunningChild`); kills it and fails if it has not
/// exited by `deadline`.
#[track_caller]
pub fn wait_with_deadline(child: &mut Child, deadline: Instant) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a child hung");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
