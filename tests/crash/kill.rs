//! kill -9 at any moment: the kernel drops the dead process's flock, the next lock holder
//! cuts off any partial line it left, and an interrupted rotation is repaired by the next.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::children::start_entry;
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, WriterSpec, run_writer};

#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        run_writer(&spec);
    }
}

fn spawn_worker(spec: &WriterSpec) -> Child {
    let mut command = common::entry_command(&common::entry!(worker_entry));
    spec.apply(&mut command);
    command.stdout(Stdio::null()).spawn().expect("spawn worker")
}

/// splitmix64, so a failing run can be replayed from its printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % below
    }
}

#[test]
fn writers_killed_at_random_moments_lose_at_most_their_last_event() {
    const MAX_BYTES: u64 = 16 * 1024;
    const RUNNING: usize = 4;
    const KILLS: usize = 30;
    const LINES: u64 = 3_000;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let sync_dir = dir.path().join("sync");
    std::fs::create_dir(&sync_dir).unwrap();
    // Workers start as soon as they are ready: the killer, not a barrier, sets the pace.
    std::fs::write(sync_dir.join("go"), b"").unwrap();
    let log = dir.path().join("logs/app.log");
    let spec_for = |process| WriterSpec {
        max_bytes: MAX_BYTES,
        process,
        lines_per_thread: LINES,
        acknowledge: true,
        ..WriterSpec::new(log.clone(), sync_dir.clone())
    };

    let mut specs: Vec<WriterSpec> = Vec::new();
    let mut killed = Vec::new();
    let mut running: Vec<(u32, Child)> = Vec::new();
    let start = |specs: &mut Vec<WriterSpec>, running: &mut Vec<(u32, Child)>| {
        let spec = spec_for(specs.len() as u32);
        running.push((spec.process, spawn_worker(&spec)));
        specs.push(spec);
    };
    for _ in 0..RUNNING {
        start(&mut specs, &mut running);
    }
    while killed.len() < KILLS {
        std::thread::sleep(Duration::from_millis(rng.next(15)));
        let victim = rng.next(running.len() as u64) as usize;
        let (process, mut child) = running.swap_remove(victim);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if common::children::was_killed(&status) {
            killed.push(process);
        } else {
            assert!(status.success(), "worker {process} failed: {status}");
        }
        start(&mut specs, &mut running);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for (process, child) in &mut running {
        let status = common::children::wait_with_deadline(child, deadline);
        assert!(status.success(), "survivor {process} failed: {status}");
    }

    let mut verifier = Verifier::new(&log, MAX_BYTES, 100_000)
        // A process killed between rotating and writing leaves an archive whose next
        // event never arrived, and one killed mid-rotation a gap the next one fills.
        .check_rotation_points(false)
        .allow_gaps(true);
    for spec in &specs {
        let writer = WriterId {
            process: spec.process,
            thread: 0,
        };
        let expect = if killed.contains(&spec.process) {
            Expect::Prefix {
                acknowledged: spec.acknowledged(writer),
            }
        } else {
            Expect::Exactly(LINES)
        };
        verifier = verifier.expect(writer, expect);
    }
    let report = verifier.verify();
    println!("{} kills; {report}", killed.len());
    report.assert_ok();
    assert!(killed.len() >= KILLS);
    assert!(report.archives > 10, "rotation ran throughout\n{report}");
}

const BIG_WRITER_ENV: &str = "TSF_BIG_WRITER";

/// Child side: append one event large enough that the kernel copies it page by page.
#[test]
fn big_writer_entry() {
    use std::io::Write;
    let Some(dir) = std::env::var_os(BIG_WRITER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = tracing_shared_file::SharedFile::builder(dir.join("app.log"))
        .max_bytes(1 << 40)
        .build()
        .unwrap();
    let mut event = vec![b'x'; 256 << 20];
    *event.last_mut().unwrap() = b'\n';
    std::fs::write(dir.join("writing"), b"").unwrap();
    let _ = (&log).write_all(&event);
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn a_partial_line_left_by_a_killed_writer_is_cut_off_by_the_next() {
    use std::io::Write;
    const BEFORE: &[u8] = b"written before the crash\n";
    const AFTER: &[u8] = b"written after the crash\n";
    // A kill can land after the write finished; try again then (the test needs a cut).
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let log = tracing_shared_file::SharedFile::builder(&path)
            .max_bytes(1 << 40)
            // The repair it does is expected: keep its notice off the test's output.
            .on_error(|_| {})
            .build()
            .unwrap();
        (&log).write_all(BEFORE).unwrap();

        let out = tempfile::tempdir().unwrap();
        let entry = common::entry!(big_writer_entry);
        let child = start_entry(&entry, out.path(), "big writer", |command| {
            command.env(BIG_WRITER_ENV, dir.path());
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while file_len(&path) <= BEFORE.len() as u64 {
            assert!(Instant::now() < deadline, "the big writer never started");
            std::hint::spin_loop();
        }
        child.kill();
        let at_death = file_len(&path);
        if at_death >= BEFORE.len() as u64 + (256 << 20) {
            continue;
        }

        (&log).write_all(AFTER).unwrap();
        let content = std::fs::read(&path).unwrap();
        // Compared without printing: the content may hold megabytes of partial event.
        assert!(
            content == [BEFORE, AFTER].concat(),
            "the partial event ({} bytes) must be cut off before the next append; the file holds {} bytes",
            at_death - BEFORE.len() as u64,
            content.len()
        );
        return;
    }
    panic!("every kill landed after the write completed; the cut was never exercised");
}
