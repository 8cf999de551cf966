//! The non-blocking writer at its edges: producers still logging while the guard is
//! dropped on another thread, and an `on_error` hook that logs through the writer whose
//! writes keep failing.

use std::io::Write;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::common::log_files::hold_lock;
use tracing_shared_file::{NonBlocking, SharedFile};

const DEADLINE: Duration = Duration::from_secs(60);

fn event(thread: usize, seq: usize) -> String {
    format!("thread {thread:02} event {seq:06} ........................................\n")
}

/// Producers log on while another thread drops the guard: the ones that find the queue
/// closed write synchronously, but only after the background thread has written what it
/// took at the close, which holds their earlier events. Every thread's events are in the
/// file once, whole, and in the order it logged them.
#[test]
fn events_logged_while_the_guard_is_dropped_keep_each_threads_order() {
    const THREADS: usize = 6;
    const EVENTS: usize = 20_000;
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let log = SharedFile::builder(dir.path().join("app.log"))
            .max_bytes(1 << 40)
            .build()
            .unwrap();
        let (writer, guard) = log.non_blocking();
        let producers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for seq in 0..EVENTS {
                        writer.write_all(event(thread, seq).as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(3));
        std::thread::spawn(move || drop(guard)).join().unwrap();
        for producer in producers {
            producer.join().unwrap();
        }
        let text = std::fs::read_to_string(log.path()).unwrap();
        let mut next = [0; THREADS];
        for line in text.lines() {
            let (thread, seq) = line
                .strip_prefix("thread ")
                .and_then(|rest| rest.split_once(" event "))
                .and_then(|(thread, rest)| Some((thread.parse::<usize>().ok()?, rest)))
                .and_then(|(thread, rest)| Some((thread, rest.get(..6)?.parse::<usize>().ok()?)))
                .unwrap_or_else(|| panic!("a torn or foreign line: {line:?}"));
            assert_eq!(line, event(thread, seq).trim_end(), "a garbled line");
            assert_eq!(
                seq, next[thread],
                "thread {thread}: event {seq} out of order"
            );
            next[thread] += 1;
        }
        assert_eq!(next, [EVENTS; THREADS], "events lost");
    }
}

/// A hook that logs through the writer on every failure, while another process holds
/// the lock and writes time out: the writes made inside the hook fail too, and must not
/// call the hook again, or it recurses until the stack overflows. Both modes.
#[test]
fn a_hook_that_logs_on_every_failure_neither_recurses_nor_hangs() {
    for non_blocking in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let slot: Arc<Mutex<Option<NonBlocking>>> = Arc::default();
            let sync_slot: Arc<Mutex<Option<SharedFile>>> = Arc::default();
            let (in_hook, sync_in_hook) = (Arc::clone(&slot), Arc::clone(&sync_slot));
            let hook_calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counted = Arc::clone(&hook_calls);
            let log = SharedFile::builder(&path)
                .max_bytes(1 << 40)
                .lock_timeout(Duration::from_millis(20))
                .on_error(move |_| {
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let writer = in_hook.lock().unwrap().clone();
                    if let Some(mut writer) = writer {
                        let _ = writer.write_all(event(99, 0).as_bytes());
                    }
                    let log = sync_in_hook.lock().unwrap().clone();
                    if let Some(log) = log {
                        let _ = (&log).write_all(event(98, 0).as_bytes());
                    }
                })
                .build()
                .unwrap();
            let holder = hold_lock(log.path());
            if non_blocking {
                // Room for two events: the rest wait for room, then time out with it.
                let (mut writer, guard) = log.non_blocking_builder().max_queued_bytes(160).finish();
                *slot.lock().unwrap() = Some(writer.clone());
                for seq in 0..20 {
                    let _ = writer.write_all(event(0, seq).as_bytes());
                }
                guard.flush();
                drop(holder);
                drop(guard);
            } else {
                *sync_slot.lock().unwrap() = Some(log.clone());
                for seq in 0..5 {
                    let _ = (&log).write_all(event(0, seq).as_bytes());
                }
                drop(holder);
            }
            slot.lock().unwrap().take();
            sync_slot.lock().unwrap().take();
            done.send((
                log.stats(),
                hook_calls.load(std::sync::atomic::Ordering::Relaxed),
            ))
            .unwrap();
        });
        let (stats, hook_calls) = finished
            .recv_timeout(DEADLINE)
            .expect("the writes never returned: the hook recursed or waited for itself");
        assert!(stats.events_dropped > 0, "{stats:?}");
        // Each failure outside the hook reaches it once; the hook's own failures do not.
        assert!(
            hook_calls <= stats.write_errors,
            "{hook_calls} hook calls for {stats:?}"
        );
    }
}
