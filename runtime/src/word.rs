//! What crosses a coroutine switch: one machine word.
//!
//! The driver and a greenlet talk through corosensei's `resume(input)` and
//! `suspend(request)`. Passing the [`Input`] and [`Request`] enums themselves (24 and 32
//! bytes, with boxed payloads) costs about 10 ns per round trip on top of a 2 ns raw
//! switch: corosensei moves them through several layers in memory on both sides of the
//! stack switch. So only a word crosses. The common inputs (`()`, the end of a park) and
//! requests (park, back to main, switch to a greenlet) are encoded in it; anything richer
//! (a value, a panic payload, `LoopExit`) waits in the hub's side slot, filled right
//! before the switch and emptied right after it, with no other code running between.
//!
//! Layout of a request word: `kind << 2 | input word`; the target of a switch travels as
//! a strong `Rc` pointer in a thread-local cell.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use crate::driver::{Input, Output, Request};
use crate::greenlet::{Greenlet, Inner};
use crate::hub::with_hub;
use crate::park::Wake;
use crate::value::Value;

/// The word for `Input::Value(Value::none())`.
const IN_NONE: usize = 0;
/// The word for `Input::Wake(Wake::Unparked)`.
const IN_UNPARKED: usize = 1;
/// The word for `Input::Wake(Wake::TimedOut)`.
const IN_TIMED_OUT: usize = 2;
/// Any other input: it waits in the hub's side slot.
const IN_SLOT: usize = 3;
const IN_MASK: usize = 3;

const REQ_PARK: usize = 0;
const REQ_MAIN: usize = 1 << 2;
const REQ_SWITCH: usize = 2 << 2;

thread_local! {
    /// The target of a `Request::Switch` in flight: a strong handle turned into a raw
    /// pointer by [`pack_request`] and taken back by [`unpack_request`].
    static TARGET: Cell<*const Inner> = const { Cell::new(ptr::null()) };
}

/// Encodes `input` for a switch (storing it in the side slot if it is not common).
#[inline(always)]
pub(crate) fn pack_input(input: Input) -> usize {
    match input {
        Input::Wake(Wake::Unparked) => IN_UNPARKED,
        Input::Wake(Wake::TimedOut) => IN_TIMED_OUT,
        Input::Value(v) if v.is_none() => {
            // An empty value owns nothing: forgetting it skips the drop glue.
            std::mem::forget(v);
            IN_NONE
        }
        other => to_slot(other),
    }
}

#[cold]
#[inline(never)]
fn to_slot(input: Input) -> usize {
    with_hub(|h| {
        let old = h.xfer_input.replace(Some(input));
        debug_assert!(old.is_none(), "side slot already full");
        drop(old);
    });
    IN_SLOT
}

/// Decodes an input word made by [`pack_input`].
#[inline(always)]
pub(crate) fn unpack_input(w: usize) -> Input {
    match w & IN_MASK {
        IN_NONE => Input::Value(Value::none()),
        IN_UNPARKED => Input::Wake(Wake::Unparked),
        IN_TIMED_OUT => Input::Wake(Wake::TimedOut),
        _ => from_slot(),
    }
}

#[cold]
#[inline(never)]
fn from_slot() -> Input {
    // The slot was filled right before the switch that brought this word.
    with_hub(|h| h.xfer_input.take()).unwrap_or(Input::Value(Value::none()))
}

/// Encodes a request for `suspend`.
#[inline(always)]
pub(crate) fn pack_request(req: Request) -> usize {
    match req {
        Request::Park => REQ_PARK,
        Request::Main(i) => REQ_MAIN | pack_input(i),
        Request::Switch(t, i) => {
            TARGET.with(|c| c.set(Rc::into_raw(t.0)));
            REQ_SWITCH | pack_input(i)
        }
    }
}

/// Decodes a request word made by [`pack_request`].
#[inline(always)]
pub(crate) fn unpack_request(w: usize) -> Request {
    match w & !IN_MASK {
        REQ_PARK => Request::Park,
        REQ_MAIN => Request::Main(unpack_input(w)),
        _ => {
            let p = TARGET.with(|c| c.replace(ptr::null()));
            debug_assert!(!p.is_null());
            // SAFETY: `pack_request` stored `Rc::into_raw` of a live handle right before
            // the switch that brought this word, and nothing else takes it: this turns
            // that strong count back into the handle.
            let t = Greenlet(unsafe { Rc::from_raw(p) });
            Request::Switch(t, unpack_input(w))
        }
    }
}

/// Stores a returning greenlet's output for the driver (the coroutine returns a word).
pub(crate) fn put_output(out: Output) {
    with_hub(|h| h.xfer_output.set(Some(out)));
}

/// Takes the output stored by [`put_output`].
pub(crate) fn take_output() -> Output {
    with_hub(|h| h.xfer_output.take()).unwrap_or(Ok(Value::none()))
}
