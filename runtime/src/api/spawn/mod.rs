//! The gevent layer: [`spawn`], [`spawn_later`], [`Builder`], [`JoinHandle`] and
//! [`joinall`].
//!
//! A spawned greenlet's parent is the hub. Spawning only schedules it: nothing runs until
//! the caller blocks or yields (gevent's semantics).
//!
//! This file holds [`Builder`], the spawn functions and the [`JoinHandle`] type;
//! `handle.rs` holds its methods and the joins of one greenlet, `many.rs` the functions
//! over several handles.

use std::any::Any;
use std::io;
use std::marker::PhantomData;
use std::panic::Location;
use std::time::Duration;

use crate::greenlet::Greenlet;
use crate::greenlet::outcome::KEPT;
use crate::greenlet::thread::{self, Thread};
use crate::greenlet::value::Value;
use crate::hub::timer::deadline_after;
use crate::hub::with_hub;

mod handle;
mod many;

pub use handle::LinkId;
pub(crate) use handle::wait_dead;
pub use many::{joinall, joinall_timeout, killall, killall_nowait, try_joinall};

/// `v`, the value a spawned function returned, as its type `T`. `Value::new` does not
/// wrap a `Value` in another, so for `T = Value` the value is the `T` itself.
fn value_as<T: 'static>(v: &Value) -> Option<&T> {
    match (v as &dyn Any).downcast_ref::<T>() {
        Some(t) => Some(t),
        None => v.downcast_ref::<T>(),
    }
}

/// [`value_as`], moving the value out.
fn value_into<T: 'static>(v: Value) -> Option<T> {
    let mut v = Some(v);
    if let Some(t) = (&mut v as &mut dyn Any).downcast_mut::<Option<T>>() {
        return t.take();
    }
    v.and_then(|v| v.downcast::<T>().ok())
}

/// An owned permission to join a spawned greenlet: wait for it, read its value, kill it
/// (gevent's `Greenlet` object returned by `spawn`).
///
/// Dropping the handle detaches the greenlet: it keeps running. If it panics and nobody
/// joins it, the panic is logged through `log` (as gevent prints a crashed greenlet).
/// A value it returns that nobody takes is dropped when the last handle to the greenlet
/// goes (this one, a [`Greenlet`] clone, or the hub's own once it has run), possibly
/// in the hub: a `Drop` of the value must not block.
///
/// Bound to its thread (not `Send`).
///
/// # Examples
///
/// ```
/// let h = green::spawn(|| 6 * 7);
/// assert!(!h.is_finished()); // spawned, not yet run
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub struct JoinHandle<T> {
    g: Greenlet,
    _value: PhantomData<T>,
}

/// Configures a greenlet before spawning it: name and stack size.
///
/// # Examples
///
/// ```
/// let h = green::Builder::new()
///     .name("worker")
///     .stack_size(256 * 1024)
///     .spawn(|| green::getcurrent().name().map(String::from))
///     .unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the thread's defaults.
    ///
    /// ```
    /// let h = green::Builder::new().spawn(|| 1).unwrap();
    /// assert_eq!(h.join().unwrap(), 1);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet (shown by `Debug`, in logs, and in stack-overflow reports).
    ///
    /// ```
    /// let h = green::Builder::new().name("a").spawn(|| ()).unwrap();
    /// assert_eq!(h.greenlet().name(), Some("a"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the usable stack size in bytes (rounded up to pages).
    ///
    /// ```
    /// let h = green::Builder::new().stack_size(1 << 20).spawn(|| [0u8; 500_000].len()).unwrap();
    /// assert_eq!(h.join().unwrap(), 500_000);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns `f` on a new greenlet (see [`spawn`]). Fails cleanly when no stack can be
    /// allocated (out of memory, or the kernel's mapping limit).
    ///
    /// ```
    /// let h = green::Builder::new().spawn(|| "ok").unwrap();
    /// assert_eq!(h.join().unwrap(), "ok");
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let at = Location::caller();
        let h = thread::with(|t| self.make(t, f, at))?;
        with_hub(|hub| hub.start_new(&h.g));
        Ok(h)
    }

    /// Spawns `f` to start after `delay` (gevent's `spawn_later`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = Instant::now();
    /// let h = green::Builder::new().spawn_later(Duration::from_millis(20), || ()).unwrap();
    /// h.join().unwrap();
    /// assert!(t.elapsed() >= Duration::from_millis(20));
    /// ```
    #[track_caller]
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let at = Location::caller();
        let h = thread::with(|t| self.make(t, f, at))?;
        with_hub(|hub| hub.start_at(&h.g, deadline_after(delay)));
        Ok(h)
    }

    /// Creates the greenlet without starting it (gevent's `Greenlet(f)`): nothing runs
    /// until [`JoinHandle::start`] or [`JoinHandle::start_later`]. Until then it holds
    /// its stack; dropping every handle to it drops `f` unrun. Fails cleanly when no
    /// stack can be allocated.
    ///
    /// ```
    /// let h = green::Builder::new().name("later").build(|| 2 + 2).unwrap();
    /// green::yield_now();
    /// assert!(!h.is_started() && !h.is_finished());
    /// h.start();
    /// assert_eq!(h.join().unwrap(), 4);
    /// ```
    #[track_caller]
    pub fn build<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let at = Location::caller();
        thread::with(|t| self.make(t, f, at))
    }

    #[inline]
    fn make<F, T>(
        self,
        t: &Thread,
        f: F,
        at: &'static Location<'static>,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let hub_g = t.hub.clone();
        // The greenlet's death keeps the outcome in its record (`Outcome`); panics and
        // kills are caught by the greenlet's own frame (see `Greenlet::create`).
        let g = Greenlet::create(
            t,
            move |_: Value| f(),
            self.name,
            self.stack_size,
            Some(hub_g),
            at,
        )?;
        g.0.cold.outcome.set(KEPT);
        Ok(JoinHandle {
            g,
            _value: PhantomData,
        })
    }
}

/// Spawns `f` on a new greenlet whose parent is the hub, and returns a handle to join it
/// (gevent's `gevent.spawn`). Nothing runs until the caller blocks or yields.
///
/// # Panics
///
/// If no stack can be allocated; [`try_spawn`] or [`Builder::spawn`] report that as an
/// error instead.
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let h = green::spawn(move || r.set(true));
/// assert!(!ran.get()); // not yet: we have not blocked
/// h.join().unwrap();
/// assert!(ran.get());
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    match try_spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("green: cannot spawn a greenlet: {e}"),
    }
}

/// Like [`spawn`], but a failure to allocate the stack is an error, not a panic.
///
/// ```
/// let h = green::try_spawn(|| 1).unwrap();
/// assert_eq!(h.join().unwrap(), 1);
/// ```
#[track_caller]
pub fn try_spawn<F, T>(f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new().spawn(f)
}

/// Spawns `f` to start after `delay` (gevent's `spawn_later`).
///
/// # Panics
///
/// If no stack can be allocated (see [`Builder::spawn_later`]).
///
/// ```
/// let h = green::spawn_later(std::time::Duration::from_millis(5), || "late");
/// assert_eq!(h.join().unwrap(), "late");
/// ```
#[track_caller]
pub fn spawn_later<F, T>(delay: Duration, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    match Builder::new().spawn_later(delay, f) {
        Ok(h) => h,
        Err(e) => panic!("green: cannot spawn a greenlet: {e}"),
    }
}
