//! One compressor per archive across processes, with real processes.
//!
//! - Four processes rotate at the same moment, so that their compression passes race
//!   over the same big archives: watching the directory throughout, no archive ever has
//!   two temporary files (at once or one after the other), the archives the processes
//!   say they compressed add up to the `.gz` files made, and every line is there once.
//! - Something that is not ours at an archive's temporary name (a symbolic link, a
//!   directory) is never followed, written or removed: that archive stays plain, the
//!   failure is reported, and the other archives are compressed.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::children::{RunningChild, spawn_entry};
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, archive_stamp, fmt_line, stamped_archives, wait_for_file};
use tracing_shared_file::{Naming, SharedFile};

/// One record per file: every event after the first rotates.
const MAX_BYTES: u64 = 160;
const KEEP_ALL: usize = 100_000;
const DEADLINE: Duration = Duration::from_secs(120);
const ENV_LOG: &str = "TSF_CLAIM_LOG";
const ENV_SYNC: &str = "TSF_CLAIM_SYNC";
const ENV_PROCESS: &str = "TSF_CLAIM_PROCESS";

fn builder(log: &Path) -> tracing_shared_file::Builder {
    SharedFile::builder(log)
        .max_bytes(MAX_BYTES)
        .max_files(KEEP_ALL)
        .naming(Naming::Timestamped)
        .compress(true)
}

/// Builds, says it is ready, waits for `<sync>/go`, rotates once with one record, waits
/// for its compression, and saves how many archives it compressed.
#[test]
fn racer_entry() {
    let Some(log) = std::env::var_os(ENV_LOG) else {
        return;
    };
    let sync = PathBuf::from(std::env::var_os(ENV_SYNC).unwrap());
    let process: u32 = std::env::var(ENV_PROCESS).unwrap().parse().unwrap();
    let shared = builder(Path::new(&log)).build().expect("build");
    fs::write(sync.join(format!("ready.{process}")), b"").unwrap();
    wait_for_file(&sync.join("go"));
    let writer = WriterId { process, thread: 0 };
    (&shared).write_all(fmt_line(writer, 0).as_bytes()).unwrap();
    assert!(shared.wait_for_compression(DEADLINE));
    let stats = shared.stats();
    assert_eq!((stats.rotations, stats.write_errors), (1, 0));
    fs::write(
        sync.join(format!("compressed.{process}")),
        stats.archives_compressed.to_string(),
    )
    .unwrap();
}

/// Plants `count` plain archives of `lines` records each, with old stamps, and a live
/// file with one record; returns the writers whose records they hold.
fn plant(log: &Path, count: u32, lines: u64) -> Vec<WriterId> {
    let seed = WriterId {
        process: 1000,
        thread: 0,
    };
    fs::write(log, fmt_line(seed, 0)).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut writers = vec![seed];
    for k in 0..count {
        let writer = WriterId {
            process: 2000 + k,
            thread: 0,
        };
        let name = format!("app.log.{}", archive_stamp(now - 86_400 + i64::from(k)));
        let mut file = std::io::BufWriter::new(fs::File::create(log.with_file_name(name)).unwrap());
        for seq in 0..lines {
            file.write_all(fmt_line(writer, seq).as_bytes()).unwrap();
        }
        file.flush().unwrap();
        writers.push(writer);
    }
    writers
}

/// What a watcher saw of the temporary files: per archive, every (name, inode) seen, and
/// the most seen at once.
#[derive(Default)]
struct Seen {
    temporaries: BTreeMap<String, BTreeSet<(String, u64)>>,
    most_at_once: BTreeMap<String, usize>,
}

/// The archive a hidden temporary of the compressor belongs to: `.<archive>.gz…tmp`.
fn archive_of(temporary: &str) -> Option<String> {
    let rest = temporary.strip_prefix('.')?;
    Some(rest[..rest.find(".gz")?].to_string())
}

/// Lists `dir` as fast as it can until `stop` is set.
fn watch(dir: PathBuf, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    while !stop.load(Ordering::Acquire) {
        let mut now: BTreeMap<String, usize> = BTreeMap::new();
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().into_string().unwrap();
            let Some(archive) = archive_of(&name).filter(|_| name.ends_with(".tmp")) else {
                continue;
            };
            let Ok(metadata) = entry.metadata() else {
                continue; // gone meanwhile
            };
            *now.entry(archive.clone()).or_default() += 1;
            seen.temporaries
                .entry(archive)
                .or_default()
                .insert((name, metadata.ino()));
        }
        for (archive, count) in now {
            let most = seen.most_at_once.entry(archive).or_default();
            *most = (*most).max(count);
        }
    }
    seen
}

#[test]
fn processes_racing_to_compress_never_both_write_a_temporary_for_one_archive() {
    const RACERS: u32 = 4;
    const PLANTED: u32 = 8;
    const LINES: u64 = 15_000;
    let dir = tempfile::tempdir().unwrap();
    let sync = dir.path().join("sync");
    fs::create_dir(&sync).unwrap();
    fs::create_dir(dir.path().join("logs")).unwrap();
    let log = dir.path().join("logs/app.log");
    let planted = plant(&log, PLANTED, LINES);
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<RunningChild> = (0..RACERS)
        .map(|process| {
            spawn_entry(
                &exe,
                &common::entry!(racer_entry),
                &sync,
                &process.to_string(),
                |command| {
                    command
                        .env(ENV_LOG, &log)
                        .env(ENV_SYNC, &sync)
                        .env(ENV_PROCESS, process.to_string());
                },
            )
        })
        .collect();
    for (process, child) in children.iter_mut().enumerate() {
        child.wait_for_file(&sync.join(format!("ready.{process}")));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (dir, stop) = (log.parent().unwrap().to_path_buf(), Arc::clone(&stop));
        std::thread::spawn(move || watch(dir, stop))
    };
    fs::write(sync.join("go"), b"").unwrap();
    let deadline = Instant::now() + DEADLINE;
    for child in children {
        child.wait(deadline).assert_success();
    }
    stop.store(true, Ordering::Release);
    let seen = watcher.join().unwrap();

    assert!(
        !seen.temporaries.is_empty(),
        "no compression was seen at all; make the archives bigger"
    );
    for (archive, temporaries) in &seen.temporaries {
        assert_eq!(
            (temporaries.len(), seen.most_at_once[archive]),
            (1, 1),
            "{archive} was compressed by more than one writer: {temporaries:?}"
        );
    }
    let archives = stamped_archives(&log);
    let gz = archives.iter().filter(|archive| archive.gz).count() as u64;
    assert_eq!(archives.len() as u32, PLANTED + RACERS, "{archives:?}");
    assert_eq!(gz, u64::from(PLANTED + RACERS - 1), "{archives:?}");
    let compressed: u64 = (0..RACERS)
        .map(|process| {
            let path = sync.join(format!("compressed.{process}"));
            fs::read_to_string(path).unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(compressed, gz, "archives compressed, over all processes");

    let verifier = planted.iter().enumerate().fold(
        Verifier::new(&log, u64::MAX, KEEP_ALL)
            .timestamped(true)
            .check_rotation_points(false),
        |verifier, (k, &writer)| {
            verifier.expect(writer, Expect::Exactly(if k == 0 { 1 } else { LINES }))
        },
    );
    let report = (0..RACERS)
        .fold(verifier, |verifier, process| {
            verifier.expect(WriterId { process, thread: 0 }, Expect::Exactly(1))
        })
        .verify();
    assert!(report.is_ok(), "{report}");
}

/// What a test puts at an archive's temporary name.
enum Foreign {
    Symlink,
    Directory,
}

fn foreign_at_the_temporary_name(foreign: Foreign) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let planted = plant(&log, 3, 100);
    let archives = stamped_archives(&log);
    let blocked = &archives[1].name;
    let temporary = log.with_file_name(format!(".{blocked}.gz.tmp"));
    let target = dir.path().join("elsewhere");
    fs::write(&target, b"not to be touched").unwrap();
    match foreign {
        Foreign::Symlink => std::os::unix::fs::symlink(&target, &temporary).unwrap(),
        Foreign::Directory => fs::create_dir(&temporary).unwrap(),
    }
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared = {
        let failures = Arc::clone(&failures);
        builder(&log)
            .on_error(move |failure| failures.lock().unwrap().push(failure.to_string()))
            .build()
            .unwrap()
    };
    let writer = WriterId {
        process: 1,
        thread: 0,
    };
    (&shared).write_all(fmt_line(writer, 0).as_bytes()).unwrap();
    assert!(shared.wait_for_compression(DEADLINE));

    let names: BTreeSet<String> = stamped_archives(&log).into_iter().map(|a| a.name).collect();
    let expected: BTreeSet<String> = [
        format!("{}.gz", archives[0].name),
        blocked.clone(),
        format!("{}.gz", archives[2].name),
    ]
    .into_iter()
    .chain(stamped_archives(&log).last().map(|a| a.name.clone()))
    .collect();
    assert_eq!(names, expected);
    assert_eq!(fs::read(&target).unwrap(), b"not to be touched");
    let kind = fs::symlink_metadata(&temporary).unwrap().file_type();
    assert!(
        kind.is_symlink() || kind.is_dir(),
        "the foreign object was replaced"
    );
    let failures = failures.lock().unwrap();
    assert!(
        failures
            .iter()
            .any(|failure| failure.contains("is not a temporary file of ours")),
        "not reported: {failures:?}"
    );
    fs::remove_dir(&temporary)
        .or_else(|_| fs::remove_file(&temporary))
        .unwrap();
    let report = planted
        .iter()
        .enumerate()
        .fold(
            Verifier::new(&log, u64::MAX, KEEP_ALL)
                .timestamped(true)
                .check_rotation_points(false)
                .expect(writer, Expect::Exactly(1)),
            |verifier, (k, &planted)| {
                verifier.expect(planted, Expect::Exactly(if k == 0 { 1 } else { 100 }))
            },
        )
        .verify();
    assert!(report.is_ok(), "{report}");
}

#[test]
fn a_symlink_at_an_archives_temporary_name_is_never_followed() {
    foreign_at_the_temporary_name(Foreign::Symlink);
}

#[test]
fn a_directory_at_an_archives_temporary_name_is_left_alone() {
    foreign_at_the_temporary_name(Foreign::Directory);
}
