//! A symlink put at the log path after `build()` is never followed, and never rotated.
//!
//! `build()` resolves a symlink at the log path once (and locks beside the real file).
//! After that, a symlink swapped in at the path (`ln -s` to a temp name, then `rename(2)`
//! over the log, as `mv -T` does) must be refused by the processes already running: their
//! events are dropped, counted and reported. Following it would either write into
//! whatever the link points to, or write to another directory's log under this
//! directory's lock, while the processes started since lock the other directory's lock
//! file: two locks for one file, so files overflow `max_bytes`.
//!
//! Writers are real child processes (`symlink_workers`), writing continuously while the
//! test swaps the link in. A symlink at an archive name is also covered: rotation and
//! retention move or delete the link, never its target. The log's directory swapped for
//! a symlink is `directory_swap`.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use super::symlink_workers::{
    AFTER_SWAP, KEEP_ALL, MAX_BYTES, Outcome, VICTIM_TEXT, Worker, assert_is_link_to,
    swap_in_symlink, symlinked_archives, victim_state, wait_until, writer_spec,
};
use crate::common;
use common::children::touch;
use common::log_files::archive;
use common::verifier::{Expect, Verifier};
use common::workload::{WriteMode, WriterId, WriterSpec, fmt_line};
use tracing_shared_file::SharedFile;

// ---------------------------------------------------------------------------------------
// The log path swapped for a symlink to a victim file while writers run.

fn run_victim_swap(mode: WriteMode) {
    const WRITERS: u32 = 2;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, VICTIM_TEXT).unwrap();
    let sync_dir = dir.path().join("sync");
    fs::create_dir(&sync_dir).unwrap();

    let mut workers: Vec<Worker> = (0..WRITERS)
        .map(|process| Worker::start(writer_spec(&log, &sync_dir, process, mode)))
        .collect();
    touch(&sync_dir.join("go"));
    // Swap once the writers have rotated a couple of times: they are in full flow.
    let second_archive = archive(&log, 2);
    wait_until(
        &mut workers.iter_mut().collect::<Vec<_>>(),
        "two rotations",
        || second_archive.exists(),
    );
    let victim_before = victim_state(&victim);
    let acknowledged_at_swap: Vec<u64> = workers.iter().map(Worker::acknowledged).collect();
    swap_in_symlink("victim.txt", &log);

    // Every writer logs on after the swap.
    for (worker, at_swap) in workers.iter_mut().zip(acknowledged_at_swap) {
        let writer = worker.writer();
        let spec = worker.spec.clone();
        wait_until(&mut [worker], "records after the swap", || {
            spec.acknowledged(writer) >= at_swap + AFTER_SWAP
        });
    }
    // The swap is noticed within `path_check_interval` (10 ms): a fast writer may have
    // sent all of those records to the replaced file by then, so let them log on past it.
    std::thread::sleep(3 * tracing_shared_file::DEFAULT_PATH_CHECK_INTERVAL);
    touch(&sync_dir.join("stop"));
    let finished: Vec<Outcome> = workers.into_iter().map(Worker::finish).collect();

    assert_eq!(
        victim_state(&victim),
        victim_before,
        "the writers wrote into the symlink's target"
    );
    assert_is_link_to(&log, "victim.txt");
    assert_eq!(symlinked_archives(&log), Vec::<PathBuf>::new());
    for worker in &finished {
        worker.assert_refused_the_link();
    }

    // What was written before the swap is intact in the archives: each writer's records
    // from its first on, without a gap (the live file at the swap went with its name).
    // A rotation that the swap caught half-way put the link back after the archives had
    // moved up, which leaves a gap at `.1` until the next rotation: allowed.
    fs::remove_file(&log).unwrap();
    let report = (0..WRITERS)
        .fold(
            Verifier::new(&log, MAX_BYTES, KEEP_ALL).allow_gaps(true),
            |verifier, p| {
                verifier.expect(
                    WriterId {
                        process: p,
                        thread: 0,
                    },
                    Expect::Prefix { acknowledged: 0 },
                )
            },
        )
        .verify();
    report.assert_ok();
    assert!(
        report.archives >= 2,
        "{report}\n{:?}",
        fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_symlink_swapped_in_at_the_log_path_is_never_written_through() {
    run_victim_swap(WriteMode::Tracing);
}

#[test]
fn a_symlink_swapped_in_at_the_log_path_is_never_written_through_by_non_blocking() {
    run_victim_swap(WriteMode::NonBlocking);
}

// ---------------------------------------------------------------------------------------
// `logs/app.log` swapped for a symlink to `../big/app.log`, and a
// writer started after the swap.

#[test]
fn a_log_path_swapped_for_a_link_to_another_log_never_splits_the_lock() {
    const LATE_LINES: u64 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let big = dir.path().join("big");
    fs::create_dir(&logs).unwrap();
    fs::create_dir(&big).unwrap();
    let log = logs.join("app.log");
    let big_log = big.join("app.log");
    let sync_dir = dir.path().join("sync");
    fs::create_dir(&sync_dir).unwrap();

    // Writer A runs from before the swap to after writer B is done.
    let mut early = Worker::start(writer_spec(&log, &sync_dir, 0, WriteMode::Tracing));
    touch(&sync_dir.join("go"));
    let second_archive = archive(&log, 2);
    wait_until(&mut [&mut early], "two rotations", || {
        second_archive.exists()
    });
    let early_at_swap = early.acknowledged();
    swap_in_symlink("../big/app.log", &log);

    // Writer B is given the same path, now a link: build() resolves it to big/app.log.
    let late_spec = WriterSpec {
        lines_per_thread: LATE_LINES,
        acknowledge: false,
        until_stopped: false,
        ..writer_spec(&log, &sync_dir, 1, WriteMode::Tracing)
    };
    let late_writer = WriterId {
        process: 1,
        thread: 0,
    };
    let late = Worker::start(late_spec);
    let late = late.finish();
    let early_spec = early.spec.clone();
    let early_writer = early.writer();
    wait_until(&mut [&mut early], "writer A to log after the swap", || {
        early_spec.acknowledged(early_writer) >= early_at_swap + AFTER_SWAP
    });
    touch(&sync_dir.join("stop"));
    let early = early.finish();

    assert_eq!(late.stats, (LATE_LINES, 0, 0), "writer B lost nothing");
    assert!(late.reports().is_empty(), "{}", late.stderr);
    // big/ holds B's records only, and no file there went past max_bytes.
    let report = Verifier::new(&big_log, MAX_BYTES, KEEP_ALL)
        .expect(late_writer, Expect::Exactly(LATE_LINES))
        .verify();
    report.assert_ok();
    assert!(report.archives >= 3, "{report}");
    assert!(big.join("app.log.lock").is_file());

    assert_is_link_to(&log, "../big/app.log");
    assert_eq!(symlinked_archives(&log), Vec::<PathBuf>::new());
    early.assert_refused_the_link();
    fs::remove_file(&log).unwrap();
    let report = Verifier::new(&log, MAX_BYTES, KEEP_ALL)
        .expect(early_writer, Expect::Prefix { acknowledged: 0 })
        .verify();
    report.assert_ok();
}

// ---------------------------------------------------------------------------------------
// Symlinks at archive names: rotation renames them and retention deletes them, never
// touching their targets. (Holds already; kept so it stays that way.)

#[test]
fn symlinks_at_archive_names_are_moved_and_deleted_never_followed() {
    const LINES: u64 = 300;
    const SMALL_MAX_BYTES: u64 = 1024;
    const MAX_FILES: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let victims: Vec<PathBuf> = [1, 3]
        .iter()
        .map(|i| dir.path().join(format!("victim{i}.txt")))
        .collect();
    for victim in &victims {
        fs::write(victim, VICTIM_TEXT).unwrap();
    }
    // app.log.1 and app.log.3 are links, with a gap at .2: the first rotation moves the
    // link at .1 into the gap, later ones move both up and delete them past max_files.
    std::os::unix::fs::symlink("victim1.txt", archive(&log, 1)).unwrap();
    std::os::unix::fs::symlink("victim3.txt", archive(&log, 3)).unwrap();
    let before: Vec<_> = victims.iter().map(|v| victim_state(v)).collect();

    let shared = SharedFile::builder(&log)
        .max_bytes(SMALL_MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    let writer = WriterId {
        process: 0,
        thread: 0,
    };
    for seq in 0..LINES {
        (&shared)
            .write_all(fmt_line(writer, seq).as_bytes())
            .expect("write");
    }
    let stats = shared.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.write_errors,
            stats.rotation_errors
        ),
        (LINES, 0, 0),
        "{stats:?}"
    );
    assert!(stats.rotations >= 20, "{stats:?}");

    let after: Vec<_> = victims.iter().map(|v| victim_state(v)).collect();
    assert_eq!(after, before, "a symlink's target was written or replaced");
    assert_eq!(symlinked_archives(&log), Vec::<PathBuf>::new());
    let report = Verifier::new(&log, SMALL_MAX_BYTES, MAX_FILES)
        .expect(writer, Expect::Newest { total: LINES })
        .verify();
    report.assert_ok();
    assert_eq!(report.archives, MAX_FILES, "{report}");
}
