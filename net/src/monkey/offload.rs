//! Running a hooked call on the blocking pool while the calling greenlet parks: name
//! resolution, waits for children, file IO.
//!
//! Two flavours, by whose memory the job touches:
//! - [`run_borrowed`]: the job reads or writes the caller's memory (a `read` buffer), so
//!   the caller waits until the job has run, whatever happens: a kill or timeout that
//!   arrives meanwhile is held and handed back, to be deferred once the call returns.
//! - [`run_owned`]: the job owns everything it touches, so a kill or timeout ends the
//!   wait at once; the job finishes unobserved and its result is dropped (whose `Drop`
//!   frees what the real call allocated).
//!
//! When no helper thread can be had (the process is out of threads) or the thread has
//! no reactor, the job runs in place: the call blocks the thread, as unpatched.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use green_runtime::__net::RemoteWait;

/// A kill or timeout caught while parked.
pub(crate) type Payload = Box<dyn Any + Send>;

/// The result of a job, and the signal that it is in.
struct Outcome<R> {
    slot: Mutex<Option<std::thread::Result<R>>>,
    cv: Condvar,
}

impl<R> Outcome<R> {
    fn lock(&self) -> MutexGuard<'_, Option<std::thread::Result<R>>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn put(&self, r: std::thread::Result<R>) {
        *self.lock() = Some(r);
        self.cv.notify_all();
    }
    /// Blocks the thread until the result is in (when the greenlet cannot park).
    fn block(&self) -> std::thread::Result<R> {
        let mut g = self.lock();
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Hands `f` to the pool; its result goes to the returned outcome and wakes `wait`.
/// `None` if no thread can run it: `f` is given back.
fn submit<F, R>(wait: &RemoteWait, f: F) -> Result<Arc<Outcome<R>>, F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let out = Arc::new(Outcome {
        slot: Mutex::new(None),
        cv: Condvar::new(),
    });
    // The job takes `f` from here, so that `f` can be run in place if the pool refuses.
    let job_fn = Arc::new(Mutex::new(Some(f)));
    let (o, j, waker) = (out.clone(), job_fn.clone(), wait.waker());
    let job = Box::new(move || {
        let f = j.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            o.put(catch_unwind(AssertUnwindSafe(f)));
            waker.wake();
        }
    });
    match green_runtime::__net::submit(job) {
        Ok(()) => Ok(out),
        Err(_) => match job_fn.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(f) => Err(f),
            None => Ok(out),
        },
    }
}

/// Runs `job` on the blocking pool and parks until it has run; returns the kills and
/// timeouts that arrived meanwhile (to be deferred by the caller). The job may use the
/// caller's memory: this returns only once it has run.
pub(crate) fn run_borrowed<'a>(job: Box<dyn FnOnce() + Send + 'a>) -> Vec<Payload> {
    let Ok(wait) = RemoteWait::new() else {
        job();
        return Vec::new();
    };
    // SAFETY: only the lifetime changes. The job runs before this function returns: the
    // loop below waits for its outcome whatever happens (kills are caught and held, a
    // refused park blocks the thread), and a job the pool refuses is given back and run
    // here.
    let job: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
    let out = match submit(&wait, job) {
        Ok(out) => out,
        Err(job) => {
            job();
            return Vec::new();
        }
    };
    let mut held = Vec::new();
    loop {
        if out.lock().take().is_some() {
            return held;
        }
        match catch_unwind(AssertUnwindSafe(|| wait.park(None))) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                let _ = out.block();
                return held;
            }
            Err(p) => held.push(p),
        }
    }
}

/// Runs `f` on the blocking pool and parks until its result comes; `Err` with the kill
/// or timeout that ended the wait first (the job then runs on, and its result is
/// dropped when it ends). A panic of `f` comes back as `Err` too.
pub(crate) fn run_owned<F, R>(f: F) -> Result<R, Payload>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let Ok(wait) = RemoteWait::new() else {
        return Ok(f());
    };
    let out = match submit(&wait, f) {
        Ok(out) => out,
        Err(f) => return Ok(f()),
    };
    loop {
        if let Some(r) = out.lock().take() {
            return r;
        }
        match catch_unwind(AssertUnwindSafe(|| wait.park(None))) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return out.block(),
            Err(p) => return Err(p),
        }
    }
}
