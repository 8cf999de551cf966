//! The layout of the lock file's first page, which every process maps shared.
//!
//! The page starts with a magic number and a layout version, so that a file that merely
//! sits at the lock path (a user's file, another program's) is never taken for ours and
//! written over. A page of zeros is a lock file that nobody has set up yet.
//!
//! All words after the header are read and written only under the flock, whose system
//! calls order them between processes, so acquire and release are all they need. Every
//! value is a hint that the kernel can confirm: nothing is truncated on its word alone.
//!
//! Versions share a page: the layout version only changes when the meaning of a word
//! does, and new fields take words no older version reads or writes (from
//! [`SCHEDULE_DEV`] on). So an older process never misreads a new field, and a newer one
//! tells what an older one wrote: the live file's schedule is in the new words only when
//! they name the live file (an older process records its period in the old words alone),
//! and the full options record is believed only while the old words it copies
//! (`max_bytes`, `max_files`, pid) still say what it says (an older process rewrites
//! those alone).

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::platform::{FileId, SharedPage};
use crate::rotation::Ledger;

/// `tsf-lock` in ASCII, read as a native-endian word.
const MAGIC: u64 = u64::from_ne_bytes(*b"tsf-lock");
/// Bumped whenever the meaning of a word changes.
const LAYOUT_VERSION: u64 = 1;

const WORD_MAGIC: usize = 0;
const WORD_VERSION: usize = 1;
/// An append announced and not yet finished: the file, its length before, the length of
/// the append.
const INTENT_ACTIVE: usize = 2;
const INTENT_DEV: usize = 3;
const INTENT_INO: usize = 4;
const INTENT_LEN_BEFORE: usize = 5;
const INTENT_LEN: usize = 6;
/// The live file as the last lock holder left it: device and inode. A holder whose handle
/// is not that file knows at once that a peer rotated. 0 and 0 mean unknown.
const LIVE_DEV: usize = 7;
const LIVE_INO: usize = 8;
/// The pid of the process holding the lock (0 when none), for the report of a writer that
/// gave up waiting.
const HOLDER_PID: usize = 10;
/// The rotation options of the last process that wrote, to tell processes that disagree.
const OPTION_MAX_BYTES: usize = 11;
const OPTION_MAX_FILES: usize = 12;
const OPTION_PID: usize = 13;
/// How many threads (of any process) are waiting for the lock, so that a process about to
/// take it again for more of a long batch lets them have their turn first. Changed with
/// atomic instructions by the waiters, which do not hold the lock.
const WAITERS: usize = 14;
/// The period of the live file, for time rotation: the file (device and inode), the start
/// of its period, and when its content began (the period's start, or the size rotation
/// that made it within the period), both in seconds since the Unix epoch.
const PERIOD_DEV: usize = 15;
const PERIOD_INO: usize = 16;
const PERIOD_START: usize = 17;
const PERIOD_SINCE: usize = 18;
/// What is known of the timestamped archives (see `rotation::Ledger`); `LEDGER_VALID` is 0
/// until a rotation has listed them.
const LEDGER_VALID: usize = 19;
const LEDGER_COUNT: usize = 20;
const LEDGER_BYTES: usize = 21;
const LEDGER_OLDEST: usize = 22;
/// The newest archive's stamp and counter; `NEWEST_VALID` is 0 when there is none.
const NEWEST_VALID: usize = 23;
const NEWEST_STAMP: usize = 24;
const NEWEST_COUNTER: usize = 25;
/// The live file's schedule: the file, the start and end of its period, as the process
/// that opened it counted them, and when its content began. Words older versions do
/// not know: they keep their own record in `PERIOD_*`.
const SCHEDULE_DEV: usize = 26;
const SCHEDULE_INO: usize = 27;
const SCHEDULE_START: usize = 28;
const SCHEDULE_END: usize = 29;
const SCHEDULE_SINCE: usize = 30;
/// The full options record: a mark while it is whole, copies of the old words it
/// extends, then the rest, encoded by the caller.
const OPTIONS_MARK: usize = 31;
const OPTIONS_COPY: usize = 32;
const OPTIONS_MORE: usize = 35;
/// How many words the rest of the options take.
pub(crate) const MORE_OPTIONS: usize = 16;
/// Which disagreements have been reported, so that each is reported once per lock file:
/// a ring of keys, and where the next goes.
const REPORTED: usize = OPTIONS_MORE + MORE_OPTIONS;
const REPORTED_SLOTS: usize = 8;
const REPORTED_NEXT: usize = REPORTED + REPORTED_SLOTS;
/// `opts-v2!` in ASCII: the options record is whole.
const OPTIONS_WHOLE: u64 = u64::from_ne_bytes(*b"opts-v2!");

/// What the first bytes of an existing lock file say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// Empty or all zeros: a lock file nobody has set up yet (or one truncated).
    Blank,
    /// A page of this layout.
    Ours,
    /// Our magic number with another layout version.
    OtherVersion(u64),
    /// Anything else: not ours to write to.
    Foreign,
}

/// Classifies the first bytes of a lock file (up to a page; fewer if it is shorter).
pub(crate) fn classify(bytes: &[u8]) -> Content {
    let word = |i: usize| {
        bytes
            .get(i * 8..i * 8 + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    };
    if bytes.iter().all(|&b| b == 0) {
        return Content::Blank;
    }
    match (word(WORD_MAGIC), word(WORD_VERSION)) {
        (Some(MAGIC), Some(LAYOUT_VERSION)) => Content::Ours,
        (Some(MAGIC), Some(version)) => Content::OtherVersion(version),
        _ => Content::Foreign,
    }
}

/// An append that a lock holder announced and never finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteIntent {
    pub(crate) file: FileId,
    pub(crate) len_before: u64,
    pub(crate) len: u64,
}

/// Rotation options as one process recorded them in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordedOptions {
    pub(crate) max_bytes: u64,
    pub(crate) max_files: u64,
    pub(crate) pid: u64,
    /// The other options, as the caller encoded them; `None` when an older version of the
    /// crate recorded only the three above.
    pub(crate) more: Option<[u64; MORE_OPTIONS]>,
}

/// The live file's period as the page records it, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordedPeriod {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) since: i64,
}

/// Typed access to the words of a mapped lock page.
#[derive(Debug)]
pub(crate) struct Page {
    page: SharedPage,
}

impl Page {
    pub(crate) fn new(page: SharedPage) -> Self {
        Page { page }
    }

    fn word(&self, index: usize) -> &std::sync::atomic::AtomicU64 {
        self.page.word(index)
    }

    /// Writes the header if the page is blank. Processes racing here write the same words.
    pub(crate) fn initialise(&self) {
        if self.word(WORD_MAGIC).load(Acquire) == 0 {
            self.word(WORD_VERSION).store(LAYOUT_VERSION, Relaxed);
            self.word(WORD_MAGIC).store(MAGIC, Release);
        }
    }

    /// Announces an append; call only while holding the lock.
    pub(crate) fn begin_write(&self, intent: WriteIntent) {
        self.word(INTENT_DEV).store(intent.file.dev, Release);
        self.word(INTENT_INO).store(intent.file.ino, Release);
        self.word(INTENT_LEN_BEFORE)
            .store(intent.len_before, Release);
        self.word(INTENT_LEN).store(intent.len, Release);
        self.word(INTENT_ACTIVE).store(1, Release);
    }

    /// Marks the announced append as finished (whole, or cut back after an error).
    pub(crate) fn end_write(&self) {
        self.word(INTENT_ACTIVE).store(0, Release);
    }

    /// The append a previous holder announced but did not finish; call only while holding
    /// the lock, and [`Page::end_write`] once it is dealt with.
    pub(crate) fn interrupted_write(&self) -> Option<WriteIntent> {
        if self.word(INTENT_ACTIVE).load(Acquire) == 0 {
            return None;
        }
        Some(WriteIntent {
            file: FileId {
                dev: self.word(INTENT_DEV).load(Acquire),
                ino: self.word(INTENT_INO).load(Acquire),
            },
            len_before: self.word(INTENT_LEN_BEFORE).load(Acquire),
            len: self.word(INTENT_LEN).load(Acquire),
        })
    }

    /// Whether `file` is the live file the last holder recorded; call only while holding
    /// the lock.
    pub(crate) fn live_is(&self, file: FileId) -> bool {
        let recorded = FileId {
            dev: self.word(LIVE_DEV).load(Acquire),
            ino: self.word(LIVE_INO).load(Acquire),
        };
        recorded == file
    }

    /// Records which file is live; call only while holding the lock.
    pub(crate) fn set_live(&self, file: FileId) {
        self.word(LIVE_DEV).store(file.dev, Release);
        self.word(LIVE_INO).store(file.ino, Release);
    }

    /// Forgets the live file, so the next holder looks the path up.
    pub(crate) fn forget_live(&self) {
        self.set_live(FileId { dev: 0, ino: 0 });
    }

    /// Records (or, with 0, clears) the pid of the process holding the lock.
    pub(crate) fn set_holder(&self, pid: u32) {
        self.word(HOLDER_PID).store(u64::from(pid), Relaxed);
    }

    /// The pid a holder recorded, if any; read without the lock, so only a hint.
    pub(crate) fn holder(&self) -> Option<u64> {
        Some(self.word(HOLDER_PID).load(Relaxed)).filter(|&pid| pid != 0)
    }

    /// The period start and content start that an older version of the crate recorded
    /// for `file`, if they are for it (this version never writes them); call only while
    /// holding the lock.
    pub(crate) fn period_of(&self, file: FileId) -> Option<(i64, i64)> {
        let recorded = FileId {
            dev: self.word(PERIOD_DEV).load(Acquire),
            ino: self.word(PERIOD_INO).load(Acquire),
        };
        (recorded == file).then(|| {
            (
                self.word(PERIOD_START).load(Acquire) as i64,
                self.word(PERIOD_SINCE).load(Acquire) as i64,
            )
        })
    }

    /// What the last rotation recorded about the archives; call only while holding the
    /// lock.
    pub(crate) fn ledger(&self) -> Option<Ledger> {
        (self.word(LEDGER_VALID).load(Acquire) == 1).then(|| Ledger {
            count: self.word(LEDGER_COUNT).load(Acquire),
            bytes: self.word(LEDGER_BYTES).load(Acquire),
            oldest: self.word(LEDGER_OLDEST).load(Acquire) as i64,
            newest: (self.word(NEWEST_VALID).load(Acquire) == 1).then(|| {
                (
                    self.word(NEWEST_STAMP).load(Acquire) as i64,
                    self.word(NEWEST_COUNTER).load(Acquire) as u32,
                )
            }),
        })
    }

    /// Records what is known of the archives; call only while holding the lock.
    pub(crate) fn set_ledger(&self, ledger: Ledger) {
        self.word(LEDGER_COUNT).store(ledger.count, Release);
        self.word(LEDGER_BYTES).store(ledger.bytes, Release);
        self.word(LEDGER_OLDEST)
            .store(ledger.oldest as u64, Release);
        // The last name given is only ever replaced by a later one: a ledger built from a
        // listing that finds no timestamped archive (numbered rotations deleted them all)
        // must not let the next rotation give a name again.
        if let Some((stamp, counter)) = ledger.newest {
            self.word(NEWEST_STAMP).store(stamp as u64, Release);
            self.word(NEWEST_COUNTER).store(u64::from(counter), Release);
            self.word(NEWEST_VALID).store(1, Release);
        }
        self.word(LEDGER_VALID).store(1, Release);
    }

    /// The last timestamped name given, kept when the rest of the ledger is forgotten;
    /// call only while holding the lock.
    pub(crate) fn newest_name(&self) -> Option<(i64, u32)> {
        (self.word(NEWEST_VALID).load(Acquire) == 1).then(|| {
            (
                self.word(NEWEST_STAMP).load(Acquire) as i64,
                self.word(NEWEST_COUNTER).load(Acquire) as u32,
            )
        })
    }

    /// Counts a thread that starts waiting for the lock.
    /// Makes the next rotation list the archives rather than trust the ledger. The last
    /// name given stays known ([`Page::newest_name`]): a listing made off the lock may be
    /// stale, or find none of the archives that had the newest names (retention by the
    /// other naming deleted them), and no name is ever given twice.
    pub(crate) fn forget_ledger(&self) {
        self.word(LEDGER_VALID).store(0, Release);
    }

    pub(crate) fn add_waiter(&self) {
        self.word(WAITERS).fetch_add(1, AcqRel);
    }

    /// Counts a thread that stopped waiting; never below zero (a waiter killed while it
    /// waited left its count behind, and the page may have been reset since).
    pub(crate) fn remove_waiter(&self) {
        let _ = self
            .word(WAITERS)
            .fetch_update(AcqRel, Acquire, |waiters| waiters.checked_sub(1));
    }

    /// Clears the count of waiters; call only while holding the lock.
    pub(crate) fn forget_waiters(&self) {
        self.word(WAITERS).store(0, Release);
    }

    /// Whether any thread is waiting for the lock.
    pub(crate) fn has_waiters(&self) -> bool {
        self.word(WAITERS).load(Acquire) > 0
    }

    /// The options recorded, if any.
    pub(crate) fn options(&self) -> Option<RecordedOptions> {
        let word = |index: usize| self.word(index).load(Acquire);
        let old = [
            word(OPTION_MAX_BYTES),
            word(OPTION_MAX_FILES),
            word(OPTION_PID),
        ];
        // Nothing recorded yet (a new lock file).
        if old[0] == 0 {
            return None;
        }
        let copies = [
            word(OPTIONS_COPY),
            word(OPTIONS_COPY + 1),
            word(OPTIONS_COPY + 2),
        ];
        let more = (word(OPTIONS_MARK) == OPTIONS_WHOLE && copies == old)
            .then(|| std::array::from_fn(|i| word(OPTIONS_MORE + i)));
        Some(RecordedOptions {
            max_bytes: old[0],
            max_files: old[1],
            pid: old[2],
            more,
        })
    }

    /// Records `options`; call only while holding the lock. The mark is cleared first,
    /// so that a holder killed half-way leaves no record that looks whole.
    pub(crate) fn set_options(&self, options: &RecordedOptions) {
        self.word(OPTIONS_MARK).store(0, Release);
        let old = [options.max_bytes, options.max_files, options.pid];
        for (i, value) in old.into_iter().enumerate() {
            self.word(OPTION_MAX_BYTES + i).store(value, Release);
        }
        let Some(more) = options.more else {
            return;
        };
        for (i, value) in more.into_iter().enumerate() {
            self.word(OPTIONS_MORE + i).store(value, Release);
        }
        for (i, value) in old.into_iter().enumerate() {
            self.word(OPTIONS_COPY + i).store(value, Release);
        }
        self.word(OPTIONS_MARK).store(OPTIONS_WHOLE, Release);
    }

    /// Notes that the disagreement `key` (not 0) has been reported; whether it was new.
    /// Call only while holding the lock.
    pub(crate) fn first_report_of(&self, key: u64) -> bool {
        let slots = REPORTED..REPORTED + REPORTED_SLOTS;
        if slots
            .clone()
            .any(|slot| self.word(slot).load(Acquire) == key)
        {
            return false;
        }
        let next = self.word(REPORTED_NEXT).load(Acquire);
        let slot = REPORTED + (next % REPORTED_SLOTS as u64) as usize;
        self.word(slot).store(key, Release);
        self.word(REPORTED_NEXT)
            .store(next.wrapping_add(1), Release);
        true
    }

    /// The period recorded for `file` in the words this version writes, if they are for
    /// it; call only while holding the lock.
    pub(crate) fn schedule_of(&self, file: FileId) -> Option<RecordedPeriod> {
        let recorded = FileId {
            dev: self.word(SCHEDULE_DEV).load(Acquire),
            ino: self.word(SCHEDULE_INO).load(Acquire),
        };
        (recorded == file).then(|| RecordedPeriod {
            start: self.word(SCHEDULE_START).load(Acquire) as i64,
            end: self.word(SCHEDULE_END).load(Acquire) as i64,
            since: self.word(SCHEDULE_SINCE).load(Acquire) as i64,
        })
    }

    /// Records the period of `file`; call only while holding the lock. The file is
    /// written last, so that a holder killed half-way leaves a record for no file.
    pub(crate) fn set_schedule(&self, file: FileId, period: RecordedPeriod) {
        self.word(SCHEDULE_DEV).store(0, Release);
        self.word(SCHEDULE_INO).store(0, Release);
        self.word(SCHEDULE_START)
            .store(period.start as u64, Release);
        self.word(SCHEDULE_END).store(period.end as u64, Release);
        self.word(SCHEDULE_SINCE)
            .store(period.since as u64, Release);
        self.word(SCHEDULE_DEV).store(file.dev, Release);
        self.word(SCHEDULE_INO).store(file.ino, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u64, version: u64) -> Vec<u8> {
        let mut bytes = magic.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&version.to_ne_bytes());
        bytes.resize(4096, 0);
        bytes
    }

    #[test]
    fn classifies_what_sits_at_the_lock_path() {
        assert_eq!(classify(b""), Content::Blank);
        assert_eq!(classify(&[0; 10]), Content::Blank);
        assert_eq!(classify(&[0; 4096]), Content::Blank);
        assert_eq!(classify(&header(MAGIC, LAYOUT_VERSION)), Content::Ours);
        assert_eq!(classify(&header(MAGIC, 7)), Content::OtherVersion(7));
        assert_eq!(
            classify(&header(MAGIC, LAYOUT_VERSION)[..12]),
            Content::Foreign
        );
        assert_eq!(
            classify(b"root:x:0:0:root:/root:/bin/bash\n"),
            Content::Foreign
        );
        assert_eq!(classify(&[0, 0, 0, 1]), Content::Foreign);
    }
}
