//! Worker processes started together, each running [`run_writer`](super::run_writer)
//! with a [`WriterSpec`] from its environment; a panicking test kills them all.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::WriterSpec;

/// Worker processes started together: each is spawned, built and ready before any logs.
#[derive(Debug)]
pub struct Workers {
    children: Vec<(u32, std::process::Child)>,
    /// Where each worker's stderr goes, by process number.
    stderr: std::collections::HashMap<u32, PathBuf>,
}

fn worker_stderr(process: u32, sync_dir: &Path) -> PathBuf {
    sync_dir.join(format!("stderr.{process}"))
}

impl Workers {
    fn stderr_of(&self, process: u32) -> String {
        stderr_text(&self.stderr, process)
    }
}

impl Workers {
    /// Spawns one worker per spec with `command()` (a command that runs [`run_writer`]
    /// when it finds a spec in its environment), waits until all are ready, then lets them
    /// all start at once.
    pub fn start(command: impl Fn() -> std::process::Command, specs: &[WriterSpec]) -> Self {
        let children = specs
            .iter()
            .map(|spec| {
                let mut cmd = command();
                spec.apply(&mut cmd);
                // A worker's stdout is the test harness's chatter. Its stderr carries panics
                // and the library's reports, which a test that provokes failures expects:
                // it goes to a file, shown only when the worker fails.
                cmd.stdout(std::process::Stdio::null());
                let stderr = std::fs::File::create(worker_stderr(spec.process, &spec.sync_dir))
                    .expect("cannot create a worker's stderr file");
                cmd.stderr(stderr);
                let child = cmd.spawn().expect("cannot spawn worker");
                (spec.process, child)
            })
            .collect();
        let stderr = specs
            .iter()
            .map(|spec| (spec.process, worker_stderr(spec.process, &spec.sync_dir)))
            .collect();
        let mut workers = Workers { children, stderr };
        for spec in specs {
            workers.wait_until_ready(spec);
        }
        if let Some(spec) = specs.first() {
            std::fs::write(spec.sync_dir.join("go"), b"").expect("cannot signal go");
        }
        workers
    }

    /// Waits for `spec`'s worker to signal ready; fails at once if it died instead.
    fn wait_until_ready(&mut self, spec: &WriterSpec) {
        let ready = spec.sync_dir.join(format!("ready.{}", spec.process));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            for (process, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    let process = *process;
                    panic!(
                        "worker {process} exited before it was ready: {status}\n{}",
                        self.stderr_of(process)
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "worker {} never got ready",
                spec.process
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for every worker and panics if one failed.
    pub fn wait(mut self) {
        for (process, child) in &mut self.children {
            let status = child.wait().expect("cannot wait for worker");
            assert_succeeded(&self.stderr, *process, status);
        }
        self.children.clear();
    }

    /// Like [`Workers::wait`], but fails (killing them all) if they are not all done
    /// within `limit`: a hang fails the test instead of stalling it.
    pub fn wait_within(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for (process, child) in &mut self.children {
            let status = loop {
                if let Some(status) = child.try_wait().expect("cannot wait for worker") {
                    break status;
                }
                // Unwinding drops `self`, which kills every worker.
                assert!(
                    Instant::now() < deadline,
                    "worker {process} was not done within {limit:?}"
                );
                std::thread::sleep(Duration::from_millis(2));
            };
            assert_succeeded(&self.stderr, *process, status);
        }
        self.children.clear();
    }
}

impl Drop for Workers {
    /// A panicking test must not leave workers behind.
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Fails, with the worker's stderr, unless worker `process` exited with status 0.
fn assert_succeeded(
    stderr: &std::collections::HashMap<u32, PathBuf>,
    process: u32,
    status: std::process::ExitStatus,
) {
    if !status.success() {
        panic!(
            "worker {process} failed: {status}\n{}",
            stderr_text(stderr, process)
        );
    }
}

/// What worker `process` printed on stderr.
fn stderr_text(stderr: &std::collections::HashMap<u32, PathBuf>, process: u32) -> String {
    stderr
        .get(&process)
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default()
}
