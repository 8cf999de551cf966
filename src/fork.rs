//! Fork safety for pre-fork servers: a child never shares its parent's lock, never keeps
//! it alive, and a fork taken while another thread was mid-write cannot leave the child
//! deadlocked.
//!
//! flock belongs to the open file description, which a forked child shares with its
//! parent: the two would not exclude each other, and a child that holds on to it keeps a
//! dead parent's lock held. So the prepare handler opens a fresh description of every
//! lock file, and the child handler puts it under the number of the inherited one
//! (`dup3`), which closes the inherited one in the child at once. The child needs no
//! permission on the lock file after the fork, which a worker that drops privileges may
//! no longer have; its mapped page and its log handle are inherited as they are.
//!
//! The prepare handler also takes every live [`SharedFile`](crate::SharedFile)'s mutex, so
//! no thread is inside a critical section (holding the mutex or the flock) at the moment
//! of the fork; both sides release them afterwards. The mutex is never held while waiting
//! for another process, so this waits only for appends already under way.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};

use crate::critical_section::{Inner, State};
use crate::platform::{self, RawFd};
use crate::writer::SharedFile;

static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());
static REGISTER: Once = Once::new();

/// Runs `open`, which opens a lock file and makes the [`SharedFile`] that holds it, with
/// the fork handlers' registry locked, and makes the result known to the handlers
/// (installing them on first use). A fork meanwhile waits, so that no child ever
/// inherits a lock description the handlers do not know of.
pub(crate) fn registering<E>(
    open: impl FnOnce() -> Result<SharedFile, E>,
) -> Result<SharedFile, E> {
    REGISTER.call_once(|| {
        if let Err(error) = platform::register_fork_handlers(prepare, parent, child) {
            // Without the handlers a forked child could share its parent's lock; say so
            // rather than fail the build of a process that may never fork.
            eprintln!("tracing-shared-file: cannot register fork handlers: {error}");
        }
    });
    let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    let file = open()?;
    live.retain(|weak| weak.strong_count() > 0);
    live.push(Arc::downgrade(file.inner()));
    Ok(file)
}

/// One file's locks held across a fork, and the child's lock description. `guard` is
/// declared first so it is released before the `Arc` that keeps its mutex alive.
struct Held {
    guard: Option<MutexGuard<'static, State>>,
    inner: Arc<Inner>,
    /// The descriptor number of the lock file, inherited by the child.
    inherited: RawFd,
    /// A fresh description of the same lock file for the child, or -1 if none could be
    /// opened (no descriptor left, or no right to open it).
    fresh: RawFd,
    /// The log handle's descriptor: what the child points the lock file's number at when
    /// there is no fresh description, so that the number stays taken and holds no lock.
    stand_in: RawFd,
}

/// Everything the forking thread holds between `prepare` and `parent`/`child`.
#[derive(Default)]
struct HeldAcrossFork {
    // Fields drop in order: the files' mutexes, then the registry taken before them.
    files: Vec<Held>,
    _live: Option<MutexGuard<'static, Vec<Weak<Inner>>>>,
}

thread_local! {
    static HELD: RefCell<HeldAcrossFork> = const {
        RefCell::new(HeldAcrossFork { files: Vec::new(), _live: None })
    };
}

unsafe extern "C" fn prepare() {
    let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    let files: Vec<Held> = live
        .iter()
        .filter_map(Weak::upgrade)
        .map(|inner| {
            let guard = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
            // SAFETY: the guard borrows the mutex inside `inner`, which the `Held` keeps
            // alive and drops only after the guard.
            let guard = unsafe {
                std::mem::transmute::<MutexGuard<'_, State>, MutexGuard<'static, State>>(guard)
            };
            let inherited = guard.lock.raw_fd();
            let fresh = guard.lock.fresh_description().unwrap_or(-1);
            let stand_in = guard.handle.raw_fd();
            Held {
                guard: Some(guard),
                inner,
                inherited,
                fresh,
                stand_in,
            }
        })
        .collect();
    let _ = HELD.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = HeldAcrossFork {
                files,
                _live: Some(live),
            };
        }
    });
}

fn release(in_child: bool) {
    let _ = HELD.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            let held = std::mem::take(&mut *slot);
            for mut file in held.files {
                if in_child {
                    adopt_fresh_description(&file);
                } else if file.fresh >= 0 {
                    platform::close(file.fresh);
                }
                drop(file.guard.take());
            }
        }
    });
}

/// In the child: replaces the inherited lock description with the fresh one, so that
/// the parent's description (and any lock on it) is no longer referenced here.
fn adopt_fresh_description(file: &Held) {
    // The counters are this process's own from now on.
    file.inner.counters.reset();
    if file.fresh >= 0 && platform::replace_descriptor(file.fresh, file.inherited) {
        return;
    }
    // No fresh description: point the number at the log handle's description instead,
    // which holds no lock, so that this child never keeps its parent's lock alive (the
    // number stays taken: the lock file's owner still closes it once). Before its first
    // use here, the lock file must be opened again.
    platform::point_at(file.stand_in, file.inherited);
    file.inner.lock_inherited.store(true, Ordering::Relaxed);
}

unsafe extern "C" fn parent() {
    release(false);
}

unsafe extern "C" fn child() {
    platform::note_fork_in_child();
    release(true);
}
