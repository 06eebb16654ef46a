//! [`AsyncResult`]: a one-time value (or error) that greenlets wait for — gevent's
//! `AsyncResult`.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::Event;
use crate::greenlet::error::BlockError;

struct Record<T, E> {
    value: RefCell<Option<Result<T, E>>>,
    ready: Event,
}

/// A value or an error, delivered once by one greenlet and read by any number of
/// waiters (gevent's `AsyncResult`, a future without a runtime).
///
/// [`set`](AsyncResult::set) or [`set_error`](AsyncResult::set_error) wakes every
/// waiter; [`get`](AsyncResult::get) returns a clone of the value. Setting again
/// replaces the outcome. Cloning gives another handle to the same result. Bound to the
/// thread's hub (`!Send`).
///
/// # Examples
///
/// ```
/// let r: green::AsyncResult<i32> = green::AsyncResult::new();
/// let r2 = r.clone();
/// green::spawn(move || r2.set(42));
/// assert_eq!(r.get(), Ok(42));
/// ```
pub struct AsyncResult<T, E = String>(Rc<Record<T, E>>);

impl<T, E> Clone for AsyncResult<T, E> {
    fn clone(&self) -> Self {
        AsyncResult(self.0.clone())
    }
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

/// Why [`AsyncResult::get`] returned no value.
///
/// ```
/// let r: green::AsyncResult<u8> = green::AsyncResult::new();
/// r.set_error("no".to_string());
/// assert_eq!(r.get(), Err(green::AsyncError::Failed("no".to_string())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsyncError<E> {
    /// The producer set an error.
    Failed(E),
    /// Not ready yet ([`try_get`](AsyncResult::try_get)).
    NotReady,
    /// The wait timed out.
    TimedOut,
    /// The wait could not happen (see [`BlockError`]).
    Blocked(BlockError),
}

impl<E: fmt::Display> fmt::Display for AsyncError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncError::Failed(e) => write!(f, "the result is an error: {e}"),
            AsyncError::NotReady => f.write_str("the result is not ready"),
            AsyncError::TimedOut => f.write_str("timed out waiting for the result"),
            AsyncError::Blocked(b) => b.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for AsyncError<E> {}

impl<T, E> AsyncResult<T, E> {
    /// An empty result.
    ///
    /// ```
    /// let r: green::AsyncResult<()> = green::AsyncResult::new();
    /// assert!(!r.ready());
    /// ```
    pub fn new() -> Self {
        AsyncResult(Rc::new(Record {
            value: RefCell::new(None),
            ready: Event::new(),
        }))
    }

    /// Stores `value` and wakes every waiter.
    ///
    /// ```
    /// let r: green::AsyncResult<&str> = green::AsyncResult::new();
    /// r.set("v");
    /// assert!(r.successful());
    /// ```
    pub fn set(&self, value: T) {
        let old = self.0.value.borrow_mut().replace(Ok(value));
        drop(old);
        self.0.ready.set();
    }

    /// Stores an error and wakes every waiter (gevent's `set_exception`).
    ///
    /// ```
    /// let r: green::AsyncResult<i32> = green::AsyncResult::new();
    /// r.set_error("bad".into());
    /// assert!(r.ready() && !r.successful());
    /// ```
    pub fn set_error(&self, error: E) {
        let old = self.0.value.borrow_mut().replace(Err(error));
        drop(old);
        self.0.ready.set();
    }

    /// Whether a value or an error has been set.
    ///
    /// ```
    /// let r: green::AsyncResult<i32> = green::AsyncResult::new();
    /// r.set(1);
    /// assert!(r.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.0.value.borrow().is_some()
    }

    /// Whether a value (not an error) has been set.
    ///
    /// ```
    /// let r: green::AsyncResult<i32> = green::AsyncResult::new();
    /// assert!(!r.successful());
    /// r.set(1);
    /// assert!(r.successful());
    /// ```
    pub fn successful(&self) -> bool {
        matches!(&*self.0.value.borrow(), Some(Ok(_)))
    }

    pub(crate) fn event(&self) -> &Event {
        &self.0.ready
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// The outcome if it is ready: the value, [`AsyncError::Failed`], or
    /// [`AsyncError::NotReady`] (gevent's `get(block=False)`).
    ///
    /// ```
    /// let r: green::AsyncResult<i32> = green::AsyncResult::new();
    /// assert_eq!(r.try_get(), Err(green::AsyncError::NotReady));
    /// r.set(3);
    /// assert_eq!(r.try_get(), Ok(3));
    /// ```
    pub fn try_get(&self) -> Result<T, AsyncError<E>> {
        match &*self.0.value.borrow() {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(AsyncError::Failed(e.clone())),
            None => Err(AsyncError::NotReady),
        }
    }

    /// Waits until the outcome is set and returns a clone of it.
    ///
    /// ```
    /// let r: green::AsyncResult<String> = green::AsyncResult::new();
    /// let w = r.clone();
    /// let reader = green::spawn(move || w.get());
    /// green::yield_now();
    /// r.set("hello".into());
    /// assert_eq!(reader.join().unwrap().unwrap(), "hello");
    /// ```
    pub fn get(&self) -> Result<T, AsyncError<E>> {
        loop {
            match self.try_get() {
                Err(AsyncError::NotReady) => {}
                r => return r,
            }
            self.0.ready.wait().map_err(AsyncError::Blocked)?;
        }
    }

    /// Like [`get`](AsyncResult::get) but gives up after `timeout` with
    /// [`AsyncError::TimedOut`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let r: green::AsyncResult<i32> = green::AsyncResult::new();
    /// assert_eq!(r.get_timeout(Duration::from_millis(5)), Err(green::AsyncError::TimedOut));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, AsyncError<E>> {
        match self.try_get() {
            Err(AsyncError::NotReady) => {}
            r => return r,
        }
        match self.0.ready.wait_timeout(timeout) {
            Ok(_) => match self.try_get() {
                Err(AsyncError::NotReady) => Err(AsyncError::TimedOut),
                r => r,
            },
            Err(b) => Err(AsyncError::Blocked(b)),
        }
    }
}

impl<T, E> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .field("successful", &self.successful())
            .finish()
    }
}
