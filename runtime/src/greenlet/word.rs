//! What crosses a coroutine switch: one machine word.
//!
//! The trampoline and a greenlet talk through corosensei's `resume(input)` and
//! `suspend(request)`. Rich enums there (an `Input` with boxed payloads, a request
//! holding a greenlet handle) are moved through several layers in memory on both sides
//! of the stack switch: a raw corosensei round trip passing such an `Input` and `Request`
//! costs 108 instructions, passing a word 40 (callgrind), against 123 for green's whole
//! switch round trip (`benches/instr.rs`). So only a word crosses. The common inputs
//! (`()`, the end of
//! a park) and requests (park, yield, back to main, switch to a greenlet) are encoded in
//! it; a small value (one word, no drop glue: see `Value`) travels as its two words in
//! a thread-local (`thread::Hot::inline`); anything richer (a boxed value, a panic
//! payload, `LoopExit`) waits in a side slot (`Thread::xfer_input`). Either is filled right before the switch and
//! emptied right after it, with no other code running between.
//!
//! Layout of a request word: `kind << 3 | input word`; the target of a switch travels as
//! a strong `Rc` pointer in a thread-local cell (`thread::Hot::target`).
//!
//! The trampoline's loop carries inputs as words too, and so does a queued greenlet's
//! pending input (`Record::set_pending`, with its own rich slot): at most one word in
//! flight has its payload in a thread-local or the side slot at any time.

use std::ptr;
use std::rc::Rc;

use crate::greenlet::Greenlet;
use crate::greenlet::switch::{Input, Output, Wake};
use crate::greenlet::thread::{self, HOT};
use crate::greenlet::value::Value;

/// An input or a request encoded in a machine word.
pub(crate) type Word = usize;

/// The word for `Input::Value(Value::none())`.
pub(crate) const IN_NONE: Word = 0;
/// The word for `Input::Wake(Wake::Unparked)`.
pub(crate) const IN_UNPARKED: Word = 1;
/// The word for `Input::Wake(Wake::TimedOut)`.
pub(crate) const IN_TIMED_OUT: Word = 2;
/// Any other input: it waits in a side slot.
pub(crate) const IN_SLOT: Word = 3;
/// `Input::Value` of a value stored inline (a small `Copy`-like payload): its two words
/// wait in the thread-local `Hot::inline` (cheaper than the slot's whole `Input`).
const IN_INLINE: Word = 4;
const IN_MASK: Word = 7;

pub(crate) const REQ_PARK: Word = 0;
pub(crate) const REQ_MAIN: Word = 1 << 3;
pub(crate) const REQ_SWITCH: Word = 2 << 3;
pub(crate) const REQ_YIELD: Word = 3 << 3;

/// Encodes `input` for a switch (storing it in the side slot if it is not common).
#[inline(always)]
pub(crate) fn pack_input(input: Input) -> Word {
    pack_with(
        input,
        |w| w,
        |input| match input {
            Input::Value(v) => pack_value(v),
            other => to_slot(other),
        },
    )
}

/// Encodes `Input::Value(v)` for a switch.
#[inline(always)]
pub(crate) fn pack_value(v: Value) -> Word {
    if v.is_none() {
        // Owns nothing: skip the drop glue.
        std::mem::forget(v);
        return IN_NONE;
    }
    match v.into_inline() {
        Ok(parts) => {
            HOT.with(|h| h.inline.set(parts));
            IN_INLINE
        }
        Err(v) => to_slot(Input::Value(v)),
    }
}

/// What an explicit switch returns for the input word it was resumed with (see
/// `switch::into_value`): a value, or a kill raised here.
#[inline(always)]
pub(crate) fn value_of(w: Word) -> Value {
    match w & IN_MASK {
        IN_INLINE => Value::from_inline(HOT.with(|h| h.inline.get())),
        IN_SLOT => crate::greenlet::switch::into_value(from_slot()),
        // The empty value, or the end of a park (a wake of a greenlet that had switched
        // away explicitly): nothing.
        _ => Value::none(),
    }
}

/// Hands `input` to `common` as its word if it is a common one, else to `rich` as it is.
/// (A match here rather than a `Result`: the common cases stay in registers.)
#[inline(always)]
pub(crate) fn pack_with<R>(
    input: Input,
    common: impl FnOnce(Word) -> R,
    rich: impl FnOnce(Input) -> R,
) -> R {
    // The common inputs own nothing: forgetting them skips the (out-of-line) drop glue
    // that the compiler would otherwise call on them.
    let w = match &input {
        Input::Wake(Wake::Unparked) => IN_UNPARKED,
        Input::Wake(Wake::TimedOut) => IN_TIMED_OUT,
        Input::Value(v) if v.is_none() => IN_NONE,
        _ => return rich(input),
    };
    std::mem::forget(input);
    common(w)
}

/// The input of a common word (not [`IN_SLOT`]).
#[inline(always)]
pub(crate) fn decode(w: Word) -> Input {
    match w & IN_MASK {
        IN_UNPARKED => Input::Wake(Wake::Unparked),
        IN_TIMED_OUT => Input::Wake(Wake::TimedOut),
        IN_INLINE => Input::Value(Value::from_inline(HOT.with(|h| h.inline.get()))),
        _ => Input::Value(Value::none()),
    }
}

/// Whether the word's input waits in a slot.
#[inline(always)]
pub(crate) fn is_rich(w: Word) -> bool {
    w & IN_MASK == IN_SLOT
}

/// Puts a rich input in flight: into the side slot.
#[cold]
#[inline(never)]
pub(crate) fn to_slot(input: Input) -> Word {
    // The slot is empty unless a trampoline unwound with a word in flight: drop that one.
    thread::with(|t| drop(t.xfer_input.replace(Some(input))));
    IN_SLOT
}

/// Decodes an input word made by [`pack_input`].
#[inline(always)]
pub(crate) fn unpack_input(w: Word) -> Input {
    if is_rich(w) { from_slot() } else { decode(w) }
}

#[cold]
#[inline(never)]
fn from_slot() -> Input {
    // The slot was filled right before the switch that brought this word.
    match thread::with(|t| t.xfer_input.take()) {
        Some(input) => input,
        None => Input::Value(Value::none()),
    }
}

/// The kind of a request word: one of the `REQ_` constants.
#[inline(always)]
pub(crate) fn request_kind(w: Word) -> Word {
    w & !IN_MASK
}

/// The input word of a `REQ_MAIN` or `REQ_SWITCH` request word.
#[inline(always)]
pub(crate) fn request_input(w: Word) -> Word {
    w & IN_MASK
}

/// Stores the target of a `REQ_SWITCH` request word about to be sent.
#[inline(always)]
pub(crate) fn set_target(t: Greenlet) {
    HOT.with(|h| h.target.set(Rc::into_raw(t.into_rc())));
}

/// The target of the `REQ_SWITCH` request word just received.
#[inline(always)]
pub(crate) fn take_target() -> Greenlet {
    let p = HOT.with(|h| h.target.replace(ptr::null()));
    debug_assert!(!p.is_null());
    // SAFETY: `set_target` stored `Rc::into_raw` of a live handle right before the
    // switch that brought the request word, and only the trampoline, once per such word,
    // takes it: this turns that strong count back into the handle.
    Greenlet::from_rc(unsafe { Rc::from_raw(p) })
}

/// Stores the output of a returning greenlet that was not spawned, for the trampoline
/// (the coroutine returns a word; a spawned greenlet keeps its outcome in its record).
#[inline]
pub(crate) fn put_output(out: Output) {
    thread::with(|t| t.xfer_output.set(Some(out)));
}

/// Takes the output stored by [`put_output`].
pub(crate) fn take_output() -> Output {
    match thread::with(|t| t.xfer_output.take()) {
        Some(out) => out,
        None => Ok(Value::none()),
    }
}
