//! Greenlet-local storage: [`green_local!`](crate::green_local) and [`LocalKey`] —
//! gevent's `local`, Rust's `thread_local!` for greenlets.
//!
//! Each greenlet sees its own value of a greenlet-local, created on first access by
//! the initializer and dropped when the greenlet finishes (in the hub, after its exit
//! callbacks). The main greenlet's values live until the thread ends; code running in
//! the hub (timer callbacks, links) has values of its own that live as long.
//!
//! Values are kept in a small per-greenlet list that switching never touches.

use std::any::Any;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::greenlet::getcurrent;

/// A key to a greenlet-local value; declare it with [`green_local!`](crate::green_local).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// green::green_local! {
///     static REQUEST_ID: Cell<u32> = Cell::new(0);
/// }
/// let hs: Vec<_> = (1..=3).map(|n| green::spawn(move || {
///     REQUEST_ID.with(|id| id.set(n));
///     green::yield_now(); // the others set theirs meanwhile
///     REQUEST_ID.with(|id| id.get())
/// })).collect();
/// let ids: Vec<u32> = green::joinall(hs).into_iter().map(Result::unwrap).collect();
/// assert_eq!(ids, [1, 2, 3]);
/// REQUEST_ID.with(|id| assert_eq!(id.get(), 0)); // main has its own
/// ```
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    /// A process-unique key, assigned on first use (statics' addresses are not
    /// guaranteed distinct when their contents are equal).
    key: AtomicUsize,
}

static NEXT_KEY: AtomicUsize = AtomicUsize::new(1);

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            init,
            key: AtomicUsize::new(0),
        }
    }

    fn key(&self) -> usize {
        let k = self.key.load(Ordering::Relaxed);
        if k != 0 {
            return k;
        }
        let new = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        match self
            .key
            .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => new,
            Err(k) => k,
        }
    }

    /// Runs `f` with the current greenlet's value, creating it first if needed.
    ///
    /// No borrow is held while `f` runs: it may switch, or use other greenlet-locals.
    /// The value is shared (`&T`): use a `Cell` or `RefCell` to change it.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// green::green_local!(static NAMES: RefCell<Vec<String>> = RefCell::new(Vec::new()));
    /// NAMES.with(|n| n.borrow_mut().push("main".into()));
    /// assert_eq!(NAMES.with(|n| n.borrow().len()), 1);
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self.key();
        let g = getcurrent();
        let found =
            g.0.cold
                .locals
                .borrow()
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone());
        let value = match found {
            Some(v) => v,
            None => {
                // The initializer runs without a borrow: it may use other locals.
                let v: Rc<dyn Any> = Rc::new((self.init)());
                g.0.cold.locals.borrow_mut().push((key, v.clone()));
                v
            }
        };
        match value.downcast_ref::<T>() {
            Some(v) => f(v),
            None => unreachable!("green: greenlet-local of the wrong type"),
        }
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// Declares greenlet-local statics, like [`thread_local!`] but one value per greenlet,
/// dropped when the greenlet finishes. Access them with [`LocalKey::with`].
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// green::green_local! {
///     /// How many requests this greenlet handled.
///     static HANDLED: Cell<u32> = Cell::new(0);
///     static USER: std::cell::RefCell<String> = std::cell::RefCell::new(String::new());
/// }
/// let h = green::spawn(|| {
///     HANDLED.with(|n| n.set(n.get() + 1));
///     HANDLED.with(|n| n.get())
/// });
/// assert_eq!(h.join().unwrap(), 1);
/// assert_eq!(HANDLED.with(|n| n.get()), 0);
/// USER.with(|u| u.borrow_mut().push_str("main"));
/// ```
#[macro_export]
macro_rules! green_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr_2021; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::LocalKey<$t> = {
            fn __green_local_init() -> $t {
                $init
            }
            $crate::LocalKey::new(__green_local_init)
        };
        $crate::green_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr_2021) => {
        $crate::green_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
