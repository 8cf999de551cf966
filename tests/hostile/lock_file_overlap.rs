//! Known limitation: a process that is inside its critical section when the lock file is
//! deleted holds only the old lock, so a process that opens the lock file afterwards does
//! not wait for it; that one write can overlap with the newcomer's. Every later write of
//! the old processes notices the deletion and locks the new file.
//!
//! `a_lock_file_deleted_while_held_lets_one_write_overlap` is ignored: it demonstrates
//! the limitation (see the README's guarantees), not a regression.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common;
use common::children::{self, Fleet, WorkerConfig, is_stopped};
use common::log_files::{KEEP_ALL, archive, wait_for_path};
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::SharedFile;

/// Child side of the writer processes that `Fleet` starts.
#[test]
fn worker_entry() {
    children::worker_main();
}

/// Sends `signal` to every process in `pids`.
fn signal_all(pids: &[libc::pid_t], signal: libc::c_int) {
    for &pid in pids {
        // SAFETY: plain syscall on a child process of this test.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Pauses the writers and waits until they really are paused.
fn stop_all(pids: &[libc::pid_t]) {
    signal_all(pids, libc::SIGSTOP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(|&pid| is_stopped(pid)) {
        assert!(Instant::now() < deadline, "writers did not stop");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Tries to take the flock of `file` without waiting; releases it at once if taken.
fn lock_is_free(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: plain flock calls on a descriptor this test owns.
    unsafe {
        if libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 {
            libc::flock(file.as_raw_fd(), libc::LOCK_UN);
            true
        } else {
            false
        }
    }
}

/// A process started after the lock file was deleted, as a thread so that the test can
/// tell whether it waited: builds its `SharedFile` and logs from `first_seq` on until it
/// rotates. With mutual exclusion it would have to wait for a paused holder.
struct Newcomer {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Newcomer {
    fn start(log: &Path, max_bytes: u64, first_seq: u64) -> Self {
        let newcomer = SharedFile::builder(log)
            .max_bytes(max_bytes)
            .max_files(KEEP_ALL)
            .build()
            .expect("the newcomer builds");
        let writer = WriterId {
            process: 99,
            thread: 0,
        };
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let done = std::sync::Arc::clone(&done);
            std::thread::spawn(move || {
                for seq in first_seq.. {
                    let line = fmt_line(writer, seq);
                    (&newcomer)
                        .write_all(line.as_bytes())
                        .expect("newcomer writes");
                    if newcomer.stats().rotations > 0 {
                        break;
                    }
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        Newcomer { done, thread }
    }

    /// Whether it logged until it rotated within `wait`.
    fn got_in_within(&self, wait: Duration) -> bool {
        let waited = Instant::now();
        while !self.done.load(std::sync::atomic::Ordering::SeqCst) && waited.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.done.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn join(self) {
        self.thread.join().expect("the newcomer thread");
    }
}

/// Known limitation: a flock on a file that is deleted while held excludes nobody who opens
/// the path afterwards, so the holder's one write in flight can overlap with a newcomer's.
/// Every later write of the old processes notices the deletion (an `fstat` per write) and
/// locks the new file. Run with `cargo test -- --ignored` to see it.
#[test]
#[ignore = "documented limitation: one write in flight when the lock file is deleted"]
fn a_lock_file_deleted_while_held_lets_one_write_overlap() {
    const MAX_BYTES: u64 = 4096;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs").join("app.log");
    let lock = dir.path().join("logs").join("app.log.lock");
    let config = WorkerConfig {
        log: log.clone(),
        max_bytes: MAX_BYTES,
        max_files: KEEP_ALL,
        threads: 1,
        // More than they can write before the test ends; they are killed then.
        phases: vec![10_000_000],
    };
    let mut fleet = Fleet::for_entry(&dir.path().join("sync"), &common::entry!(worker_entry));
    fleet.start(0..2, &config);
    wait_for_path(&archive(&log, 1));
    let pids = fleet.pids();
    let mut next_seq = 0;
    let (mut caught, mut let_in) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(5);

    // Often enough to catch a holder after it checked the lock and before it appended.
    while Instant::now() < deadline && caught < 100 {
        // Pause both writers and see whether one of them is inside its critical section.
        let probe = File::open(&lock).expect("open the lock file");
        stop_all(&pids);
        let held = !lock_is_free(&probe);
        // The file the holder (if any) last saw as live.
        let live = File::open(&log);
        let (true, Ok(live)) = (held, live) else {
            signal_all(&pids, libc::SIGCONT);
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        caught += 1;

        // The operator deletes the lock file; a process started now builds its SharedFile
        // and logs until it rotates. With mutual exclusion it would have to wait for the
        // paused holder; it runs in a thread so that the test can tell.
        fs::remove_file(&lock).unwrap();
        let newcomer = Newcomer::start(&log, MAX_BYTES, next_seq);
        next_seq += 1000;
        let got_in = newcomer.got_in_within(Duration::from_millis(500));
        let rotated_len = live.metadata().unwrap().len();
        signal_all(&pids, libc::SIGCONT);
        newcomer.join();
        if !got_in {
            // It waited for the holder: exclusion held.
            continue;
        }
        let_in += 1;
        // Wait until the old lock is released: the holder finished its event.
        let released = Instant::now();
        while !lock_is_free(&probe) {
            assert!(
                released.elapsed() < Duration::from_secs(10),
                "old lock never released"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        // The newcomer rotated the file the holder had open. With exclusion, nobody
        // touches a file after it was rotated away.
        let after = live.metadata().unwrap();
        assert!(
            after.len() == rotated_len && after.nlink() == 1,
            "a writer that was inside its critical section when the lock file \
             was deleted went on after a process that opened the new lock file had rotated \
             the log: the rotated file (inode {}) {} ({rotated_len} -> {} bytes, {} links). \
             Caught {caught} holders, {let_in} newcomers got in without waiting.",
            after.ino(),
            if after.nlink() == 0 {
                "was deleted or renamed over"
            } else {
                "was appended to"
            },
            after.len(),
            after.nlink()
        );
    }
    eprintln!("caught {caught} holders, {let_in} newcomers got in without waiting");
}
