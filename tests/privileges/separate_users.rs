//! Unprivileged processes started on their own: two users sharing group 4242
//! both log every line and both rotate; and processes that the modes do not let in are
//! told which file and why (a user outside the group at build time, a lock file replaced
//! by one the process cannot open while it logs, a directory it may not write when it must
//! rotate), with the events counted as dropped (or appended anyway, for a rotation), no
//! panic and no hang.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::common;
use crate::common::backoff;
use crate::common::children::RunningChild;
use crate::common::verifier::{Expect, Verifier};
use crate::common::workload::{WriterId, fmt_line, wait_for_file};
use crate::support::{
    BASE_UID, Counts, CountsOf, GROUP, MAX_BYTES, MAX_FILES, Mode, REPORT_PREFIX, Scratch,
    all_group_shared, credentials, log_files_by_owner, log_records, modes_and_groups,
    skipped_without_root, touch,
};
use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

const ROLE_ENV: &str = "TSF_PRIVILEGES_ROLE";
const LOG_ENV: &str = "TSF_PRIVILEGES_LOG";
const SYNC_ENV: &str = "TSF_PRIVILEGES_SYNC";
const PROCESS_ENV: &str = "TSF_PRIVILEGES_PROCESS";
/// Records each of the two users logs.
const SHARED_LINES: u64 = 1_000;
/// Records the first user logs before another user tries the files.
const CREATED_LINES: u64 = 20;
/// Records logged before the lock file is replaced, and after.
const BEFORE: u64 = 20;
const DURING: u64 = 100;

/// Records logged, and the size limit, where rotation is denied.
const DENIED_LINES: u64 = 30;
const DENIED_MAX_BYTES: u64 = 1024;

/// Starts `unprivileged_entry` as `uid` and `gid` with no supplementary groups (the
/// standard library drops them when a root parent sets the user), as `role`, under umask
/// 022 (so that files made without `file_mode` come out 0644).
fn spawn_unprivileged(
    scratch: &Scratch,
    role: &str,
    process: u32,
    uid: u32,
    gid: u32,
) -> RunningChild {
    let exe = scratch.test_binary();
    scratch.spawn(
        &exe,
        &common::entry!(unprivileged_entry),
        &format!("{role}.{process}"),
        |command| {
            command
                .uid(uid)
                .gid(gid)
                .env(ROLE_ENV, role)
                .env(LOG_ENV, scratch.log())
                .env(SYNC_ENV, &scratch.sync)
                .env(PROCESS_ENV, process.to_string());
            // SAFETY: umask is async-signal-safe and cannot fail.
            unsafe {
                command.pre_exec(|| {
                    libc::umask(0o022);
                    Ok(())
                });
            }
        },
    )
}

/// Child side: one unprivileged process, doing what `TSF_PRIVILEGES_ROLE` says.
#[test]
fn unprivileged_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var_os(LOG_ENV).unwrap());
    let sync = PathBuf::from(std::env::var_os(SYNC_ENV).unwrap());
    let process: u32 = std::env::var(PROCESS_ENV).unwrap().parse().unwrap();
    println!("\nCREDENTIALS {}", credentials());
    let write = |mut log: &SharedFile, writer: WriterId, seq: u64| {
        log.write_all(fmt_line(writer, seq).as_bytes())
    };
    match role.as_str() {
        // Shares the log with another user of the group, rotating.
        "share" => {
            let log = SharedFile::builder(&path)
                .max_bytes(MAX_BYTES)
                .max_files(MAX_FILES)
                .file_mode(0o660)
                .build()
                .expect("build");
            tracing_subscriber::registry().with(log.layer()).init();
            touch(&sync.join(format!("ready.{process}")));
            wait_for_file(&sync.join("go"));
            log_records(WriterId { process, thread: 0 }, 0..SHARED_LINES);
            println!("\nSTATS {}", Counts::of(&log.stats()).to_fields());
        }
        // Creates the files without `file_mode`, and logs a little.
        "create" => {
            let log = SharedFile::builder(&path).build().expect("build");
            for seq in 0..CREATED_LINES {
                write(&log, WriterId { process, thread: 0 }, seq).expect("write");
            }
            println!("\nSTATS {}", Counts::of(&log.stats()).to_fields());
        }
        // Only builds, and says how that went.
        "build" => match SharedFile::builder(&path).build() {
            Ok(_) => println!("\nRESULT ok"),
            Err(error) => {
                println!("\nKIND {:?}", error.kind());
                println!("\nPATH {}", error.path().display());
                println!("\nMESSAGE {error}");
            }
        },
        // Logs past max_bytes in a directory it may not write, so it cannot rotate.
        "rotate-denied" => {
            let log = SharedFile::builder(&path)
                .max_bytes(DENIED_MAX_BYTES)
                .build()
                .expect("build");
            let started = std::time::Instant::now();
            for seq in 0..DENIED_LINES {
                write(&log, WriterId { process, thread: 0 }, seq).expect("write");
            }
            println!("\nELAPSED_US {}", started.elapsed().as_micros());
            println!("\nSTATS {}", Counts::of(&log.stats()).to_fields());
        }
        // Logs, waits while the test replaces the lock file, and logs again.
        "lose-lock" => {
            let log = SharedFile::builder(&path).build().expect("build");
            for seq in 0..BEFORE {
                write(&log, WriterId { process, thread: 0 }, seq).expect("write before");
            }
            touch(&sync.join("written"));
            wait_for_file(&sync.join("replaced"));
            let mut denied = 0;
            let mut other = Vec::new();
            for seq in 0..DURING {
                match write(&log, WriterId { process, thread: 1 }, seq) {
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => denied += 1,
                    result => other.push(format!("{result:?}")),
                }
            }
            println!("\nDURING denied={denied} other={}", other.len());
            println!("\nOTHER {other:?}");
            println!("\nSTATS {}", Counts::of(&log.stats()).to_fields());
        }
        _ => panic!("unknown role {role}"),
    }
}

#[test]
fn two_users_sharing_a_group_both_log_every_record_and_both_rotate() {
    if skipped_without_root() {
        return;
    }
    let scratch = Scratch::new(Some(GROUP), 0o2770);
    let processes = [1, 2];
    let mut children: Vec<RunningChild> = processes
        .iter()
        .map(|&process| spawn_unprivileged(&scratch, "share", process, BASE_UID + process, GROUP))
        .collect();
    for (child, process) in children.iter_mut().zip(processes) {
        child.wait_for_file(&scratch.sync.join(format!("ready.{process}")));
    }
    touch(&scratch.sync.join("go"));

    let mut rotations = BTreeMap::new();
    let mut verifier = Verifier::new(scratch.log(), MAX_BYTES, MAX_FILES);
    for (child, process) in children.into_iter().zip(processes) {
        let uid = BASE_UID + process;
        let finished = child.finish();
        finished.assert_exited_ok();
        assert_eq!(finished.reports(), Vec::<&str>::new(), "nothing failed");
        assert_eq!(
            finished.line("CREDENTIALS"),
            format!("uid={uid} gid={GROUP} groups=0")
        );
        let counts = finished.counts();
        counts.assert_clean(&format!("uid {uid}"), SHARED_LINES);
        rotations.insert(uid, counts.rotations);
        verifier = verifier.expect(
            WriterId { process, thread: 0 },
            Expect::Exactly(SHARED_LINES),
        );
    }
    let report = verifier.verify();
    report.assert_ok();
    assert!(
        rotations.values().all(|&n| n > 0),
        "both users rotated: {rotations:?}"
    );
    assert_eq!(
        rotations.values().sum::<u64>(),
        report.archives as u64,
        "each rotation made one archive; rotations by uid: {rotations:?}"
    );

    let files = scratch.log_files(report.archives);
    assert_eq!(
        modes_and_groups(&files),
        all_group_shared(&files),
        "(mode, group) of every file"
    );
    // Whoever built first made the oldest file; each rotation made a new one, as its
    // rotator.
    let oldest = format!("app.log.{}", report.archives);
    let mut expected_owners = rotations.clone();
    *expected_owners
        .get_mut(&files[&oldest].uid())
        .expect("one of the two users made the first log file") += 1;
    assert_eq!(
        log_files_by_owner(&files),
        expected_owners,
        "log files by owner"
    );
}

#[test]
fn a_user_outside_the_group_is_told_which_file_and_why_when_it_builds() {
    if skipped_without_root() {
        return;
    }
    // Others may search the directory, to reach the files; only the group may create.
    let scratch = Scratch::new(Some(GROUP), 0o2775);
    let (creator, intruder) = (BASE_UID + 1, BASE_UID + 2);
    let create = spawn_unprivileged(&scratch, "create", 1, creator, GROUP);
    let created = create.finish();
    created.assert_exited_ok();
    assert_eq!(
        created.line("CREDENTIALS"),
        format!("uid={creator} gid={GROUP} groups=0")
    );
    assert_eq!(created.reports(), Vec::<&str>::new(), "nothing failed");
    created.counts().assert_clean("the creator", CREATED_LINES);
    let files = scratch.log_files(0);
    let owner_and_mode =
        |files: &BTreeMap<String, fs::Metadata>| -> BTreeMap<String, (u32, u32, Mode)> {
            files
                .iter()
                .map(|(name, m)| (name.clone(), (m.uid(), m.gid(), Mode::of(m))))
                .collect()
        };
    let made_by_the_creator = BTreeMap::from([
        ("app.log".to_string(), (creator, GROUP, Mode(0o644))),
        ("app.log.lock".to_string(), (creator, GROUP, Mode(0o644))),
    ]);
    assert_eq!(
        owner_and_mode(&files),
        made_by_the_creator,
        "without file_mode, umask 022 gives 0644"
    );

    let build = spawn_unprivileged(&scratch, "build", 2, intruder, intruder);
    let finished = build.finish();
    finished.assert_exited_ok();
    assert_eq!(
        finished.line("CREDENTIALS"),
        format!("uid={intruder} gid={intruder} groups=0")
    );
    assert_eq!(finished.line("KIND"), "OpenLockFile");
    let lock = scratch.lock().display().to_string();
    assert_eq!(finished.line("PATH"), lock);
    let message = finished.line("MESSAGE");
    let facts = format!(
        "lock file `{lock}` cannot be opened: Permission denied (os error 13); it belongs to uid \
         {creator} and gid {GROUP} with mode 0644: "
    );
    assert!(
        message.starts_with(&facts) && message.contains("`file_mode`"),
        "the message names the lock file, whose it is, and points to `file_mode`: {message}"
    );
    // Nothing was changed behind anyone's back.
    assert_eq!(owner_and_mode(&scratch.log_files(0)), made_by_the_creator);
    Verifier::new(scratch.log(), MAX_BYTES, MAX_FILES)
        .expect(
            WriterId {
                process: 1,
                thread: 0,
            },
            Expect::Exactly(CREATED_LINES),
        )
        .verify()
        .assert_ok();
}

#[test]
fn a_lock_file_replaced_by_one_the_process_cannot_open_drops_events_and_names_it() {
    if skipped_without_root() {
        return;
    }
    let scratch = Scratch::new(Some(0), 0o755);
    let user = BASE_UID + 2;
    // The files exist, open to all: the user builds without creating anything.
    for path in [scratch.lock(), scratch.log()] {
        File::create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    }
    let mut child = spawn_unprivileged(&scratch, "lose-lock", 1, user, user);
    child.wait_for_file(&scratch.sync.join("written"));
    // A lock file only root may open takes the place of the one the process locks.
    fs::remove_file(scratch.lock()).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(scratch.lock())
        .unwrap();
    touch(&scratch.sync.join("replaced"));
    let finished = child.finish();
    finished.assert_exited_ok();
    assert_eq!(
        finished.line("CREDENTIALS"),
        format!("uid={user} gid={user} groups=0")
    );
    assert_eq!(
        finished.line("DURING"),
        format!("denied={DURING} other=0"),
        "{}",
        finished.line("OTHER")
    );
    assert_eq!(
        finished.counts(),
        Counts {
            written: BEFORE,
            dropped: DURING,
            write_errors: DURING,
            rotations: 0,
            rotation_errors: 0,
        }
    );
    let reports = finished.reports();
    let facts = format!(
        "{REPORT_PREFIX} cannot write to log file `{}`: cannot open lock file `{}`: \
         Permission denied (os error 13); it belongs to uid 0 and gid 0 with mode 0600: ",
        scratch.log().display(),
        scratch.lock().display()
    );
    assert!(
        reports.len() == 1 && reports[0].starts_with(&facts) && reports[0].contains("`file_mode`"),
        "one report, naming the lock file and whose it is:\n{}",
        finished.stderr
    );

    // The lines before are there, none after; the new lock file is untouched.
    Verifier::new(scratch.log(), MAX_BYTES, MAX_FILES)
        .expect(
            WriterId {
                process: 1,
                thread: 0,
            },
            Expect::Exactly(BEFORE),
        )
        .verify()
        .assert_ok();
    let lock = fs::metadata(scratch.lock()).unwrap();
    assert_eq!(
        (lock.uid(), Mode::of(&lock), lock.len()),
        (0, Mode(0o600), 0)
    );
    scratch.log_files(0);
}

#[test]
fn a_user_who_may_not_write_the_directory_cannot_rotate_and_is_told_why() {
    if skipped_without_root() {
        return;
    }
    // The files are open to all, the directory only to root.
    let scratch = Scratch::new(Some(0), 0o755);
    for path in [scratch.lock(), scratch.log()] {
        File::create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    }
    let user = BASE_UID + 1;
    let finished = spawn_unprivileged(&scratch, "rotate-denied", 1, user, GROUP).finish();
    finished.assert_exited_ok();
    assert_eq!(
        finished.line("CREDENTIALS"),
        format!("uid={user} gid={GROUP} groups=0")
    );
    // The events that fit went in; the first one after tried to rotate, failed, and was
    // appended anyway, as were the rest, with a try again only as the back-off allows.
    let writer = WriterId {
        process: 1,
        thread: 0,
    };
    let mut len = 0;
    let fitting = (0..DENIED_LINES)
        .take_while(|&seq| {
            len += fmt_line(writer, seq).len() as u64;
            len <= DENIED_MAX_BYTES
        })
        .count() as u64;
    let counts = finished.counts();
    let elapsed = Duration::from_micros(finished.line("ELAPSED_US").parse().unwrap());
    let most_tries = backoff::most_tries_within(elapsed).min(DENIED_LINES - fitting);
    assert!(
        (1..=most_tries).contains(&counts.rotation_errors),
        "{counts:?} in {elapsed:?}"
    );
    assert_eq!(
        counts,
        Counts {
            written: DENIED_LINES,
            dropped: 0,
            write_errors: 0,
            rotations: 0,
            rotation_errors: counts.rotation_errors,
        }
    );
    let reports = finished.reports();
    let facts = format!(
        "{REPORT_PREFIX} cannot rotate log file `{}`, so it grows past max_bytes until a \
         rotation succeeds: Permission denied (os error 13); every process that rotates must \
         be able to write and search `{}`",
        scratch.log().display(),
        scratch.logs.display()
    );
    assert!(
        reports.len() == 1 && reports[0].starts_with(&facts),
        "one report, saying what rotation needs of the directory:\n{}",
        finished.stderr
    );
    let all = fs::read_to_string(scratch.log()).unwrap();
    let expected: String = (0..DENIED_LINES).map(|seq| fmt_line(writer, seq)).collect();
    assert_eq!(all, expected, "every line is in the live file, in order");
    scratch.log_files(0);
}
