//! The one verifier of what writers left on disk, shared by the tests and the examples.
//!
//! It reads the live file and every rotated file and checks that every expected record
//! appears exactly once, that no line is torn or garbled, that every file is within
//! `max_bytes` (unless it holds one oversized event alone), that nothing exists beyond
//! `max_files`, and that every rotation happened exactly when the next event would not fit.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use super::workload::{WriterId, payload};

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
}

/// One file that was read.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub lines: u64,
}

/// What the verifier found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileSummary>,
    /// Rotated files (`app.log.N`) found.
    pub archives: usize,
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

    pub fn verify(&self) -> Report {
        let mut report = Report::default();
        let chain = self.rotation_chain(&mut report);
        let mut seen: HashMap<WriterId, BTreeMap<u64, u32>> = HashMap::new();
        // First line length of each file in the chain, to check the rotation points.
        let mut first_lines = Vec::with_capacity(chain.len());
        let mut files = Vec::with_capacity(chain.len());

        for path in chain.iter().chain(&self.extra_files) {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    report
                        .problems
                        .push(format!("cannot read {}: {e}", path.display()));
                    continue;
                }
            };
            let summary = self.check_file(path, &bytes, &mut seen, &mut report);
            first_lines.push(bytes.iter().position(|&b| b == b'\n').map(|i| i as u64 + 1));
            files.push(summary);
        }

        if self.check_rotation_points {
            self.check_rotations(&chain, &files, &first_lines, &mut report);
        }
        report.files = files;
        self.check_records(&seen, &mut report);
        report
    }

    /// The live file and its archives, oldest first; flags archives beyond `max_files`
    /// and gaps in the numbering.
    fn rotation_chain(&self, report: &mut Report) -> Vec<PathBuf> {
        let dir = self.log.parent().expect("log path has a parent");
        let base = self.log.file_name().expect("log path has a file name");
        let prefix = format!("{}.", base.to_string_lossy());
        let mut indices = Vec::new();
        for entry in std::fs::read_dir(dir).expect("cannot list log directory") {
            let name = entry.expect("cannot list log directory").file_name();
            let name = name.to_string_lossy();
            if let Some(index) = name
                .strip_prefix(&prefix)
                .and_then(|s| s.parse::<usize>().ok())
            {
                indices.push(index);
            }
        }
        indices.sort_unstable();
        for (expected, &index) in (1..).zip(&indices) {
            if index != expected && !self.allow_gaps {
                report.problems.push(format!(
                    "rotated files are not numbered 1..: found {indices:?}"
                ));
                break;
            }
        }
        if let Some(&beyond) = indices.iter().find(|&&i| i > self.max_files) {
            report.problems.push(format!(
                "{prefix}{beyond} exists beyond max_files = {}",
                self.max_files
            ));
        }
        report.archives = indices.len();
        let mut chain: Vec<PathBuf> = indices
            .iter()
            .rev()
            .map(|i| dir.join(format!("{prefix}{i}")))
            .collect();
        if self.log.exists() {
            chain.push(self.log.clone());
        }
        chain
    }

    fn check_file(
        &self,
        path: &Path,
        bytes: &[u8],
        seen: &mut HashMap<WriterId, BTreeMap<u64, u32>>,
        report: &mut Report,
    ) -> FileSummary {
        let len = bytes.len() as u64;
        report.bytes_total += len;
        report.largest_file = report.largest_file.max(len);
        let mut lines = 0;
        let mut rest = bytes;
        while !rest.is_empty() {
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => {
                    report.torn += 1;
                    report.problems.push(format!(
                        "{} ends in a partial line: {:?}",
                        path.display(),
                        String::from_utf8_lossy(rest)
                    ));
                    break;
                }
            };
            rest = next;
            lines += 1;
            report.longest_line = report.longest_line.max(line.len() as u64 + 1);
            match parse_line(line) {
                Some((writer, seq)) => {
                    report.lines_verified += 1;
                    *seen.entry(writer).or_default().entry(seq).or_default() += 1;
                }
                None => {
                    report.torn += 1;
                    report.problems.push(format!(
                        "torn or garbled line in {}: {:?}",
                        path.display(),
                        String::from_utf8_lossy(line)
                    ));
                }
            }
        }
        if len > self.max_bytes && lines > 1 {
            report.oversized += 1;
            report.problems.push(format!(
                "{} holds {len} bytes in {lines} lines, over max_bytes = {}",
                path.display(),
                self.max_bytes
            ));
        }
        FileSummary {
            path: path.to_path_buf(),
            bytes: len,
            lines,
        }
    }

    /// An archive was rotated because the next event, the first line of the next newer
    /// file, would not fit: `size + that line > max_bytes`. A process that rotated on a
    /// stale size, or rotated twice, leaves an archive that fails this.
    fn check_rotations(
        &self,
        chain: &[PathBuf],
        files: &[FileSummary],
        first_lines: &[Option<u64>],
        report: &mut Report,
    ) {
        for i in 0..chain.len().saturating_sub(1) {
            let (archive, next) = (&files[i], first_lines[i + 1]);
            let Some(next_line) = next else {
                report.problems.push(format!(
                    "{} was rotated but the next file {} has no complete line",
                    archive.path.display(),
                    files[i + 1].path.display()
                ));
                continue;
            };
            if archive.bytes + next_line <= self.max_bytes {
                report.problems.push(format!(
                    "{} was rotated at {} bytes although the next event ({next_line} bytes) fitted under max_bytes = {}",
                    archive.path.display(),
                    archive.bytes,
                    self.max_bytes
                ));
            }
        }
    }

    fn check_records(&self, seen: &HashMap<WriterId, BTreeMap<u64, u32>>, report: &mut Report) {
        for (writer, seqs) in seen {
            let Some(expect) = self.expected.get(writer) else {
                report.unexpected += seqs.len() as u64;
                report.problems.push(format!(
                    "{} records from unexpected writer {writer:?}",
                    seqs.len()
                ));
                continue;
            };
            for (&seq, &count) in seqs {
                if count > 1 {
                    report.duplicated += u64::from(count - 1);
                    report
                        .problems
                        .push(format!("{writer:?} seq {seq} appears {count} times"));
                }
                let limit = match *expect {
                    Expect::Exactly(n)
                    | Expect::Resumed { attempted: n }
                    | Expect::Newest { total: n } => Some(n),
                    Expect::Prefix { .. } => None,
                };
                if let Some(n) = limit
                    && seq >= n
                {
                    report.unexpected += 1;
                    report
                        .problems
                        .push(format!("{writer:?} seq {seq} is beyond the {n} expected"));
                }
            }
        }
        for (writer, expect) in &self.expected {
            let empty = BTreeMap::new();
            let seqs = seen.get(writer).unwrap_or(&empty);
            let expected_from = match *expect {
                Expect::Newest { total } => seqs.keys().next().copied().unwrap_or(total),
                _ => 0,
            };
            let expected_len = match *expect {
                Expect::Exactly(n) | Expect::Newest { total: n } => n,
                Expect::Resumed { attempted } => {
                    if attempted == 0 || !seqs.contains_key(&(attempted - 1)) {
                        report.lost += 1;
                        report.problems.push(format!(
                            "{writer:?} never resumed: its last record {} is missing",
                            attempted.saturating_sub(1)
                        ));
                    }
                    continue;
                }
                // A killed writer may have lost only the event it was writing: everything
                // up to the highest sequence present must be there, and at least what it
                // had acknowledged.
                Expect::Prefix { acknowledged } => seqs
                    .keys()
                    .next_back()
                    .map_or(0, |&max| max + 1)
                    .max(acknowledged),
            };
            let missing: Vec<u64> = (expected_from..expected_len)
                .filter(|s| !seqs.contains_key(s))
                .collect();
            if !missing.is_empty() {
                report.lost += missing.len() as u64;
                report.problems.push(format!(
                    "{writer:?} lost {} of {expected_len} records, first {:?}",
                    missing.len(),
                    &missing[..missing.len().min(5)]
                ));
            }
        }
    }
}

/// Parses one line holding exactly one intact record after the fmt layer's prefix.
fn parse_line(line: &[u8]) -> Option<(WriterId, u64)> {
    let line = std::str::from_utf8(line).ok()?;
    let start = line.find("REC ")?;
    let (prefix, record) = line.split_at(start);
    if !is_fmt_prefix(prefix) {
        return None;
    }
    let body = record.strip_prefix("REC ")?.strip_suffix(" END")?;
    let mut fields = body.split(' ');
    let mut field = |name: &str| fields.next()?.strip_prefix(name);
    let process = field("p=")?.parse().ok()?;
    let thread = field("t=")?.parse().ok()?;
    let seq = field("s=")?.parse().ok()?;
    let x = field("x=")?;
    if fields.next().is_some() {
        return None;
    }
    let writer = WriterId { process, thread };
    (x == payload(writer, seq)).then_some((writer, seq))
}

/// `2026-11-26T15:00:00.123456Z  INFO workload: `, as the fmt layer writes it.
fn is_fmt_prefix(prefix: &str) -> bool {
    let Some((timestamp, rest)) = prefix.split_once(' ') else {
        return false;
    };
    let timestamp_ok = timestamp.len() >= 20
        && timestamp.ends_with('Z')
        && timestamp.as_bytes()[4] == b'-'
        && timestamp.as_bytes()[10] == b'T'
        && timestamp
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-:T.Z".contains(&b));
    let level_and_target = rest.trim_start();
    timestamp_ok
        && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
            .iter()
            .any(|level| level_and_target == format!("{level} workload: "))
}
