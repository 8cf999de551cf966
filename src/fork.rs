//! Fork safety for pre-fork servers: a child never shares its parent's lock, and a fork
//! taken while another thread was mid-write cannot leave the child deadlocked.
//!
//! flock belongs to the open file description, which a forked child shares with its
//! parent, so the two would not exclude each other. A `pthread_atfork` child handler bumps
//! a generation counter; the write path compares it (one atomic load, no syscall) and
//! opens a fresh lock description in the child before its first write.
//!
//! The prepare handler takes every live [`SharedFile`](crate::SharedFile)'s mutex, so no
//! thread is inside a critical section (holding the mutex or the flock) at the moment of
//! the fork; both sides release them afterwards.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};

use crate::writer::{Inner, State};

static GENERATION: AtomicU64 = AtomicU64::new(0);
static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());
static REGISTER: Once = Once::new();

/// How many forks this process descends through; changes only in a forked child.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Makes `inner` known to the fork handlers, installing them on first use.
pub(crate) fn register(inner: &Arc<Inner>) {
    REGISTER.call_once(|| {
        if let Err(error) = crate::platform::register_fork_handlers(prepare, parent, child) {
            // Without the handlers a forked child could share its parent's lock; say so
            // rather than fail the build of a process that may never fork.
            eprintln!("tracing-shared-file: cannot register fork handlers: {error}");
        }
    });
    let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    live.retain(|weak| weak.strong_count() > 0);
    live.push(Arc::downgrade(inner));
}

/// The locks held across a fork by the forking thread. `guard` is declared first so it is
/// released before the `Arc` that keeps its mutex alive.
struct Held {
    _guard: MutexGuard<'static, State>,
    _inner: Arc<Inner>,
}

/// Everything the forking thread holds between `prepare` and `parent`/`child`.
#[derive(Default)]
struct HeldAcrossFork {
    // Fields drop in order: the files' mutexes, then the registry taken before them.
    _files: Vec<Held>,
    _live: Option<MutexGuard<'static, Vec<Weak<Inner>>>>,
}

thread_local! {
    static HELD: RefCell<HeldAcrossFork> = const {
        RefCell::new(HeldAcrossFork { _files: Vec::new(), _live: None })
    };
}

unsafe extern "C" fn prepare() {
    let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    let held: Vec<Held> = live
        .iter()
        .filter_map(Weak::upgrade)
        .map(|inner| {
            let guard = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
            // SAFETY: the guard borrows the mutex inside `inner`, which the `Held` keeps
            // alive and drops only after the guard.
            let guard = unsafe {
                std::mem::transmute::<MutexGuard<'_, State>, MutexGuard<'static, State>>(guard)
            };
            Held {
                _guard: guard,
                _inner: inner,
            }
        })
        .collect();
    let _ = HELD.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = HeldAcrossFork {
                _files: held,
                _live: Some(live),
            };
        }
    });
}

fn release() {
    let _ = HELD.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            drop(std::mem::take(&mut *slot));
        }
    });
}

unsafe extern "C" fn parent() {
    release();
}

unsafe extern "C" fn child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    release();
}
