//! The log shippers of `shippers`, as real processes: rsyslog (`imfile` forwarding through
//! `omfile` to a flat file, configured as docs/shipping.md says) and GNU `tail -F`; each
//! started following the live path, waited for until it follows, and killed when dropped.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::shippers::{DELIVERY_DEADLINE, Run, STALL, START_DEADLINE};
use crate::common;

/// The shippers under test.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shipper {
    Rsyslog,
    Tail,
}

impl Shipper {
    /// Starts following `run`'s live file, and returns once the shipper follows it; `Err`
    /// says why the shipper is not available here (the test then skips).
    pub(crate) fn start(self, run: &Run) -> Result<Follower, String> {
        match self {
            Shipper::Rsyslog => start_rsyslog(run),
            Shipper::Tail => start_tail(run),
        }
    }
}

/// The rsyslog configuration of docs/shipping.md, plus a probe input that shows when
/// imfile is running: nothing else, so the system's logging cannot interfere.
fn rsyslog_config(
    work: &Path,
    log: &Path,
    output: &Path,
    probe: &Path,
    probe_out: &Path,
) -> String {
    format!(
        r#"global(workDirectory="{work}")
module(load="imfile" mode="inotify")
template(name="lineOnly" type="string" string="%msg%\n")
ruleset(name="app") {{
    action(type="omfile" file="{output}" template="lineOnly")
}}
input(type="imfile" file="{log}" tag="app" ruleset="app"
      freshStartTail="off" reopenOnTruncate="off")
ruleset(name="probe") {{
    action(type="omfile" file="{probe_out}" template="lineOnly")
}}
input(type="imfile" file="{probe}" tag="probe" ruleset="probe")
"#,
        work = work.display(),
        log = log.display(),
        output = output.display(),
        probe = probe.display(),
        probe_out = probe_out.display(),
    )
}

fn find_rsyslogd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("rsyslogd"))
        .find(|candidate| candidate.is_file())
}

fn start_rsyslog(run: &Run) -> Result<Follower, String> {
    let rsyslogd =
        find_rsyslogd().ok_or("rsyslogd not found (.ci/install-shippers installs it)")?;
    let dir = run.shipper_dir();
    let work = dir.join("work");
    fs::create_dir(&work).expect("create rsyslog's work directory");
    let output = dir.join("delivered").join("app.log");
    fs::create_dir(output.parent().unwrap()).expect("create the output directory");
    let probe = dir.join("probe");
    let probe_out = dir.join("probe.out");
    File::create(&probe).expect("create the probe file");
    let config = dir.join("rsyslog.conf");
    fs::write(
        &config,
        rsyslog_config(&work, &run.log, &output, &probe, &probe_out),
    )
    .expect("write rsyslog.conf");

    let mut command = Command::new(&rsyslogd);
    command
        .arg("-n")
        .arg("-f")
        .arg(&config)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"));
    let mut follower = Follower::spawn("rsyslogd", command, &dir, output, None)
        .map_err(|e| format!("cannot run {}: {e}", rsyslogd.display()))?;

    // A line written to the probe coming out shows that rsyslogd runs and imfile works;
    // if not, rsyslog cannot run here, and the test skips.
    fs::write(&probe, "probe\n").expect("write the probe");
    let deadline = Instant::now() + START_DEADLINE;
    while fs::read(&probe_out).unwrap_or_default() != b"probe\n" {
        if let Some(status) = follower.exited() {
            return Err(format!(
                "rsyslogd exited at start ({status}): {}",
                follower.stderr()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "rsyslogd did not deliver its probe line within {START_DEADLINE:?}: {}",
                follower.stderr()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    follower.wait_until_following(&run.log);
    Ok(follower)
}

fn start_tail(run: &Run) -> Result<Follower, String> {
    let version = Command::new("tail")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run tail: {e}"))?;
    if !String::from_utf8_lossy(&version.stdout).contains("GNU coreutils") {
        return Err("tail is not GNU tail".to_string());
    }
    let dir = run.shipper_dir();
    let output = dir.join("delivered").join("app.log");
    fs::create_dir(output.parent().unwrap()).expect("create the output directory");
    let mut command = Command::new("tail");
    command.args(["-F", "-n", "+1", "--retry"]).arg(&run.log);
    let stdout = File::create(&output).expect("create tail's output");
    let mut follower = Follower::spawn("tail", command, &dir, output, Some(stdout))
        .map_err(|e| format!("cannot run tail: {e}"))?;
    follower.wait_until_following(&run.log);
    Ok(follower)
}

/// A running shipper, killed if the test panics first.
pub(crate) struct Follower {
    name: &'static str,
    child: Option<Child>,
    stderr: PathBuf,
    /// Where it delivers the lines.
    output: PathBuf,
}

impl Follower {
    /// Runs `command` with its stderr in `dir`, and its stdout in `stdout` if given.
    pub(crate) fn spawn(
        name: &'static str,
        mut command: Command,
        dir: &Path,
        output: PathBuf,
        stdout: Option<File>,
    ) -> std::io::Result<Self> {
        let stderr = dir.join(format!("{name}.stderr"));
        command
            .stdin(Stdio::null())
            .stdout(stdout.map_or_else(Stdio::null, Stdio::from))
            .stderr(File::create(&stderr)?);
        let child = common::spawn_retrying(&mut command)?;
        Ok(Follower {
            name,
            child: Some(child),
            stderr,
            output,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().expect("cannot wait for the shipper"))
    }

    pub(crate) fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until the process has `log` open and, in inotify mode, its watches set, so
    /// that no rotation can happen before it follows the path.
    pub(crate) fn wait_until_following(&mut self, log: &Path) {
        let fd_dir = PathBuf::from(format!("/proc/{}/fd", self.pid()));
        let deadline = Instant::now() + START_DEADLINE;
        let mut opened_at = None;
        loop {
            let mut has_log = false;
            let mut watches = 0;
            for entry in fs::read_dir(&fd_dir).into_iter().flatten().flatten() {
                let Ok(target) = fs::read_link(entry.path()) else {
                    continue;
                };
                if target == log {
                    has_log = true;
                } else if target == Path::new("anon_inode:inotify") {
                    let info = fd_dir.with_file_name("fdinfo").join(entry.file_name());
                    watches += fs::read_to_string(info)
                        .unwrap_or_default()
                        .lines()
                        .filter(|line| line.starts_with("inotify wd:"))
                        .count();
                }
            }
            if has_log {
                let opened = *opened_at.get_or_insert_with(Instant::now);
                // Without inotify (a file system tail calls remote), it polls the path.
                if watches > 0 || opened.elapsed() > Duration::from_millis(500) {
                    return;
                }
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{} exited at start ({status}): {}",
                    self.name,
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not follow {} within {START_DEADLINE:?}: {}",
                self.name,
                log.display(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the output holds `expected` lines, or stops growing for `STALL`, or
    /// `DELIVERY_DEADLINE` passes; the verifier then says what is missing.
    pub(crate) fn wait_for_delivery(&mut self, expected: u64) {
        let deadline = Instant::now() + DELIVERY_DEADLINE;
        let mut last = (0, Instant::now());
        loop {
            let lines = count_lines(&self.output);
            if lines >= expected {
                // A duplicate arriving late would show in a moment.
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            if lines != last.0 {
                last = (lines, Instant::now());
            }
            if last.1.elapsed() > STALL || Instant::now() > deadline {
                return;
            }
            if let Some(status) = self.exited() {
                panic!("{} exited ({status}): {}", self.name, self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the shipper (SIGTERM, so rsyslog flushes and closes its output) and returns
    /// its output file.
    pub(crate) fn stop(mut self) -> PathBuf {
        let mut child = self.child.take().expect("stopped twice");
        // SAFETY: kill(2) on our own child, which has not been waited for yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while child
            .try_wait()
            .expect("cannot wait for the shipper")
            .is_none()
        {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop on SIGTERM: {}", self.name, self.stderr());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.output.clone()
    }
}

impl Drop for Follower {
    /// A failing test must not leave a shipper behind.
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn count_lines(path: &Path) -> u64 {
    fs::read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count() as u64)
        .unwrap_or(0)
}
