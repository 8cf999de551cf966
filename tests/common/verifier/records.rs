//! Reading a file's lines into records, and checking the records against what was
//! expected: each writer's sequences, lost, duplicated, unexpected, or out of order.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::chain::ChainFile;
use super::{Expect, FileSummary, Report, Verifier, WriterId, payload, period};

impl Verifier {
    /// Reports each record that came after a later record of its writer in chain order.
    pub(super) fn check_order(&self, chain: &[ChainFile], tally: &Tally, report: &mut Report) {
        report.out_of_order = tally.out_of_order.len() as u64;
        for &(writer, seq, index, (newest, newest_index)) in &tally.out_of_order {
            report.problems.push(format!(
                "{writer:?} seq {seq} in {} comes after its seq {newest} in {}: the files are out of order",
                chain[index].path().display(),
                chain[newest_index].path().display()
            ));
        }
    }

    /// Reads one file's lines into `tally`. `order`: the file's place in the chain, when
    /// record order is checked.
    pub(super) fn check_file(
        &self,
        path: &Path,
        bytes: &[u8],
        order: Option<usize>,
        tally: &mut Tally,
        report: &mut Report,
    ) -> Scan {
        let len = bytes.len() as u64;
        report.bytes_total += len;
        report.largest_file = report.largest_file.max(len);
        let mut lines = 0;
        let mut times: Option<(i128, i128)> = None;
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
            let Some((writer, seq)) = parse_line(line) else {
                report.torn += 1;
                report.problems.push(format!(
                    "torn or garbled line in {}: {:?}",
                    path.display(),
                    String::from_utf8_lossy(line)
                ));
                continue;
            };
            report.lines_verified += 1;
            *tally
                .seen
                .entry(writer)
                .or_default()
                .entry(seq)
                .or_default() += 1;
            if let Some(index) = order {
                tally.note_order(writer, seq, index);
            }
            if self.period.is_some() {
                // An intact line is UTF-8 and starts with its timestamp.
                let stamp = std::str::from_utf8(line)
                    .ok()
                    .and_then(|l| l.split(' ').next());
                match stamp.and_then(period::parse_line_time) {
                    Some(t) => {
                        let (earliest, latest) = times.unwrap_or((t, t));
                        times = Some((earliest.min(t), latest.max(t)));
                    }
                    None => report.problems.push(format!(
                        "bad timestamp in {}: {:?}",
                        path.display(),
                        String::from_utf8_lossy(line)
                    )),
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
        Scan {
            summary: FileSummary {
                path: path.to_path_buf(),
                bytes: len,
                lines,
                compressed: false,
            },
            first_line: bytes.iter().position(|&b| b == b'\n').map(|i| i as u64 + 1),
            times,
        }
    }

    pub(super) fn check_records(&self, tally: &Tally, report: &mut Report) {
        let seen = &tally.seen;
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

/// One file as read.
pub(super) struct Scan {
    pub(super) summary: FileSummary,
    /// The length of its first line, with the newline, if it has a complete one.
    pub(super) first_line: Option<u64>,
    /// The earliest and latest timestamps of its intact lines (with `period` only).
    pub(super) times: Option<(i128, i128)>,
}

/// What the lines of all files add up to.
#[derive(Default)]
pub(super) struct Tally {
    /// How many times each record of each writer was found.
    seen: HashMap<WriterId, BTreeMap<u64, u32>>,
    /// Each writer's latest record so far in chain order, and the file that held it.
    newest: HashMap<WriterId, (u64, usize)>,
    /// Records found after a later one of their writer: the record, its file, and the
    /// later record and its file.
    out_of_order: Vec<(WriterId, u64, usize, (u64, usize))>,
}

impl Tally {
    fn note_order(&mut self, writer: WriterId, seq: u64, index: usize) {
        if let Some(&newest) = self.newest.get(&writer)
            && seq < newest.0
        {
            self.out_of_order.push((writer, seq, index, newest));
        }
        // Restarting from this record reports a misplaced file once, not once per line.
        self.newest.insert(writer, (seq, index));
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

/// `2026-11-26T15:00:00.123456Z  INFO workload: `, as the fmt layer writes it, or with
/// `pid=4242 ` after the level, as the ready-made layers do.
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
    // The ready-made layers show the writing process's id after the level.
    let (level, target) = level_and_target.split_once(' ').unwrap_or(("", ""));
    let target = match target.strip_prefix("pid=") {
        Some(rest) => match rest.split_once(' ') {
            Some((pid, target)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
                target
            }
            _ => return false,
        },
        None => target,
    };
    timestamp_ok
        && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level)
        && target == "workload: "
}
