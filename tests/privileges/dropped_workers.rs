//! A root parent forks a worker that drops to an unprivileged user, without exec.
//!
//! - A worker that may not search the log's directory (or one above it) cannot log; each
//!   event is dropped and counted, and the report names what could not be looked up (the
//!   lock file, or the log directory) and what would fix it, rather than a bare
//!   "Permission denied" on the log file.
//! - The README's recipe (`file_mode(0o660)`, a group shared by all, a set-group-ID
//!   directory) lets a worker that forks in turn give its child a lock description: the
//!   grandchild logs every record too, even under umask 077.

use std::path::{Path, PathBuf};

use crate::common;
use crate::common::children::Finished;
use crate::common::forked::{exited_ok, wait_forked};
use crate::common::verifier::{Expect, Verifier};
use crate::common::workload::{WriterId, fmt_line};
use crate::support::{
    BASE_UID, Counts, GROUP, MAX_BYTES, MAX_FILES, Mode, REPORT_PREFIX, Scratch, all_group_shared,
    credentials, modes_and_groups, skipped_without_root,
};
use tracing_shared_file::SharedFile;

const LOG_ENV: &str = "TSF_PRIVILEGES_DROPPED_LOG";
const SCENARIO_ENV: &str = "TSF_PRIVILEGES_DROPPED_SCENARIO";
/// Events each process writes.
const LINES: u64 = 200;
const PARENT: WriterId = WriterId {
    process: 0,
    thread: 0,
};
const WORKER: WriterId = WriterId {
    process: 1,
    thread: 0,
};
const GRANDCHILD: WriterId = WriterId {
    process: 2,
    thread: 0,
};

fn write_line(mut log: &SharedFile, writer: WriterId, seq: u64) -> std::io::Result<()> {
    use std::io::Write;
    log.write_all(fmt_line(writer, seq).as_bytes())
}

/// Writes `text` to stdout in one `write(2)`: a forked child must not go through the
/// buffer it inherited, which `_exit` would not flush anyway.
fn write_stdout(text: &str) {
    // SAFETY: writes from a live buffer of that length.
    unsafe { libc::write(1, text.as_ptr().cast(), text.len()) };
}

fn exit(code: i32) -> ! {
    // SAFETY: ends a forked child without running its parent's destructors.
    unsafe { libc::_exit(code) }
}

/// Drops this process to uid `BASE_UID + 1` and the group `group` alone; exits with 2 if
/// it cannot.
fn drop_privileges(group: u32) {
    // SAFETY: plain syscalls on this process's own credentials, in the order that leaves
    // no root group behind: supplementary groups, group, then user.
    let dropped = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(group) == 0
            && libc::setuid(BASE_UID + 1) == 0
    };
    if !dropped {
        exit(2);
    }
}

/// The root parent. `unsearchable`: builds, forks a worker (before it ever logs, so that
/// the worker's first write looks the paths up) that drops to a user outside the
/// directory's group and tries `LINES` events, printing each distinct error; then logs
/// `LINES` events itself. `grandchild` (under umask 077, with `file_mode(0o660)`): the
/// worker keeps the shared group, logs, forks a grandchild, and all three log `LINES`
/// events at once.
#[test]
fn dropping_parent_entry() {
    let (Some(path), Ok(scenario)) = (std::env::var_os(LOG_ENV), std::env::var(SCENARIO_ENV))
    else {
        return;
    };
    let grandchild = match scenario.as_str() {
        "unsearchable" => false,
        "grandchild" => true,
        _ => panic!("unknown scenario {scenario}"),
    };
    if grandchild {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(0o077) };
    }
    let log = SharedFile::builder(PathBuf::from(path))
        .max_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        .file_mode(0o660)
        .build()
        .expect("the root parent builds");
    if grandchild {
        write_line(&log, PARENT, 0).expect("the parent logs before the fork");
    }
    // SAFETY: the child drops its privileges, logs, maybe forks, and `_exit`s.
    let worker = unsafe { libc::fork() };
    assert!(worker >= 0, "fork: {}", std::io::Error::last_os_error());
    if worker == 0 {
        if grandchild {
            run_worker_and_grandchild(&log);
        }
        drop_privileges(BASE_UID + 1);
        let mut errors = std::collections::BTreeSet::new();
        for seq in 0..LINES {
            if let Err(error) = write_line(&log, WORKER, seq) {
                errors.insert(format!("{:?} {error}", error.kind()));
            }
        }
        let mut out = format!(
            "\nWORKER {} {}\n",
            credentials(),
            Counts::of(&log.stats()).to_fields()
        );
        for error in errors {
            out.push_str(&format!("\nERROR {error}\n"));
        }
        write_stdout(&out);
        exit(0);
    }
    let first = u64::from(grandchild);
    let logged = (first..LINES).all(|seq| write_line(&log, PARENT, seq).is_ok());
    let worker_ok = wait_forked(worker).is_some_and(exited_ok);
    println!("\nPARENT {}", Counts::of(&log.stats()).to_fields());
    assert!(logged, "the parent could not log");
    assert!(
        worker_ok,
        "the worker failed (exit 2: cannot drop privileges, 3: the worker lost events, 4: \
         the grandchild, 5: both)"
    );
}

/// The `grandchild` scenario's worker: drops to its user, keeping the shared group, logs
/// one event, forks the grandchild, and both log the rest.
fn run_worker_and_grandchild(log: &SharedFile) -> ! {
    drop_privileges(GROUP);
    // The worker uses the lock unprivileged before it forks.
    let first = write_line(log, WORKER, 0).is_ok();
    // SAFETY: the grandchild only logs, prints and `_exit`s.
    let grandchild = unsafe { libc::fork() };
    if grandchild == 0 {
        let ok = (0..LINES).all(|seq| write_line(log, GRANDCHILD, seq).is_ok());
        write_stdout(&format!(
            "\nGRANDCHILD {} {}\n",
            credentials(),
            Counts::of(&log.stats()).to_fields()
        ));
        exit(if ok { 0 } else { 1 });
    }
    let worker_ok =
        first && grandchild > 0 && (1..LINES).all(|seq| write_line(log, WORKER, seq).is_ok());
    let grandchild_ok = wait_forked(grandchild).is_some_and(exited_ok);
    write_stdout(&format!(
        "\nWORKER {} {}\n",
        credentials(),
        Counts::of(&log.stats()).to_fields()
    ));
    exit(match (worker_ok, grandchild_ok) {
        (true, true) => 0,
        (false, true) => 3,
        (true, false) => 4,
        (false, false) => 5,
    })
}

fn run_parent(scratch: &Scratch, log: &Path, scenario: &str) -> Finished {
    let exe = std::env::current_exe().unwrap();
    let finished = scratch
        .spawn(
            &exe,
            &common::entry!(dropping_parent_entry),
            scenario,
            |command| {
                command.env(LOG_ENV, log).env(SCENARIO_ENV, scenario);
            },
        )
        .finish();
    finished.assert_exited_ok();
    finished
}

/// What a worker that may not search `closed` (the log's directory or one above it,
/// `0750 root:root`) is told about the log at `log`: the lookup that failed, and the fix.
fn unsearchable(scratch: &Scratch, log: &Path, what: &str, looked_up: &Path) {
    let finished = run_parent(scratch, log, "unsearchable");
    let cause = format!(
        "cannot look up {what} `{}`: Permission denied (os error 13); every process that \
         shares the log must be able to search its directory and the directories above it \
         (a group they share, mode 2770 say)",
        looked_up.display()
    );
    assert_eq!(
        finished.line("ERROR"),
        format!("PermissionDenied {cause}"),
        "every failed write returns this error"
    );
    assert_eq!(
        finished.reports(),
        vec![format!(
            "{REPORT_PREFIX} cannot write to log file `{}`: {cause}",
            log.display()
        )],
        "one report (rate-limited), naming what could not be looked up and what would fix it"
    );
    let worker = finished.fields("WORKER");
    assert_eq!(
        (&*worker["uid"], &*worker["gid"], &*worker["groups"]),
        (
            &*(BASE_UID + 1).to_string(),
            &*(BASE_UID + 1).to_string(),
            "0"
        ),
        "the worker dropped its privileges"
    );
    assert_eq!(
        Counts::from_fields(&worker),
        Counts {
            written: 0,
            dropped: LINES,
            write_errors: LINES,
            rotations: 0,
            rotation_errors: 0,
        },
        "every event of the worker is counted as dropped"
    );
    Counts::from_fields(&finished.fields("PARENT")).assert_clean("the parent", LINES);
    let report = Verifier::new(log, MAX_BYTES, MAX_FILES)
        .expect(PARENT, Expect::Exactly(LINES))
        .verify();
    report.assert_ok();
}

/// Makes `dir` (existing) `0750 root:root`: the worker, outside group root, may not
/// search it.
fn close_to_others(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(dir, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).unwrap();
}

#[test]
fn a_worker_that_cannot_search_the_log_directory_is_told_to_make_it_searchable() {
    if skipped_without_root() {
        return;
    }
    let scratch = Scratch::new(Some(0), 0o750);
    close_to_others(&scratch.logs);
    unsearchable(&scratch, &scratch.log(), "lock file", &scratch.lock());
}

#[test]
fn a_worker_that_cannot_search_a_directory_above_the_log_is_told_to_make_it_searchable() {
    if skipped_without_root() {
        return;
    }
    let scratch = Scratch::new(Some(0), 0o750);
    close_to_others(&scratch.logs);
    let inner = scratch.logs.join("inner");
    std::fs::create_dir(&inner).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    unsearchable(&scratch, &inner.join("app.log"), "log directory", &inner);
}

/// The documented recipe for a worker that forks in turn: its fork handler opens the
/// grandchild's lock description with the worker's rights, which `file_mode(0o660)` and
/// the shared group give (under umask 077 the lock file would otherwise be `0600 root`).
#[test]
fn with_file_mode_0o660_and_a_shared_group_a_grandchild_of_a_dropped_worker_logs_every_record() {
    if skipped_without_root() {
        return;
    }
    let scratch = Scratch::new(Some(GROUP), 0o2770);
    let finished = run_parent(&scratch, &scratch.log(), "grandchild");
    assert_eq!(finished.reports(), Vec::<String>::new(), "nothing failed");
    let mut rotations = 0;
    for (tag, group) in [
        ("PARENT", None),
        ("WORKER", Some(GROUP)),
        ("GRANDCHILD", Some(GROUP)),
    ] {
        let fields = finished.fields(tag);
        if let Some(group) = group {
            assert_eq!(
                (&*fields["uid"], &*fields["gid"], &*fields["groups"]),
                (&*(BASE_UID + 1).to_string(), &*group.to_string(), "0"),
                "{tag} runs unprivileged"
            );
        }
        let counts = Counts::from_fields(&fields);
        counts.assert_clean(tag, LINES);
        rotations += counts.rotations;
    }
    let report = Verifier::new(scratch.log(), MAX_BYTES, MAX_FILES)
        .expect(PARENT, Expect::Exactly(LINES))
        .expect(WORKER, Expect::Exactly(LINES))
        .expect(GRANDCHILD, Expect::Exactly(LINES))
        .verify();
    report.assert_ok();
    assert_eq!(rotations, report.archives as u64, "{report}");
    let files = scratch.log_files(report.archives);
    assert_eq!(
        modes_and_groups(&files),
        all_group_shared(&files),
        "(mode, group) of every file"
    );
    assert_eq!(Mode::of(&files["app.log.lock"]), Mode(0o660));
}
