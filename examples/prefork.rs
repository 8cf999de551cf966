//! A pre-fork server: the parent sets up logging once, then forks worker processes without
//! exec; each worker logs through the `SharedFile` it inherited, into the same file, which
//! rotates often (`max_bytes` 16 KiB). The parent waits for the workers and runs the
//! verifier of the integration tests over every file: each line is there exactly once,
//! whole, and no file is over `max_bytes`.
//!
//! ```text
//! cargo run --example prefork
//! sudo target/debug/examples/prefork   # also drops the workers' privileges
//! ```
//!
//! Run as root, it does what servers that start as root do: each worker drops to an
//! unprivileged user and group (65534, `nobody`/`nogroup` on most systems) right after
//! the fork, and goes on logging and rotating. That needs the recipe of the README's
//! "Pre-fork servers that drop privileges": `file_mode(0o660)`, and a directory that the
//! workers' group may write, with the set-group-ID bit so that new files get its group.

// The tests' workload and verifier; the example uses only part of them.
#[path = "../tests/common/workload.rs"]
#[allow(dead_code)]
mod workload;

#[path = "../tests/common/verifier.rs"]
#[allow(dead_code)]
mod verifier;

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    server::main()
}

/// Fork without exec is Unix-only.
#[cfg(not(unix))]
fn main() {
    println!("prefork: fork is Unix-only; nothing to run on this platform");
}

#[cfg(unix)]
mod server {
    use super::{verifier, workload};
    use std::collections::BTreeMap;
    use std::error::Error;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use tracing_shared_file::SharedFile;
    use tracing_subscriber::prelude::*;
    use verifier::Verifier;
    use workload::{WriterId, record};

    const WORKERS: u32 = 4;
    const LINES_PER_WORKER: u64 = 2_000;
    /// What the parent logs before it forks: the workers inherit a file already in use.
    const PARENT_LINES: u64 = 100;
    const MAX_BYTES: u64 = 16 * 1024;
    /// Enough to keep every rotated file of this run (about 70), so that every line can be
    /// checked.
    const MAX_FILES: usize = 1_000;
    /// The unprivileged user and group the workers become when the example runs as root.
    const UNPRIVILEGED: u32 = 65_534;
    /// A worker that is not done by then is hung: it is killed and the example fails.
    const DEADLINE: Duration = Duration::from_secs(60);

    pub(crate) fn main() -> ExitCode {
        match run() {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("prefork: {error}");
                ExitCode::FAILURE
            }
        }
    }

    /// `Ok(false)` when a worker failed or the verifier found a defect.
    fn run() -> Result<bool, Box<dyn Error>> {
        // SAFETY: geteuid cannot fail.
        let drop_privileges = unsafe { libc::geteuid() } == 0;
        // A fresh directory, kept afterwards so that you can look at the files.
        let dir = tempfile::Builder::new()
            .prefix("tracing-shared-file-prefork-")
            .tempdir()?
            .keep();
        if drop_privileges {
            // `install -d -g 65534 -m 2770`: the workers' group may create, rename and delete
            // files here (rotation does all three), and new files get the directory's group.
            std::os::unix::fs::chown(&dir, None, Some(UNPRIVILEGED))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2770))?;
        }

        // Set up logging once, before the fork, as a pre-fork server does.
        let log = SharedFile::builder(dir.join("app.log"))
            .max_bytes(MAX_BYTES)
            .max_files(MAX_FILES)
            // Every file this crate creates (lock file, log, archives) is read-write for the
            // group whatever the umask, so that processes of other users in the group can
            // open and rotate them.
            .file_mode(0o660)
            .build()?;
        tracing_subscriber::registry().with(log.layer()).init();
        println!(
            "prefork: {WORKERS} forked workers x {LINES_PER_WORKER} lines, max_bytes {MAX_BYTES}, \
         logging to {}",
            log.path().display()
        );
        if drop_privileges {
            println!("  privileges  running as root: each worker drops to uid/gid {UNPRIVILEGED}");
        } else {
            println!(
                "  privileges  not running as root: skipped the privilege drop (run as root to see it)"
            );
        }

        let parent = WriterId {
            process: 0,
            thread: 0,
        };
        log_records(parent, PARENT_LINES);

        // Fork while this process has a single thread, as pre-fork servers do: a child gets
        // only the thread that forked.
        let mut workers = Workers(Vec::new());
        for process in 1..=WORKERS {
            // SAFETY: the child only logs and ends with `_exit`.
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                return Err(format!("fork: {}", std::io::Error::last_os_error()).into());
            }
            if pid == 0 {
                worker(process, &log, drop_privileges);
            }
            workers.0.push((process, pid));
        }
        let failures = workers.wait_all()?;
        for failure in &failures {
            println!("  FAILED      {failure}");
        }

        let report = (1..=WORKERS)
            .fold(
                Verifier::new(log.path(), MAX_BYTES, MAX_FILES).expect_process(0, 1, PARENT_LINES),
                |verifier, process| verifier.expect_process(process, 1, LINES_PER_WORKER),
            )
            .verify();
        let owners = owners(&report.files)?;
        let owner_list = owners
            .iter()
            .map(|(uid, files)| match uid {
                0 => format!("root {files}"),
                uid => format!("uid {uid} {files}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "  verified    {} of {} lines in {} files (1 live + {} rotated), largest {} bytes",
            report.lines_verified,
            PARENT_LINES + u64::from(WORKERS) * LINES_PER_WORKER,
            report.files.len(),
            report.archives,
            report.largest_file
        );
        println!("  file owners {owner_list}");
        println!("  directory   {}", dir.display());
        if !report.is_ok() {
            println!("FAILED: the verifier found defects:\n{report}");
            return Ok(false);
        }
        // Rotation creates the new live file, so a file owned by the unprivileged user shows
        // that a worker rotated after it dropped its privileges.
        if drop_privileges && !owners.contains_key(&UNPRIVILEGED) {
            println!("FAILED: no worker rotated after dropping its privileges");
            return Ok(false);
        }
        if !failures.is_empty() {
            return Ok(false);
        }
        println!("OK: every line of the parent and of each worker is in the files exactly once.");
        Ok(true)
    }

    /// One forked worker: drops its privileges if asked, logs its records through the
    /// `SharedFile` and subscriber it inherited, and ends with `_exit`, so that nothing of
    /// the parent's (destructors, stdout's buffer) runs twice.
    fn worker(process: u32, log: &SharedFile, drop_privileges: bool) -> ! {
        let exit = |code| {
            // SAFETY: ends this child at once.
            unsafe { libc::_exit(code) }
        };
        // Supplementary groups first, then the group, then the user: once the user is
        // dropped, the others can no longer be changed.
        // SAFETY: plain system calls on this process's own credentials.
        if drop_privileges
            && unsafe {
                libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(UNPRIVILEGED) != 0
                    || libc::setuid(UNPRIVILEGED) != 0
            }
        {
            exit(2);
        }
        log_records(WriterId { process, thread: 0 }, LINES_PER_WORKER);
        // The counters restart at the fork: they are this worker's alone.
        let stats = log.stats();
        let clean = stats.events_written == LINES_PER_WORKER && stats.events_dropped == 0;
        exit(if clean { 0 } else { 3 })
    }

    /// Logs `lines` records, in the form the verifier checks.
    fn log_records(writer: WriterId, lines: u64) {
        for seq in 0..lines {
            tracing::info!(target: "workload", "{}", record(writer, seq));
        }
    }

    /// The forked workers, by number and pid; any still running when this is dropped (an
    /// error, a panic) are killed.
    struct Workers(Vec<(u32, libc::pid_t)>);

    impl Workers {
        /// Waits for every worker; returns what went wrong with each that did not exit with 0.
        /// Fails if one is not done within `DEADLINE`.
        fn wait_all(&mut self) -> Result<Vec<String>, Box<dyn Error>> {
            let deadline = Instant::now() + DEADLINE;
            let mut failures = Vec::new();
            while let Some(&(process, pid)) = self.0.first() {
                let mut status = 0;
                // SAFETY: waits for our own child, without blocking.
                let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                if rc < 0 {
                    return Err(format!("waitpid: {}", std::io::Error::last_os_error()).into());
                }
                if rc == 0 {
                    if Instant::now() > deadline {
                        return Err(
                            format!("worker {process} is not done after {DEADLINE:?}").into()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                self.0.remove(0);
                let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
                match code {
                    Some(0) => {}
                    Some(2) => failures.push(format!("worker {process} could not drop privileges")),
                    Some(3) => failures.push(format!("worker {process} dropped events")),
                    _ => failures.push(format!("worker {process} died: wait status {status:#x}")),
                }
            }
            Ok(failures)
        }
    }

    impl Drop for Workers {
        fn drop(&mut self) {
            for &(_, pid) in &self.0 {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
        }
    }

    /// How many of `files` each user owns, by uid.
    fn owners(files: &[verifier::FileSummary]) -> Result<BTreeMap<u32, usize>, std::io::Error> {
        let mut by_owner = BTreeMap::new();
        for file in files {
            *by_owner
                .entry(std::fs::metadata(&file.path)?.uid())
                .or_insert(0) += 1;
        }
        Ok(by_owner)
    }
}
