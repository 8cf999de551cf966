//! The panics the tests cause on purpose, kept off stderr; any other panic (a failed
//! assertion) is still printed by the default hook. One hook for the whole test binary:
//! a panic hook is process-wide, and every module here runs in the same process.

use std::sync::{Mutex, Once, PoisonError};

/// The messages of the panics caused on purpose, from every module that asked.
static EXPECTED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// From now on, panics with one of `messages` print nothing.
pub(crate) fn silence_panics(messages: &[&'static str]) {
    static HOOK: Once = Once::new();
    {
        let mut expected = EXPECTED.lock().unwrap_or_else(PoisonError::into_inner);
        for message in messages {
            if !expected.contains(message) {
                expected.push(message);
            }
        }
    }
    HOOK.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = payload_text(info).is_some_and(|message| {
                EXPECTED
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(&message)
            });
            if !expected {
                default_hook(info);
            }
        }));
    });
}

/// The message of a panic raised with `panic!("literal")` or `panic!("{}", ...)`.
fn payload_text<'a>(info: &'a std::panic::PanicHookInfo<'_>) -> Option<&'a str> {
    let payload = info.payload();
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
