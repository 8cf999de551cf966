//! A cut-back after a failed append, and the repair of a killed writer's partial append,
//! never cut into lines that were already whole.
//!
//! The danger is a length taken on trust: another program may append under the same lock
//! (`flock app.log.lock sh -c 'echo … >> app.log'`), so the length that the last writer
//! recorded in the lock file's shared page can be short of the real end of the file.
//! Cutting back to it would chop the tail off a whole line and glue the next one onto it.
//!
//! Each scenario runs a real writer process (this test binary, re-run with
//! `TSF_REPAIR_CHILD` set) that writes line 1, waits while the test appends a line of its
//! own under the lock, writes line 2, then sets `RLIMIT_FSIZE` a little above the file's
//! size and starts an event that cannot fit. The kernel writes up to the limit, then
//! either kills the writer with SIGXFSZ (a partial append for the next writer, another
//! process, to repair) or, with SIGXFSZ ignored, fails the write with EFBIG (a short
//! write to cut back).
//!
//! An event of many lines cut short by a kill goes whole, even the lines of it that
//! reached the file complete: the repair cuts back to the length that the write intent
//! recorded before the append.

use crate::common;

use common::children::{Finished, RunningChild, start_entry, touch};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing_shared_file::{SharedFile, Stats};

const CHILD_ENV: &str = "TSF_REPAIR_CHILD";
const SCENARIO_ENV: &str = "TSF_REPAIR_SCENARIO";
const NEXT_ENV: &str = "TSF_REPAIR_NEXT";

const LINE_1: &str = "line 1 from the writer\n";
const FOREIGN_LINE: &str = "appended by another program under the lock\n";
const LINE_2: &str = "line 2 from the writer\n";
/// Written by the writer after the short write, once the limit is raised again.
const LINE_3: &str = "line 3, after the limit was raised\n";
/// Written by the next writer, which repairs what a killed one left.
const NEXT_LINE: &str = "the next writer's line\n";
/// The event that does not fit: 100 KB, cut at the limit.
const BIG_EVENT_LEN: usize = 100 * 1024;
/// How many bytes of the big event the limit lets through.
const PARTIAL_LEN: u64 = 1000;
/// The lines of the batch that the non-blocking writer is killed in the middle of; all
/// the same length, so the cut point is known.
const BATCH_LINES: usize = 40;
/// The limit ends inside this line of the batch.
const BATCH_CUT_LINE: usize = 10;
/// The lines of the multi-line event (a pretty-printed `Debug`, a backtrace) that the
/// writer is killed in the middle of; all the same length, so the cut point is known.
const EVENT_LINES: usize = 100;
/// The limit ends inside (or, at a line end, just after) this line of the multi-line
/// event.
const EVENT_CUT_LINE: usize = 40;
/// How long a child may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(30);

/// What the writer process does once line 2 is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Dies of SIGXFSZ part-way through the big event.
    Killed,
    /// Ignores SIGXFSZ: the big event's write fails with EFBIG, then line 3 is written.
    ShortWrite,
    /// Dies of SIGXFSZ while its non-blocking writer appends a batch of many lines.
    KilledInBatch,
    /// Ignores SIGXFSZ while its non-blocking writer appends a batch of many lines: the
    /// write that reaches the limit fails with EFBIG part of the way through a line.
    ShortWriteInBatch,
    /// Dies of SIGXFSZ part-way through one event of many lines, written with a single
    /// `write_all`, the limit falling inside a line.
    KilledInMultilineEvent,
    /// The same, the limit falling just after a line's newline: what is left of the
    /// event ends like whole lines, and must go all the same.
    KilledInMultilineEventAtLineEnd,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Killed => "killed",
            Scenario::ShortWrite => "short-write",
            Scenario::KilledInBatch => "killed-in-batch",
            Scenario::ShortWriteInBatch => "short-write-in-batch",
            Scenario::KilledInMultilineEvent => "killed-in-multiline-event",
            Scenario::KilledInMultilineEventAtLineEnd => "killed-in-multiline-event-at-line-end",
        }
    }

    fn from_name(name: &str) -> Self {
        [
            Scenario::Killed,
            Scenario::ShortWrite,
            Scenario::KilledInBatch,
            Scenario::ShortWriteInBatch,
            Scenario::KilledInMultilineEvent,
            Scenario::KilledInMultilineEventAtLineEnd,
        ]
        .into_iter()
        .find(|scenario| scenario.name() == name)
        .unwrap_or_else(|| panic!("unknown scenario {name}"))
    }
}

fn batch_line(index: usize) -> String {
    format!("batch line {index:03}\n")
}

fn event_line(index: usize) -> String {
    format!("  part {index:03} of one event {}\n", "y".repeat(200))
}

/// One event of `EVENT_LINES` lines.
fn multiline_event() -> Vec<u8> {
    (0..EVENT_LINES)
        .map(event_line)
        .collect::<String>()
        .into_bytes()
}

/// How many bytes of the multi-line event the limit lets through in `scenario`.
fn multiline_partial_len(scenario: Scenario) -> u64 {
    let line_len = event_line(0).len() as u64;
    let whole_lines = EVENT_CUT_LINE as u64 * line_len;
    match scenario {
        Scenario::KilledInMultilineEvent => whole_lines + line_len / 2,
        Scenario::KilledInMultilineEventAtLineEnd => whole_lines,
        other => panic!("{other:?} writes no multi-line event"),
    }
}

fn big_event() -> Vec<u8> {
    let mut event = vec![b'x'; BIG_EVENT_LEN];
    *event.last_mut().unwrap() = b'\n';
    event
}

// ---------------------------------------------------------------------------------------
// The writer process.

/// Child side: the writer process of every scenario.
#[test]
fn writer_entry() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let scenario = Scenario::from_name(&std::env::var(SCENARIO_ENV).unwrap());
    let path = dir.join("app.log");
    let log = SharedFile::builder(&path)
        .max_bytes(1 << 40)
        // Only the first write asks the kernel for the length; the later ones go by the
        // length recorded in the shared page, which the foreign append made stale.
        .path_check_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    (&log).write_all(LINE_1.as_bytes()).unwrap();
    touch(&dir.join("line1-written"));
    common::workload::wait_for_file(&dir.join("go-on"));
    (&log).write_all(LINE_2.as_bytes()).unwrap();
    let whole = fs::metadata(&path).unwrap().len();

    match scenario {
        Scenario::Killed => {
            no_core_dumps();
            set_file_size_limit(whole + PARTIAL_LEN);
            let _ = (&log).write_all(&big_event());
            panic!("SIGXFSZ should have killed the writer");
        }
        Scenario::ShortWrite => {
            // SAFETY: changes only this process's disposition of SIGXFSZ.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            set_file_size_limit(whole + PARTIAL_LEN);
            let error = (&log).write_all(&big_event()).err();
            let after_failure = log.stats();
            set_file_size_limit(libc::RLIM_INFINITY);
            (&log).write_all(LINE_3.as_bytes()).unwrap();
            let result = format!(
                "error={:?}\nafter the failure: {}\nat the end: {}\n",
                error.map(|e| e.kind()),
                describe(&after_failure),
                describe(&log.stats())
            );
            fs::write(dir.join("result"), result).unwrap();
        }
        Scenario::KilledInBatch => {
            no_core_dumps();
            let line_len = batch_line(0).len() as u64;
            set_file_size_limit(whole + BATCH_CUT_LINE as u64 * line_len + line_len / 2);
            let (mut writer, guard) = log.non_blocking();
            for index in 0..BATCH_LINES {
                // Each write queues one event; the background thread appends them in
                // batches of several lines each.
                writer.write_all(batch_line(index).as_bytes()).unwrap();
            }
            drop(guard);
            panic!("SIGXFSZ should have killed the writer");
        }
        Scenario::ShortWriteInBatch => {
            // SAFETY: changes only this process's disposition of SIGXFSZ.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            let line_len = batch_line(0).len() as u64;
            set_file_size_limit(whole + BATCH_CUT_LINE as u64 * line_len + line_len / 2);
            let (mut writer, guard) = log.non_blocking();
            for index in 0..BATCH_LINES {
                writer.write_all(batch_line(index).as_bytes()).unwrap();
            }
            drop(guard);
            set_file_size_limit(libc::RLIM_INFINITY);
            (&log).write_all(LINE_3.as_bytes()).unwrap();
            fs::write(dir.join("result"), describe(&log.stats())).unwrap();
        }
        Scenario::KilledInMultilineEvent | Scenario::KilledInMultilineEventAtLineEnd => {
            no_core_dumps();
            set_file_size_limit(whole + multiline_partial_len(scenario));
            // One event, one `write_all`: the kernel takes it up to the limit, then the
            // next `write(2)` of the rest raises SIGXFSZ.
            let _ = (&log).write_all(&multiline_event());
            panic!("SIGXFSZ should have killed the writer");
        }
    }
}

/// Child side: the next writer, which finds and repairs what the killed one left.
#[test]
fn next_writer_entry() {
    let Some(log) = std::env::var_os(NEXT_ENV) else {
        return;
    };
    let log = SharedFile::builder(log).max_bytes(1 << 40).build().unwrap();
    (&log).write_all(NEXT_LINE.as_bytes()).unwrap();
}

fn describe(stats: &Stats) -> String {
    format!(
        "events_written={} write_errors={} events_dropped={}",
        stats.events_written, stats.write_errors, stats.events_dropped
    )
}

fn set_file_size_limit(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: sets this process's own limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0);
}

/// SIGXFSZ's default action dumps core: not for a death the test asks for.
fn no_core_dumps() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process's own limits and attributes.
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_CORE, &none), 0);
        // A core_pattern that pipes to a helper ignores RLIMIT_CORE 0; this does not.
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

// ---------------------------------------------------------------------------------------
// The test side.

/// Runs the writer process of `scenario`; its output goes to files in `dir`.
fn spawn_writer(dir: &Path, scenario: Scenario) -> RunningChild {
    start_entry(&common::entry!(writer_entry), dir, "writer", |command| {
        command
            .env(CHILD_ENV, dir)
            .env(SCENARIO_ENV, scenario.name());
    })
    .with_deadline(DEADLINE)
}

/// What another program does: `flock app.log.lock sh -c 'echo … >> app.log'`.
fn append_under_the_lock(log: &Path, line: &str) {
    let lock = File::open(format!("{}.lock", log.display())).expect("open the lock file");
    let deadline = Instant::now() + DEADLINE;
    while lock.try_lock().is_err() {
        assert!(Instant::now() < deadline, "the lock was never free");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut file = OpenOptions::new().append(true).open(log).unwrap();
    file.write_all(line.as_bytes()).unwrap();
    drop(file);
    lock.unlock().unwrap();
}

/// Runs `scenario` up to the writer's exit: line 1, the foreign line (if `foreign`),
/// line 2, then the write that hits the limit. Returns the log path and how the writer ended.
fn run_writer(dir: &Path, scenario: Scenario, foreign: bool) -> (PathBuf, Finished) {
    let log = dir.join("app.log");
    let mut writer = spawn_writer(dir, scenario);
    writer.wait_for_file(&dir.join("line1-written"));
    if foreign {
        append_under_the_lock(&log, FOREIGN_LINE);
    }
    touch(&dir.join("go-on"));
    (log, writer.finish())
}

/// The whole lines the writer and the foreign program wrote before the failed append.
fn whole_before(foreign: bool) -> String {
    let foreign = if foreign { FOREIGN_LINE } else { "" };
    format!("{LINE_1}{foreign}{LINE_2}")
}

#[track_caller]
fn assert_killed_by_sigxfsz(writer: &Finished) {
    assert_eq!(
        writer.status.signal(),
        Some(libc::SIGXFSZ),
        "the writer should have died of SIGXFSZ ({}):\n{}",
        writer.status,
        writer.stderr
    );
}

/// Runs the next writer, in a process of its own so that its report of the repair goes
/// to a file rather than to the test's output.
fn write_next_line(log: &Path) -> String {
    let dir = log.parent().unwrap();
    let next = start_entry(&common::entry!(next_writer_entry), dir, "next", |command| {
        command.env(NEXT_ENV, log);
    })
    .with_deadline(DEADLINE)
    .finish();
    next.assert_exited_ok();
    next.stderr
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// A writer killed mid-append leaves the big event's first `PARTIAL_LEN` bytes; the next
/// writer must cut exactly those off and nothing more.
fn killed_writer_is_repaired_exactly(foreign: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = run_writer(dir.path(), Scenario::Killed, foreign);
    assert_killed_by_sigxfsz(&writer);
    let whole = whole_before(foreign);
    assert_eq!(
        file_len(&log),
        whole.len() as u64 + PARTIAL_LEN,
        "the killed writer should have left {PARTIAL_LEN} bytes of its event"
    );

    let reports = write_next_line(&log);

    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        format!("{whole}{NEXT_LINE}"),
        "the repair must cut off the partial event and nothing that was whole"
    );
    assert_eq!(
        reports,
        format!(
            "tracing-shared-file: cut off a partial line that a killed process left in `{}`\n",
            log.display()
        ),
        "the repair is reported once"
    );
}

#[test]
fn the_repair_of_a_killed_writer_keeps_a_line_another_program_appended_under_the_lock() {
    killed_writer_is_repaired_exactly(true);
}

#[test]
fn the_repair_of_a_killed_writer_cuts_off_exactly_its_partial_event() {
    killed_writer_is_repaired_exactly(false);
}

#[test]
fn a_short_write_is_cut_back_to_the_real_end_after_another_programs_append() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = run_writer(dir.path(), Scenario::ShortWrite, true);
    writer.assert_exited_ok();

    let result = fs::read_to_string(dir.path().join("result")).unwrap();
    assert_eq!(
        result,
        "error=Some(FileTooLarge)\n\
         after the failure: events_written=2 write_errors=1 events_dropped=1\n\
         at the end: events_written=3 write_errors=1 events_dropped=1\n"
    );
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        format!("{}{LINE_3}", whole_before(true)),
        "the cut-back must remove the short write and nothing that was whole"
    );
}

#[test]
fn a_batch_cut_short_by_a_kill_leaves_only_whole_lines_after_another_programs_append() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = run_writer(dir.path(), Scenario::KilledInBatch, true);
    assert_killed_by_sigxfsz(&writer);
    let whole = whole_before(true);
    let line_len = batch_line(0).len();
    let cut = whole.len() + BATCH_CUT_LINE * line_len + line_len / 2;
    assert_eq!(
        file_len(&log),
        cut as u64,
        "the killed writer should have stopped at the file size limit"
    );

    write_next_line(&log);

    // The batch's complete lines may stay or go with the partial one, but what stays is
    // whole lines, in order: some prefix of the batch, then the next writer's line.
    let text = fs::read_to_string(&log).unwrap();
    let kept = (0..=BATCH_CUT_LINE).find(|&kept| {
        let batch: String = (0..kept).map(batch_line).collect();
        text == format!("{whole}{batch}{NEXT_LINE}")
    });
    assert!(
        kept.is_some(),
        "expected the whole lines, at most the first {BATCH_CUT_LINE} batch lines, then \
         the next writer's line; the file holds:\n{text}"
    );
}

/// A batch whose write fails part of the way: the lines that reached the file whole stay
/// and count as written, the one cut in the middle is cut off, and the rest count as
/// dropped, one by one.
#[test]
fn a_batch_cut_short_by_a_full_file_keeps_and_counts_its_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = run_writer(dir.path(), Scenario::ShortWriteInBatch, true);
    writer.assert_exited_ok();
    let result = fs::read_to_string(dir.path().join("result")).unwrap();
    let written = 2 + BATCH_CUT_LINE + 1;
    let dropped = BATCH_LINES - BATCH_CUT_LINE;
    assert_eq!(
        result
            .split(' ')
            .filter(|field| !field.starts_with("write_errors"))
            .collect::<Vec<_>>(),
        [
            format!("events_written={written}"),
            format!("events_dropped={dropped}")
        ]
    );
    let batch: String = (0..BATCH_CUT_LINE).map(batch_line).collect();
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        format!("{}{batch}{LINE_3}", whole_before(true))
    );
}

/// A writer killed part-way through one event of many lines leaves whole-looking lines
/// of it: the next writer must cut off the whole unfinished event, those lines too, and
/// nothing that was whole before it.
fn killed_in_a_multiline_event_is_repaired_whole(scenario: Scenario, foreign: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = run_writer(dir.path(), scenario, foreign);
    assert_killed_by_sigxfsz(&writer);
    let whole = whole_before(foreign);
    assert_eq!(
        file_len(&log),
        whole.len() as u64 + multiline_partial_len(scenario),
        "the killed writer should have stopped at the file size limit"
    );

    write_next_line(&log);

    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        format!("{whole}{NEXT_LINE}"),
        "the repair must cut off every line of the unfinished event and nothing that was \
         whole"
    );
}

#[test]
fn the_repair_of_a_writer_killed_in_a_multiline_event_cuts_off_all_of_it() {
    killed_in_a_multiline_event_is_repaired_whole(Scenario::KilledInMultilineEvent, false);
}

#[test]
fn the_repair_of_a_writer_killed_in_a_multiline_event_keeps_a_line_another_program_appended() {
    killed_in_a_multiline_event_is_repaired_whole(Scenario::KilledInMultilineEvent, true);
}

#[test]
fn the_repair_of_a_writer_killed_at_a_line_end_inside_a_multiline_event_cuts_off_all_of_it() {
    killed_in_a_multiline_event_is_repaired_whole(Scenario::KilledInMultilineEventAtLineEnd, true);
}
