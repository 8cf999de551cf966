//! A root parent with `file_mode(0o660)` forks workers that drop to other users (uid
//! 5001..=5004, group 4242) without exec, as pre-fork servers do. They log with rotation;
//! every line is there exactly once, no file is over `max_bytes`, and each rotation was
//! done, and its new file made (mode 0660, group 4242), by the process that counted it.
//! Four scenarios: the parent logs before the fork; it never does; it logs from another
//! thread while it forks; the lock file is one that only root may open (made `0600`
//! before the build), so the workers lock only through the description the fork handler
//! gave them.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::verifier::{Expect, Verifier};
use crate::common::workload::WriterId;
use crate::support::{
    BASE_UID, Counts, DEADLINE, GROUP, MAX_BYTES, MAX_FILES, Mode, Scratch, all_group_shared,
    credentials, log_files_by_owner, log_records, modes_and_groups, skipped_without_root,
};
use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

const FORK_LOGS_ENV: &str = "TSF_PRIVILEGES_FORK_LOGS";
const FORK_SCENARIO_ENV: &str = "TSF_PRIVILEGES_FORK_SCENARIO";
const WORKERS: u32 = 4;
const WORKER_LINES: u64 = 500;
/// What the parent's main thread logs before the fork (in some scenarios) and while the
/// workers log (in all).
const PARENT_LINES: u64 = 100;
/// What the parent's logging thread has logged at least before the first fork.
const HEAD_START: u64 = 20;
const PARENT_MAIN: WriterId = WriterId {
    process: 0,
    thread: 0,
};
const PARENT_THREAD: WriterId = WriterId {
    process: 0,
    thread: 1,
};

/// When the root parent logs, besides alongside its workers after the forks; and in
/// the last one, a lock file that only root may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    ParentLogsBeforeTheFork,
    ParentNeverLogsBeforeTheFork,
    ParentLogsFromAnotherThreadDuringTheForks,
    /// The lock file existed before the build, `0600 root` (`file_mode` leaves an
    /// existing file as it is): the workers can no longer open it, and lock through the
    /// description the fork handed them. The parent logs before the fork.
    LockFileOnlyRootMayOpen,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::ParentLogsBeforeTheFork,
        Scenario::ParentNeverLogsBeforeTheFork,
        Scenario::ParentLogsFromAnotherThreadDuringTheForks,
        Scenario::LockFileOnlyRootMayOpen,
    ];

    fn parent_logs_before_the_fork(self) -> bool {
        matches!(
            self,
            Scenario::ParentLogsBeforeTheFork | Scenario::LockFileOnlyRootMayOpen
        )
    }

    fn name(self) -> String {
        format!("{self:?}")
    }

    fn from_name(name: &str) -> Self {
        *Self::ALL
            .iter()
            .find(|scenario| scenario.name() == name)
            .unwrap_or_else(|| panic!("unknown scenario {name}"))
    }
}

/// A thread of the parent that logs until told to stop, and says how much it logged.
struct BackgroundLogger {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl BackgroundLogger {
    /// Starts the thread, and returns once it has logged `HEAD_START` records.
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let logged = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, logged) = (Arc::clone(&stop), Arc::clone(&logged));
            std::thread::spawn(move || {
                let mut seq = 0;
                while !stop.load(Ordering::Acquire) {
                    log_records(PARENT_THREAD, seq..seq + 1);
                    seq += 1;
                    logged.store(seq, Ordering::Release);
                }
                seq
            })
        };
        let deadline = Instant::now() + DEADLINE;
        while logged.load(Ordering::Acquire) < HEAD_START {
            assert!(
                Instant::now() < deadline,
                "the logging thread never started"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        BackgroundLogger { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.thread.join().expect("the logging thread panicked")
    }
}

/// The forked workers; any still running when this is dropped are killed.
struct ForkedWorkers(Vec<(u32, libc::pid_t)>);

impl ForkedWorkers {
    /// Waits for every worker, and fails if one did not exit with 0 or hung.
    fn wait_all(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        let mut failures = Vec::new();
        while let Some(&(process, pid)) = self.0.first() {
            let mut status = 0;
            // SAFETY: waitpid on our own child.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if rc == pid {
                self.0.remove(0);
                if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                    failures.push(format!(
                        "worker {process} failed: status {status:#x} (exit 1: its logging \
                         panicked, 2: it could not drop its privileges, 3: its parent was \
                         gone, 4: it could not read the start signal)"
                    ));
                }
                continue;
            }
            assert_eq!(rc, 0, "waitpid: {}", std::io::Error::last_os_error());
            assert!(Instant::now() < deadline, "worker {process} hung");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

impl Drop for ForkedWorkers {
    fn drop(&mut self) {
        for &(_, pid) in &self.0 {
            // SAFETY: kill and reap our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Writes `text` to stdout in one `write(2)`: a forked child must not go through the
/// buffer it inherited, which `_exit` would not flush anyway.
fn write_stdout(text: &str) {
    // SAFETY: writes from a live buffer of that length.
    unsafe { libc::write(1, text.as_ptr().cast(), text.len()) };
}

/// The forked worker `process`: drops to its user and the shared group, waits for the
/// start (the end of `go_read`), logs `WORKER_LINES` records, and prints its counters.
fn run_worker(process: u32, log: &SharedFile, go_read: i32, go_write: i32, parent: i32) -> ! {
    let exit = |code| {
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) }
    };
    let uid = BASE_UID + process;
    // SAFETY: plain syscalls on this process's own descriptors and credentials, in the
    // order that leaves no root group behind: supplementary groups, group, then user.
    unsafe {
        libc::close(go_write);
        let dropped = libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(GROUP) == 0
            && libc::setuid(uid) == 0;
        if !dropped {
            exit(2);
        }
        // Dies with its parent, so that a killed test leaves no worker behind. Set after
        // the drop, which clears it.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
            exit(3);
        }
    }
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into `byte`.
        let n = unsafe { libc::read(go_read, (&mut byte as *mut u8).cast(), 1) };
        if n >= 0 {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            exit(4);
        }
    }
    let writer = WriterId { process, thread: 0 };
    let logged = std::panic::catch_unwind(|| log_records(writer, 0..WORKER_LINES)).is_ok();
    write_stdout(&format!(
        "\nWORKER{process} {} {}\n",
        credentials(),
        Counts::of(&log.stats()).to_fields()
    ));
    exit(if logged { 0 } else { 1 })
}

/// The root parent: builds with `file_mode(0o660)`, logs as its scenario says, forks the
/// workers, then logs alongside them and prints what it logged and its counters.
#[test]
fn prefork_parent_entry() {
    let (Some(logs), Ok(scenario)) = (
        std::env::var_os(FORK_LOGS_ENV),
        std::env::var(FORK_SCENARIO_ENV),
    ) else {
        return;
    };
    let scenario = Scenario::from_name(&scenario);
    let log = SharedFile::builder(Path::new(&logs).join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        .file_mode(0o660)
        .build()
        .expect("the root parent builds");
    tracing_subscriber::registry().with(log.layer()).init();

    let mut main_lines = 0;
    if scenario.parent_logs_before_the_fork() {
        log_records(PARENT_MAIN, 0..PARENT_LINES);
        main_lines = PARENT_LINES;
    }
    let background = (scenario == Scenario::ParentLogsFromAnotherThreadDuringTheForks)
        .then(BackgroundLogger::start);
    // The workers start together, when the last write end of this pipe closes.
    let mut go = [0; 2];
    // SAFETY: `pipe` fills the two descriptors.
    assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
    let [go_read, go_write] = go;
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    let mut workers = ForkedWorkers(Vec::new());
    for process in 1..=WORKERS {
        // SAFETY: the child only drops its privileges, logs, and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            run_worker(process, &log, go_read, go_write, parent);
        }
        workers.0.push((process, pid));
    }
    let thread_lines = background.map_or(0, BackgroundLogger::stop);
    // SAFETY: closing our own pipe descriptors starts the workers.
    unsafe {
        libc::close(go_write);
        libc::close(go_read);
    }
    log_records(PARENT_MAIN, main_lines..main_lines + PARENT_LINES);
    main_lines += PARENT_LINES;
    workers.wait_all();
    println!(
        "\nPARENT main={main_lines} thread={thread_lines} {}",
        Counts::of(&log.stats()).to_fields()
    );
}

fn forked_workers_that_drop_privileges_log_and_rotate(scenario: Scenario) {
    if skipped_without_root() {
        return;
    }
    let scratch = Scratch::new(Some(GROUP), 0o2770);
    if scenario == Scenario::LockFileOnlyRootMayOpen {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(scratch.lock())
            .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let parent = scratch.spawn(
        &exe,
        &common::entry!(prefork_parent_entry),
        "parent",
        |command| {
            command
                .env(FORK_LOGS_ENV, &scratch.logs)
                .env(FORK_SCENARIO_ENV, scenario.name());
        },
    );
    let finished = parent.finish();
    finished.assert_exited_ok();
    assert_eq!(finished.reports(), Vec::<&str>::new(), "nothing failed");

    let parent_fields = finished.fields("PARENT");
    let main_lines: u64 = parent_fields["main"].parse().unwrap();
    let thread_lines: u64 = parent_fields["thread"].parse().unwrap();
    let expected_main = match scenario.parent_logs_before_the_fork() {
        true => 2 * PARENT_LINES,
        false => PARENT_LINES,
    };
    assert_eq!(main_lines, expected_main);
    if scenario == Scenario::ParentLogsFromAnotherThreadDuringTheForks {
        assert!(thread_lines >= HEAD_START, "{thread_lines}");
    } else {
        assert_eq!(thread_lines, 0);
    }
    let parent_counts = Counts::from_fields(&parent_fields);
    parent_counts.assert_clean("the parent", main_lines + thread_lines);

    // Rotations by user: root is the parent.
    let mut rotations = BTreeMap::from([(0, parent_counts.rotations)]);
    let mut verifier = Verifier::new(scratch.log(), MAX_BYTES, MAX_FILES)
        .expect(PARENT_MAIN, Expect::Exactly(main_lines));
    if thread_lines > 0 {
        verifier = verifier.expect(PARENT_THREAD, Expect::Exactly(thread_lines));
    }
    for process in 1..=WORKERS {
        let uid = BASE_UID + process;
        let fields = finished.fields(&format!("WORKER{process}"));
        assert_eq!(
            (&*fields["uid"], &*fields["gid"], &*fields["groups"]),
            (&*uid.to_string(), &*GROUP.to_string(), "0"),
            "worker {process} dropped its privileges"
        );
        let counts = Counts::from_fields(&fields);
        counts.assert_clean(&format!("worker {process}"), WORKER_LINES);
        rotations.insert(uid, counts.rotations);
        verifier = verifier.expect(
            WriterId { process, thread: 0 },
            Expect::Exactly(WORKER_LINES),
        );
    }
    let report = verifier.verify();
    report.assert_ok();
    assert_eq!(
        rotations.values().sum::<u64>(),
        report.archives as u64,
        "each rotation made one archive; rotations by uid: {rotations:?}"
    );
    assert!(
        rotations.iter().any(|(&uid, &n)| uid != 0 && n > 0),
        "the workers rotated: {rotations:?}\n{report}"
    );

    assert_modes_and_owners(&scratch, scenario, report.archives, &rotations);
}

/// Every file is shared with the group (the lock file too, unless root made it first,
/// `0600`); root made the lock file; the parent made the first log file, and each
/// rotation a new one, as its rotator.
fn assert_modes_and_owners(
    scratch: &Scratch,
    scenario: Scenario,
    archives: usize,
    rotations: &BTreeMap<u32, u64>,
) {
    let files = scratch.log_files(archives);
    let mut expected = all_group_shared(&files);
    if scenario == Scenario::LockFileOnlyRootMayOpen {
        // Its group is the directory's, but the group may not even read it.
        expected.insert("app.log.lock".to_string(), (Mode(0o600), GROUP));
    }
    assert_eq!(
        modes_and_groups(&files),
        expected,
        "(mode, group) of every file"
    );
    assert_eq!(files["app.log.lock"].uid(), 0, "root made the lock file");
    // The parent made the first log file, and each rotation a new one, as its rotator.
    let mut expected_owners = rotations.clone();
    *expected_owners.get_mut(&0).unwrap() += 1;
    expected_owners.retain(|_, files| *files > 0);
    assert_eq!(
        log_files_by_owner(&files),
        expected_owners,
        "log files by owner"
    );
}

#[test]
fn workers_forked_after_the_parent_logged_drop_privileges_and_still_log_and_rotate() {
    forked_workers_that_drop_privileges_log_and_rotate(Scenario::ParentLogsBeforeTheFork);
}

#[test]
fn workers_forked_before_the_parent_ever_logged_drop_privileges_and_still_log_and_rotate() {
    forked_workers_that_drop_privileges_log_and_rotate(Scenario::ParentNeverLogsBeforeTheFork);
}

#[test]
fn workers_forked_while_another_parent_thread_logs_drop_privileges_and_still_log_and_rotate() {
    forked_workers_that_drop_privileges_log_and_rotate(
        Scenario::ParentLogsFromAnotherThreadDuringTheForks,
    );
}

#[test]
fn workers_that_cannot_open_the_lock_file_lock_through_the_description_the_fork_gave_them() {
    forked_workers_that_drop_privileges_log_and_rotate(Scenario::LockFileOnlyRootMayOpen);
}
