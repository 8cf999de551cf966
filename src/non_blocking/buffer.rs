//! The two buffers of the non-blocking writer, and the atomic cursor that says which one
//! producers fill and how much of it is taken.
//!
//! A producer reserves room for its event with one compare-and-swap on the cursor, copies
//! the event into its range, records where it ends, and counts itself as committed. The
//! background thread swaps the cursor over to the other buffer, waits until every
//! reservation made in the old one is committed, and writes it out in place. No lock is
//! taken on either side, and no memory is allocated per event.

use std::io;
use std::ptr::NonNull;

use crate::platform::AnonymousMemory;
use std::sync::atomic::{AtomicU64, Ordering};

// The cursor's layout: `CLOSED | ACTIVE | count << COUNT_SHIFT | offset`, where `count`
// is the events reserved in the active buffer and `offset` their bytes.

/// Set once no background thread will take more events: producers write synchronously.
pub(super) const CLOSED: u64 = 1 << 63;
/// Which buffer producers fill.
const ACTIVE: u64 = 1 << 62;
const COUNT_SHIFT: u32 = 31;
const OFFSET_MASK: u64 = (1 << COUNT_SHIFT) - 1;
const COUNT_MASK: u64 = ((1 << 31) - 1) << COUNT_SHIFT;

/// The largest capacity a buffer may have, so that offsets and counts fit the cursor.
pub(super) const MAX_CAPACITY: usize = 1 << 30;

/// What each event costs in a buffer besides its bytes: where it ends.
pub(super) const END_BYTES: usize = std::mem::size_of::<usize>();

/// A cursor value taken apart.
#[derive(Clone, Copy)]
pub(super) struct Cursor(pub(super) u64);

impl Cursor {
    pub(super) fn closed(self) -> bool {
        self.0 & CLOSED != 0
    }
    pub(super) fn active(self) -> usize {
        usize::from(self.0 & ACTIVE != 0)
    }
    /// Events reserved in the active buffer.
    pub(super) fn count(self) -> usize {
        ((self.0 & COUNT_MASK) >> COUNT_SHIFT) as usize
    }
    /// Event bytes reserved in the active buffer.
    pub(super) fn offset(self) -> usize {
        (self.0 & OFFSET_MASK) as usize
    }
    /// The memory the active buffer's events hold, ends included.
    pub(super) fn held(self) -> usize {
        self.offset() + self.count() * END_BYTES
    }
    /// A fresh cursor on buffer `active`, empty.
    pub(super) fn empty(active: usize, closed: bool) -> u64 {
        (if active == 1 { ACTIVE } else { 0 }) | if closed { CLOSED } else { 0 }
    }
    /// This cursor with one more event of `len` bytes.
    pub(super) fn plus(self, len: usize) -> u64 {
        self.0 + len as u64 + (1 << COUNT_SHIFT)
    }
}

/// One buffer: `capacity` bytes of events, then room for the end of as many events as
/// could fit (each costs at least one byte and `END_BYTES`), mapped fresh so that untouched
/// pages cost nothing. Shared between threads: producers write disjoint reserved ranges,
/// and the background thread reads a buffer only once every reservation in it is
/// committed (see `committed`), with release/acquire ordering between them.
pub(super) struct Buffer {
    /// `None` when none could be mapped: the buffer then holds nothing.
    memory: Option<AnonymousMemory>,
    ends_at: usize,
    /// Reservations in this buffer whose event is copied in; the background thread waits
    /// for this to reach the count it swapped out.
    pub(super) committed: AtomicU64,
}

impl Buffer {
    pub(super) fn new(capacity: usize) -> io::Result<Buffer> {
        let ends_at = capacity.next_multiple_of(END_BYTES);
        let len = ends_at + (capacity / (END_BYTES + 1) + 1) * END_BYTES;
        let memory = AnonymousMemory::map(len)?;
        Ok(Buffer {
            memory: Some(memory),
            ends_at,
            committed: AtomicU64::new(0),
        })
    }

    /// A buffer that holds nothing, for when none can be mapped.
    pub(super) fn none() -> Buffer {
        Buffer {
            memory: None,
            ends_at: 0,
            committed: AtomicU64::new(0),
        }
    }

    /// Copies `event` in as event number `index`, at `offset`.
    ///
    /// # Safety
    /// The caller reserved exactly this range and index through the cursor, so that no one
    /// else touches them until the background thread has written them out.
    pub(super) unsafe fn put(&self, index: usize, offset: usize, event: &[u8]) {
        let end = offset + event.len();
        debug_assert!(end <= self.ends_at && (index + 1) * END_BYTES <= self.len() - self.ends_at);
        // SAFETY: in bounds (the reservation fits the capacity), and ours alone.
        unsafe {
            std::ptr::copy_nonoverlapping(event.as_ptr(), self.base().add(offset), event.len());
            self.ends().add(index).write(end);
        }
    }

    fn base(&self) -> *mut u8 {
        self.memory
            .as_ref()
            .map_or(NonNull::dangling().as_ptr(), AnonymousMemory::as_ptr)
    }

    fn len(&self) -> usize {
        self.memory.as_ref().map_or(0, AnonymousMemory::size)
    }

    fn ends(&self) -> *mut usize {
        // SAFETY: `ends_at` is within the mapping; page-aligned base plus a multiple of 8.
        unsafe { self.base().add(self.ends_at).cast() }
    }

    /// The first `count` events, `bytes` bytes, and where each ends.
    ///
    /// # Safety
    /// Every reservation up to these is committed, and no producer can reserve in this
    /// buffer until the caller is done with the slices (it is not the active one).
    pub(super) unsafe fn events(&self, count: usize, bytes: usize) -> (&[u8], &[usize]) {
        // SAFETY: in bounds, written, and not written again while borrowed.
        unsafe {
            (
                std::slice::from_raw_parts(self.base(), bytes),
                std::slice::from_raw_parts(self.ends(), count),
            )
        }
    }

    /// Waits until `count` reservations are committed. Only the background thread waits:
    /// for producers already between their reservation and their commit.
    pub(super) fn wait_committed(&self, count: usize) {
        let mut spins = 0u32;
        while self.committed.load(Ordering::Acquire) < count as u64 {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else if spins < 200 {
                std::thread::yield_now();
            } else {
                // A producer preempted mid-copy: it finishes within its next time slice.
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}
