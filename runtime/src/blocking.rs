//! Running blocking functions on helper threads while the greenlet switches away
//! (gevent's threadpool: `get_hub().threadpool.apply(f)`).
//!
//! Name resolution, file IO and any other call that would block the thread go here: the
//! function runs on a helper thread from a small process-wide pool, the calling greenlet
//! parks, and the hub wakes it through the reactor when the result is in.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::hub::is_greenlet_context;
use crate::remote::RemoteWait;

/// Most helper threads the pool starts; further jobs queue.
const MAX_THREADS: usize = 64;
/// Helper threads idle this long exit.
const IDLE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    queue: Mutex<PoolState>,
    cond: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        queue: Mutex::new(PoolState {
            jobs: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        cond: Condvar::new(),
    })
}

fn lock(p: &Pool) -> std::sync::MutexGuard<'_, PoolState> {
    p.queue.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn execute(job: Job) -> std::io::Result<()> {
    let p = pool();
    let mut st = lock(p);
    st.jobs.push_back(job);
    if st.idle == 0 && st.threads < MAX_THREADS {
        st.threads += 1;
        drop(st);
        let spawned = std::thread::Builder::new()
            .name("green-blocking".into())
            .spawn(worker);
        if let Err(e) = spawned {
            lock(p).threads -= 1;
            if lock(p).threads == 0 {
                return Err(e);
            }
        }
    } else {
        drop(st);
        p.cond.notify_one();
    }
    Ok(())
}

fn worker() {
    let p = pool();
    let mut st = lock(p);
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            job();
            st = lock(p);
            continue;
        }
        st.idle += 1;
        let (next, timeout) = p
            .cond
            .wait_timeout(st, IDLE)
            .unwrap_or_else(|e| e.into_inner());
        st = next;
        st.idle -= 1;
        if timeout.timed_out() && st.jobs.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

/// Runs the blocking function `f` on a helper thread and parks the calling greenlet
/// until it returns; other greenlets run meanwhile — always, even when `f` is instant,
/// since the caller waits through the hub. Returns `f`'s value; a panic in `f` resumes
/// in the caller.
///
/// On a thread with no hub (or from the hub itself) `f` simply runs in place.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let ticker = green::spawn(|| {
///     for _ in 0..3 { green::sleep(Duration::from_millis(10)); }
///     "ticked"
/// });
/// // A truly blocking call does not stop the ticker:
/// let v = green::run_blocking(|| { std::thread::sleep(Duration::from_millis(50)); 7 });
/// assert_eq!(v, 7);
/// assert_eq!(ticker.join().unwrap(), "ticked");
/// ```
pub fn run_blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    if !is_greenlet_context() {
        return f();
    }
    let wait = match RemoteWait::new() {
        Ok(w) => w,
        Err(e) => {
            log::warn!("green: no reactor ({e}); running a blocking call in place");
            return f();
        }
    };
    let result: Arc<Mutex<Option<std::thread::Result<R>>>> = Arc::new(Mutex::new(None));
    let (res, waker) = (result.clone(), wait.waker());
    let job: Job = Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        *res.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        waker.wake();
    });
    if let Err(e) = execute(job) {
        // No thread could be started: nothing will complete the job.
        drop(wait);
        panic!("green: cannot start a helper thread for a blocking call: {e}");
    }
    // Always park at least once, even if the job is already done: other greenlets run
    // meanwhile, every time (gevent's threadpool waits through the hub too).
    loop {
        let _ = wait.park(None);
        if let Some(r) = result.lock().unwrap_or_else(|e| e.into_inner()).take() {
            match r {
                Ok(v) => return v,
                Err(p) => resume_unwind(p),
            }
        }
    }
}
