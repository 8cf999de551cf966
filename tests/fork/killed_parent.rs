//! A forked child must not keep its parent's lock alive: the kernel drops a flock only
//! when the last descriptor of its open file description closes, so a child that kept
//! the inherited lock descriptor would hold a killed parent's lock for as long as it
//! lives. Shown with an idle child and a parent killed in the middle of a huge append,
//! the child forked with descriptors free and with none free (when the fork handler can
//! open neither a fresh lock description nor a placeholder): the survivor's next write
//! goes through at once, and the dead parent's partial event is cut off.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing_shared_file::SharedFile;

use super::support::{limit_descriptors_to_those_open, restore_descriptor_limit, start_scenario};
use crate::common;

const PARENT_ENV: &str = "TSF_FORK_LOCK_PARENT";
/// The killed parent's event: large enough that the kernel copies it page by page, so a
/// kill lands in the middle of the append.
const BIG_EVENT: usize = 256 << 20;
/// How long the idle child lives unless killed.
const IDLE_CHILD_LIFE: Duration = Duration::from_secs(30);
/// Any wait for the parent longer than this is a hang.
const DEADLINE: Duration = Duration::from_secs(60);
const BEFORE: &[u8] = b"written before the parent was killed\n";
const AFTER: &[u8] = b"written by the survivor\n";

/// When the parent forks its idle child.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ForkedAt {
    /// With descriptors free: the fork handler gives the child a fresh lock description.
    DescriptorsFree,
    /// With no descriptor free: the child must close the inherited description anyway.
    DescriptorLimit,
}

/// Process P: builds a `SharedFile`, forks an idle child C (its pid goes to
/// `<dir>/idle_child.pid`), then appends one huge event, announced by `<dir>/writing`.
/// The test kills P in the middle of that append. The variable is `<free|limit>:<dir>`:
/// with `limit`, P forks C with no descriptor free.
#[test]
fn big_writer_parent_entry() {
    let Ok(spec) = std::env::var(PARENT_ENV) else {
        return;
    };
    let (forked_at, dir) = spec.split_once(':').unwrap();
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(1 << 40)
        .build()
        .unwrap();
    let old = (forked_at == "limit").then(limit_descriptors_to_those_open);
    // SAFETY: the child only sleeps and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The idle child: it never logs, and must outlive P.
        std::thread::sleep(IDLE_CHILD_LIFE);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    if let Some(old) = &old {
        restore_descriptor_limit(old);
    }
    assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
    std::fs::write(dir.join("idle_child.pid"), pid.to_string()).unwrap();
    let mut event = vec![b'x'; BIG_EVENT];
    *event.last_mut().unwrap() = b'\n';
    std::fs::write(dir.join("writing"), b"").unwrap();
    let _ = (&log).write_all(&event);
}

#[test]
fn an_idle_forked_child_does_not_keep_a_killed_parents_lock() {
    an_idle_child_does_not_keep_a_killed_parents_lock(ForkedAt::DescriptorsFree);
}

/// Before the fix, a child forked with no descriptor free kept the inherited lock
/// description (and so a killed parent's lock) for as long as it lived.
#[test]
fn an_idle_child_forked_at_the_descriptor_limit_does_not_keep_a_killed_parents_lock() {
    an_idle_child_does_not_keep_a_killed_parents_lock(ForkedAt::DescriptorLimit);
}

fn an_idle_child_does_not_keep_a_killed_parents_lock(forked_at: ForkedAt) {
    // A kill can land after the append finished; try again then (the test needs P to die
    // holding the lock).
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let survivor = SharedFile::builder(&path)
            .max_bytes(1 << 40)
            // The repair it does is expected: keep its notice off the test's output.
            .on_error(|_| {})
            .build()
            .unwrap();
        (&survivor).write_all(BEFORE).unwrap();
        let Some(killed) = kill_parent_mid_append(dir.path(), forked_at) else {
            continue;
        };
        the_survivor_writes_at_once(&survivor, &killed, dir.path(), forked_at);
        return;
    }
    panic!(
        "every kill landed after the append completed; the dead holder's lock was never exercised"
    );
}

/// Kills the idle child when dropped (it is P's child, so this test cannot wait for it).
struct IdleChild(libc::pid_t);

impl Drop for IdleChild {
    fn drop(&mut self) {
        // SAFETY: a plain kill of the process the test's child forked.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// The parent P killed in the middle of its append, and its idle child.
struct Killed {
    idle_child: IdleChild,
    died: Instant,
    /// The log's length when P died.
    at_death: u64,
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Starts P, waits until its append is under way, and kills it. `None` if the kill
/// landed after the append completed.
fn kill_parent_mid_append(dir: &Path, forked_at: ForkedAt) -> Option<Killed> {
    let path = dir.join("app.log");
    let out = tempfile::tempdir().unwrap();
    let mode = match forked_at {
        ForkedAt::DescriptorsFree => "free",
        ForkedAt::DescriptorLimit => "limit",
    };
    let spec = format!("{mode}:{}", dir.display());
    let entry = common::entry!(big_writer_parent_entry);
    let mut parent = start_scenario(&entry, PARENT_ENV, &spec, out.path()).with_deadline(DEADLINE);
    parent.wait_for_file(&dir.join("writing"));
    let idle_child = IdleChild(
        std::fs::read_to_string(dir.join("idle_child.pid"))
            .unwrap()
            .parse()
            .unwrap(),
    );
    let deadline = Instant::now() + DEADLINE;
    while file_len(&path) <= BEFORE.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "the parent's append never started"
        );
        std::hint::spin_loop();
    }
    parent.kill();
    let died = Instant::now();
    let at_death = file_len(&path);
    (at_death < (BEFORE.len() + BIG_EVENT) as u64).then_some(Killed {
        idle_child,
        died,
        at_death,
    })
}

/// The survivor's write, on a helper thread so that the test can time it, must go
/// through within a second of P's death, and the file then holds the survivor's lines
/// only: P's partial event cut off.
fn the_survivor_writes_at_once(
    survivor: &SharedFile,
    killed: &Killed,
    dir: &Path,
    forked_at: ForkedAt,
) {
    let lock_file = dir.join("app.log.lock");
    let (tx, rx) = mpsc::channel();
    {
        let (survivor, died) = (survivor.clone(), killed.died);
        std::thread::spawn(move || {
            let result = (&survivor).write_all(AFTER);
            let _ = tx.send((result, died.elapsed()));
        });
    }
    let Ok((result, took)) = rx.recv_timeout(Duration::from_secs(1)) else {
        let held_by_child = descriptors_of(killed.idle_child.0, &lock_file);
        // Killing the idle child frees the lock; then the write goes through.
        // SAFETY: a plain kill of the process the test's child forked.
        unsafe { libc::kill(killed.idle_child.0, libc::SIGKILL) };
        let freed = Instant::now();
        let released = rx.recv_timeout(Duration::from_secs(10)).is_ok();
        panic!(
            "the survivor's write was still blocked 1 s after the lock holder died: the idle \
             forked child kept the dead parent's lock (forked with {}; its lock file \
             descriptors: {held_by_child:?}); {}",
            match forked_at {
                ForkedAt::DescriptorsFree => "descriptors free",
                ForkedAt::DescriptorLimit => "no descriptor free",
            },
            if released {
                format!(
                    "it went through {:?} after the idle child was killed",
                    freed.elapsed()
                )
            } else {
                "it was still blocked 10 s after the idle child was killed".to_string()
            }
        );
    };
    result.unwrap();
    assert!(
        took < Duration::from_secs(1),
        "the survivor's write took {took:?} after the lock holder died"
    );
    if forked_at == ForkedAt::DescriptorLimit {
        // The child really went without a lock description: it was forked at the limit.
        assert_eq!(
            descriptors_of(killed.idle_child.0, &lock_file).unwrap(),
            Vec::<String>::new(),
            "the idle child holds a descriptor of the lock file"
        );
    }
    let content = std::fs::read(dir.join("app.log")).unwrap();
    // Compared without printing: the content may hold megabytes of partial event.
    assert!(
        content == [BEFORE, AFTER].concat(),
        "the partial event ({} bytes) must be cut off and the survivor's line appended \
         whole; the file holds {} bytes",
        killed.at_death - BEFORE.len() as u64,
        content.len()
    );
}

/// The descriptors of process `pid` that name `file`.
fn descriptors_of(pid: libc::pid_t, file: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            (std::fs::read_link(entry.path()).ok()? == file)
                .then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect())
}
