//! The one verifier of what writers left on disk, shared by the tests and the examples.
//!
//! It reads the live file and every rotated file and checks that every expected record
//! appears exactly once, that no line is torn or garbled, that every file is within
//! `max_bytes` (unless it holds one oversized event alone), that nothing exists beyond
//! `max_files`, and that every rotation happened exactly when the next event would not fit.
//!
//! Opt-in, for the rotation policy: timestamped archive names (`timestamped`), time
//! rotation (`period` and the checks that go with it), each writer's records in order along
//! the chain (`check_record_order`, on by default with timestamped names, which must sort
//! by age). Gzipped archives (`app.log.3.gz`,
//! `app.log.<stamp>.gz`) are always read, and checked by their uncompressed content.
//!
//! Std and `flate2` only: the examples include this file by path.

// By path, so that they resolve the same from `tests/common/mod.rs` and from an example
// that includes this file with `#[path]`.
#[path = "verifier/chain.rs"]
mod chain;
#[path = "verifier/period.rs"]
mod period;
#[path = "verifier/records.rs"]
mod records;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::workload::{WriterId, payload};
use chain::ChainFile;
use period::{FileTimes, Period, Span};
pub use period::{archive_stamp, parse_archive_stamp};
use records::{Scan, Tally};

/// How many records of one writer to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly sequences `0..n`.
    Exactly(u64),
    /// A writer that was killed: sequences `0..m` for some `m` of at least `acknowledged`
    /// (the events it had finished writing when it died), with no gaps.
    Prefix { acknowledged: u64 },
    /// A writer whose events may have been dropped (a full disk): any of `0..attempted`,
    /// but the last one must be there, to show that logging resumed.
    Resumed { attempted: u64 },
    /// A writer whose oldest records went with archives deleted beyond `max_files`:
    /// sequences `k..total` for some `k`, with no gaps.
    Newest { total: u64 },
}

/// Configures one verification run.
#[derive(Debug, Clone)]
pub struct Verifier {
    log: PathBuf,
    max_bytes: u64,
    max_files: usize,
    expected: BTreeMap<WriterId, Expect>,
    extra_files: Vec<PathBuf>,
    check_rotation_points: bool,
    allow_gaps: bool,
    timestamped: bool,
    /// `None`: on exactly when the names are timestamped and rotation points are checked.
    check_record_order: Option<bool>,
    period: Option<Period>,
    max_write_delay: Duration,
    one_archive_per_period: bool,
    stamps_match_periods: bool,
}

/// One file that was read.
#[derive(Debug, Clone)]
pub struct FileSummary {
    /// The plain file, or the `.gz` when there is no plain one.
    pub path: PathBuf,
    /// Uncompressed.
    pub bytes: u64,
    pub lines: u64,
    /// The archive exists as a `.gz` (alone or beside its plain form).
    pub compressed: bool,
}

/// What the verifier found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileSummary>,
    /// Rotated files (`app.log.N`, or timestamped) found; a plain and `.gz` pair is one.
    pub archives: usize,
    /// Archives that exist as a `.gz`.
    pub compressed: usize,
    /// Distinct rotation periods among the files (with `period`; otherwise 0). A lower
    /// bound when `max_write_delay` leaves a file's period open.
    pub periods: usize,
    pub lines_verified: u64,
    pub bytes_total: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Lines that are not exactly one intact record (including a partial last line).
    pub torn: u64,
    /// Intact records from writers or sequences nobody expected.
    pub unexpected: u64,
    /// Files larger than `max_bytes` that hold more than one line.
    pub oversized: u64,
    /// Records of one writer found after a later record of that writer, in chain order.
    pub out_of_order: u64,
    pub largest_file: u64,
    pub longest_line: u64,
    /// Every problem, described; the ones above are counted, these explain them.
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Panics with a readable account of everything wrong.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "verification failed:\n{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "files {} (archives {}), lines verified {}, lost {}, duplicated {}, torn {}, unexpected {}, oversized files {}, largest file {} B, longest line {} B",
            self.files.len(),
            self.archives,
            self.lines_verified,
            self.lost,
            self.duplicated,
            self.torn,
            self.unexpected,
            self.oversized,
            self.largest_file,
            self.longest_line
        )?;
        if self.compressed + self.periods > 0 || self.out_of_order > 0 {
            writeln!(
                f,
                "compressed archives {}, periods {}, out of order {}",
                self.compressed, self.periods, self.out_of_order
            )?;
        }
        const SHOWN: usize = 20;
        for problem in self.problems.iter().take(SHOWN) {
            writeln!(f, "  - {problem}")?;
        }
        if self.problems.len() > SHOWN {
            writeln!(f, "  ... and {} more", self.problems.len() - SHOWN)?;
        }
        Ok(())
    }
}

impl Verifier {
    pub fn new(log: impl AsRef<Path>, max_bytes: u64, max_files: usize) -> Self {
        Verifier {
            log: log.as_ref().to_path_buf(),
            max_bytes,
            max_files,
            expected: BTreeMap::new(),
            extra_files: Vec::new(),
            check_rotation_points: true,
            allow_gaps: false,
            timestamped: false,
            check_record_order: None,
            period: None,
            max_write_delay: Duration::ZERO,
            one_archive_per_period: false,
            stamps_match_periods: false,
        }
    }

    pub fn expect(mut self, writer: WriterId, expect: Expect) -> Self {
        self.expected.insert(writer, expect);
        self
    }

    /// Expects `lines` records from each of `threads` threads of `process`.
    pub fn expect_process(self, process: u32, threads: u32, lines: u64) -> Self {
        self.expect_threads(process, threads, Expect::Exactly(lines))
    }

    /// Expects `expect` of each of `threads` threads of `process`.
    pub fn expect_threads(mut self, process: u32, threads: u32, expect: Expect) -> Self {
        for thread in 0..threads {
            self.expected.insert(WriterId { process, thread }, expect);
        }
        self
    }

    /// A file outside the rotation chain that also holds records (one an operator moved).
    pub fn extra_file(mut self, path: impl AsRef<Path>) -> Self {
        self.extra_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Whether to check that each rotation happened exactly when the next event would not
    /// fit. Off when something outside the library moved files around.
    pub fn check_rotation_points(mut self, check: bool) -> Self {
        self.check_rotation_points = check;
        self
    }

    /// Whether a gap in the archive numbers is acceptable: a rotation killed half-way
    /// leaves one until the next rotation fills it.
    pub fn allow_gaps(mut self, allow: bool) -> Self {
        self.allow_gaps = allow;
        self
    }

    /// Reads the archives by timestamped names (`app.log.2026-11-27T14-00-00Z`, then
    /// `.K` for a second rotation in the same second, then `.gz`), oldest first by stamp
    /// and counter, instead of `app.log.N`. Gaps mean nothing there; `max_files` bounds
    /// their count.
    pub fn timestamped(mut self, timestamped: bool) -> Self {
        self.timestamped = timestamped;
        self
    }

    /// Whether each writer's records must appear in order along the chain (oldest file
    /// first), which shows the files are in the order their names say. By default, on
    /// with `timestamped` names while rotation points are checked.
    pub fn check_record_order(mut self, check: bool) -> Self {
        self.check_record_order = Some(check);
        self
    }

    /// Time rotation every `length`, with boundaries at the multiples of `length` since
    /// the epoch in local time at `utc_offset_seconds` (86 400 s: local midnight; exactly
    /// 7 days: Monday 00:00). Checks that each file's lines are of one period, that the
    /// periods never go back along the chain, and that a rotation the size does not
    /// explain starts a later period. `Report::periods` counts the periods.
    pub fn period(mut self, length: Duration, utc_offset_seconds: i32) -> Self {
        self.period = Some(Period::new(length, utc_offset_seconds));
        self
    }

    /// How long a line may wait between being stamped by the fmt layer and being
    /// written (the lock wait, a non-blocking queue): a line stamped up to this long
    /// before its file's period began still belongs there. Zero by default.
    pub fn max_write_delay(mut self, delay: Duration) -> Self {
        self.max_write_delay = delay;
        self
    }

    /// With `period`: no two files (archives and live file) hold lines of one period, as
    /// with time rotation alone.
    pub fn one_archive_per_period(mut self, one: bool) -> Self {
        self.one_archive_per_period = one;
        self
    }

    /// With `timestamped` and `period`: an archive that was rotated at a boundary (not
    /// because the next event did not fit) is stamped with the start of its period, or,
    /// when a size rotation in that period began it, with that rotation's stamp (and the
    /// next counter).
    pub fn stamps_match_periods(mut self, check: bool) -> Self {
        self.stamps_match_periods = check;
        self
    }

    pub fn verify(&self) -> Report {
        let mut report = Report::default();
        let chain = chain::find(&self.log, self.timestamped);
        chain::check_names(&chain, self.max_files, self.allow_gaps, &mut report);
        let mut tally = Tally::default();
        let check_order = self
            .check_record_order
            .unwrap_or(self.timestamped && self.check_rotation_points);
        // Aligned with `chain`: `None` for a file that could not be read.
        let scans: Vec<Option<Scan>> = chain
            .iter()
            .enumerate()
            .map(|(index, file)| {
                let bytes = file.read(&mut report)?;
                let order = check_order.then_some(index);
                let mut scan = self.check_file(file.path(), &bytes, order, &mut tally, &mut report);
                scan.summary.compressed = file.gz.is_some();
                Some(scan)
            })
            .collect();
        let mut extra = Vec::with_capacity(self.extra_files.len());
        for path in &self.extra_files {
            match std::fs::read(path) {
                Ok(bytes) => {
                    extra.push(self.check_file(path, &bytes, None, &mut tally, &mut report));
                }
                Err(e) => report
                    .problems
                    .push(format!("cannot read {}: {e}", path.display())),
            }
        }

        if check_order {
            self.check_order(&chain, &tally, &mut report);
        }
        let spans = self
            .period
            .map(|period| self.check_periods(period, &chain, &scans, &mut report));
        if self.check_rotation_points {
            self.check_rotations(&scans, spans.as_deref(), &mut report);
        }
        report.files = scans
            .into_iter()
            .flatten()
            .chain(extra)
            .map(|scan| scan.summary)
            .collect();
        self.check_records(&tally, &mut report);
        report
    }

    /// The time checks of `period` (see there). Returns each chain file's span of periods.
    fn check_periods(
        &self,
        period: Period,
        chain: &[ChainFile],
        scans: &[Option<Scan>],
        report: &mut Report,
    ) -> Vec<Option<Span>> {
        let rules = period::Rules {
            period,
            max_write_delay: self.max_write_delay.as_nanos() as i128,
            one_file_per_period: self.one_archive_per_period,
            stamps_match_periods: self.stamps_match_periods,
        };
        let files: Vec<FileTimes> = chain
            .iter()
            .enumerate()
            .map(|(i, file)| FileTimes {
                path: file.path(),
                stamp: file.stamp(),
                previous_stamp: i.checked_sub(1).and_then(|p| chain[p].stamp()),
                lines: scans[i].as_ref().and_then(|scan| scan.times),
                rotated_at_boundary: match (&scans[i], scans.get(i + 1)) {
                    (Some(scan), Some(Some(next))) => next
                        .first_line
                        .is_some_and(|line| scan.summary.bytes + line <= self.max_bytes),
                    _ => false,
                },
            })
            .collect();
        period::check(&rules, &files, report)
    }

    /// An archive was rotated because the next event, the first line of the next newer
    /// file, would not fit: `size + that line > max_bytes`. A process that rotated on a
    /// stale size, or rotated twice, leaves an archive that fails this. With `period`, a
    /// rotation may also start a later period.
    fn check_rotations(
        &self,
        scans: &[Option<Scan>],
        spans: Option<&[Option<Span>]>,
        report: &mut Report,
    ) {
        for i in 0..scans.len().saturating_sub(1) {
            let (Some(archive), Some(next)) = (&scans[i], &scans[i + 1]) else {
                continue;
            };
            let archive = &archive.summary;
            let Some(next_line) = next.first_line else {
                report.problems.push(format!(
                    "{} was rotated but the next file {} has no complete line",
                    archive.path.display(),
                    next.summary.path.display()
                ));
                continue;
            };
            if archive.bytes + next_line > self.max_bytes {
                continue;
            }
            let same_period = match spans {
                None => "",
                Some(spans) => match (spans[i], spans[i + 1]) {
                    (Some(this), Some(next)) if this.may_precede(next) => continue,
                    _ => " and the next file starts no later period",
                },
            };
            report.problems.push(format!(
                "{} was rotated at {} bytes although the next event ({next_line} bytes) fitted under max_bytes = {}{same_period}",
                archive.path.display(),
                archive.bytes,
                self.max_bytes
            ));
        }
    }
}
