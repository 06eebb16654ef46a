//! Futures inside greenlets: [`block_on`] polls a `Future` from a greenlet, and
//! [`JoinFuture`] lets async code await a greenlet.
//!
//! `block_on`'s waker is a [`RemoteWaker`]: it ends the
//! greenlet's park from this thread at once, or from any other thread through the hub's
//! cross-thread waker. A wake that comes before the park (during the poll, or between
//! the poll and the park) is remembered by the wait and ends the next park at once, so
//! none is lost.

use std::cell::RefCell;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::api::spawn::JoinHandle;
use crate::greenlet::error::JoinError;
use crate::hub::remote::{RemoteWait, RemoteWaker};

struct GreenletWaker(RemoteWaker);

impl Wake for GreenletWaker {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake();
    }
}

/// Runs `fut` to completion from the current greenlet, parking only this greenlet
/// while the future is pending: other greenlets run until the future's waker is used,
/// from this thread or any other. Returns the future's output.
///
/// The future is polled on this thread, so it need not be `Send`. Anything it waits on
/// must be woken by something that runs meanwhile: another greenlet, another thread, a
/// helper thread of [`run_blocking`](crate::run_blocking). Futures of async runtimes
/// that need their runtime's reactor or timer (tokio's sockets and `sleep`) only work
/// inside that runtime: run them with the runtime's own `block_on`, inside
/// `green::monkey::event_loop` so that the other greenlets keep running. Tokio's
/// channels, `Notify`, semaphores and oneshots need no reactor and work here.
///
/// # Panics
///
/// When called from the hub (a timer callback or a `link` callback), where nothing may
/// wait, or if the thread's reactor cannot be created.
///
/// # Examples
///
/// A future woken from another thread, while a greenlet keeps ticking:
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::sync::{Arc, Mutex};
/// use std::task::{Context, Poll, Waker};
/// use std::time::Duration;
///
/// #[derive(Default)]
/// struct Shared { done: bool, waker: Option<Waker> }
/// struct Done(Arc<Mutex<Shared>>);
/// impl Future for Done {
///     type Output = &'static str;
///     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
///         let mut s = self.0.lock().unwrap();
///         if s.done { return Poll::Ready("done") }
///         s.waker = Some(cx.waker().clone());
///         Poll::Pending
///     }
/// }
///
/// let shared = Arc::new(Mutex::new(Shared::default()));
/// let s = shared.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(50));
///     let mut s = s.lock().unwrap();
///     s.done = true;
///     s.waker.take().map(Waker::wake);
/// });
/// let ticker = green::spawn(|| (0..5).for_each(|_| green::sleep(Duration::from_millis(1))));
/// assert_eq!(green::block_on(Done(shared)), "done");
/// assert!(ticker.is_finished()); // it ran while main waited
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let wait = match RemoteWait::new() {
        Ok(w) => w,
        Err(e) => panic!("green::block_on: cannot create the reactor: {e}"),
    };
    let waker = Waker::from(Arc::new(GreenletWaker(wait.waker())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        if let Err(e) = wait.park(None) {
            panic!("green::block_on: {e}");
        }
    }
}

/// A [`JoinHandle`] as a `Future`: resolves to what [`JoinHandle::join`] returns once
/// the greenlet has finished. Made by `.await`ing a `JoinHandle` (it implements
/// [`IntoFuture`]) or by [`JoinHandle::into_future`](IntoFuture::into_future).
///
/// Like the handle, it is bound to the greenlet's thread (not `Send`): await it in
/// [`block_on`] or in a current-thread async runtime running on that thread. The
/// greenlet runs when the awaiting greenlet parks (as any greenlet does); its end wakes
/// the awaiting task's waker.
///
/// ```
/// let h = green::spawn(|| 6 * 7);
/// let v = green::block_on(async move { h.await });
/// assert_eq!(v.unwrap(), 42);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct JoinFuture<T: 'static> {
    handle: JoinHandle<T>,
    /// The waker of the latest poll, shared with the `link` callback that wakes it.
    waker: Option<Rc<RefCell<Option<Waker>>>>,
}

impl<T: 'static> std::fmt::Debug for JoinFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinFuture")
            .field("handle", &self.handle)
            .finish()
    }
}

// Nothing in a `JoinFuture` is pinned structurally (the `T` is only a marker).
impl<T: 'static> Unpin for JoinFuture<T> {}

impl<T: 'static> Future for JoinFuture<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(r) = this.handle.try_take() {
            return Poll::Ready(r);
        }
        match &this.waker {
            Some(slot) => {
                let mut w = slot.borrow_mut();
                match &*w {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
            }
            None => {
                let slot = Rc::new(RefCell::new(Some(cx.waker().clone())));
                let s = slot.clone();
                this.handle.link(move |_| {
                    // Taken out first: waking may run code that polls again.
                    let w = s.borrow_mut().take();
                    if let Some(w) = w {
                        w.wake();
                    }
                });
                this.waker = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl<T: 'static> IntoFuture for JoinHandle<T> {
    type Output = Result<T, JoinError>;
    type IntoFuture = JoinFuture<T>;

    /// The handle as a [`JoinFuture`].
    ///
    /// ```
    /// use std::future::IntoFuture;
    /// let fut = green::spawn(|| "hi").into_future();
    /// assert_eq!(green::block_on(fut).unwrap(), "hi");
    /// ```
    fn into_future(self) -> JoinFuture<T> {
        JoinFuture {
            handle: self,
            waker: None,
        }
    }
}
