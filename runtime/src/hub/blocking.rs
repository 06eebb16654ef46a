//! Running blocking functions on helper threads while the greenlet switches away
//! (gevent's threadpool: `get_hub().threadpool.apply(f)`).
//!
//! Name resolution, file IO and any other call that would block the thread go here: the
//! function runs on a helper thread from a process-wide pool, the calling greenlet
//! parks, and the hub wakes it through the reactor when the result is in.
//!
//! The pool starts threads on demand, up to [`Config::max_threads`], and a thread idle
//! for [`Config::idle_timeout`] exits. When every thread is busy, jobs wait in one
//! first-in, first-out queue: callers are served in the order they came, none fails.
//! [`configure`] changes the settings at any time; [`stats`] tells what the pool holds.

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::greenlet::thread::is_greenlet_context;
use crate::hub::remote::RemoteWait;

/// A job for the pool.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The settings of the blocking pool (see [`configure`]).
///
/// ```
/// use std::time::Duration;
/// let c = green::blocking::Config::new()
///     .max_threads(8)
///     .idle_timeout(Duration::from_secs(2));
/// assert_eq!((c.max_threads, c.idle_timeout), (8, Duration::from_secs(2)));
/// assert_eq!(green::blocking::Config::default().max_threads, 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Most helper threads running at once (default 64); further jobs queue.
    pub max_threads: usize,
    /// How long a helper thread waits for a job before it exits (default 10 s).
    pub idle_timeout: Duration,
}

impl Config {
    /// The defaults: 64 threads, 10 s idle timeout.
    ///
    /// ```
    /// assert_eq!(green::blocking::Config::new(), green::blocking::Config::default());
    /// ```
    pub const fn new() -> Config {
        Config {
            max_threads: 64,
            idle_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the most threads running at once (at least 1, see [`configure`]).
    ///
    /// ```
    /// assert_eq!(green::blocking::Config::new().max_threads(4).max_threads, 4);
    /// ```
    pub const fn max_threads(mut self, n: usize) -> Config {
        self.max_threads = n;
        self
    }

    /// Sets how long an idle thread waits for a job before it exits.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = green::blocking::Config::new().idle_timeout(Duration::from_millis(500));
    /// assert_eq!(c.idle_timeout, Duration::from_millis(500));
    /// ```
    pub const fn idle_timeout(mut self, d: Duration) -> Config {
        self.idle_timeout = d;
        self
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

/// What the pool holds at one moment (see [`stats`]).
///
/// ```
/// let s = green::blocking::stats();
/// assert!(s.idle <= s.threads);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Helper threads alive.
    pub threads: usize,
    /// Of those, the ones waiting for a job.
    pub idle: usize,
    /// Jobs waiting for a thread.
    pub queued: usize,
}

struct Pool {
    queue: Mutex<PoolState>,
    cond: Condvar,
}

struct PoolState {
    /// Waiting jobs, oldest first, each with its number (see [`submit`]).
    jobs: VecDeque<(u64, Job)>,
    next_job: u64,
    threads: usize,
    idle: usize,
    config: Config,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        queue: Mutex::new(PoolState {
            jobs: VecDeque::new(),
            next_job: 0,
            threads: 0,
            idle: 0,
            config: Config::new(),
        }),
        cond: Condvar::new(),
    })
}

fn lock(p: &Pool) -> std::sync::MutexGuard<'_, PoolState> {
    p.queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the pool's settings. Threads beyond a lowered maximum exit when their current
/// job ends; a changed idle timeout applies from each thread's next wait.
///
/// Errors with [`io::ErrorKind::InvalidInput`] if `max_threads` is 0 (nothing could
/// run) or `idle_timeout` is zero (every thread would exit at once).
///
/// ```
/// use std::time::Duration;
/// use green::blocking::{configure, config, Config};
/// configure(Config::new().max_threads(16).idle_timeout(Duration::from_secs(5))).unwrap();
/// assert_eq!(config().max_threads, 16);
/// assert!(configure(Config::new().max_threads(0)).is_err());
/// # configure(Config::new()).unwrap();
/// ```
pub fn configure(config: Config) -> io::Result<()> {
    if config.max_threads == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "green::blocking::configure: max_threads must be at least 1",
        ));
    }
    if config.idle_timeout.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "green::blocking::configure: idle_timeout must not be zero",
        ));
    }
    let p = pool();
    let mut st = lock(p);
    st.config = config;
    // More room: start threads for queued jobs; idle threads re-read the timeout.
    let want = st.jobs.len().saturating_sub(st.idle);
    let room = config.max_threads.saturating_sub(st.threads);
    let start = want.min(room);
    st.threads += start;
    drop(st);
    for _ in 0..start {
        if spawn_worker().is_err() {
            lock(p).threads -= 1;
        }
    }
    p.cond.notify_all();
    Ok(())
}

/// The pool's current settings.
///
/// ```
/// assert!(green::blocking::config().max_threads >= 1);
/// ```
pub fn config() -> Config {
    lock(pool()).config
}

/// What the pool holds now: threads, idle threads and queued jobs.
///
/// ```
/// green::sleep(std::time::Duration::ZERO); // this thread now has a hub
/// green::run_blocking(|| ()); // ran on a helper thread, which stays for a while
/// let s = green::blocking::stats();
/// assert!(s.threads >= 1 && s.idle <= s.threads);
/// ```
pub fn stats() -> Stats {
    let st = lock(pool());
    Stats {
        threads: st.threads,
        idle: st.idle,
        queued: st.jobs.len(),
    }
}

fn spawn_worker() -> io::Result<()> {
    std::thread::Builder::new()
        .name("green-blocking".into())
        .spawn(worker)
        .map(drop)
}

/// Queues `job` for a helper thread, starting one if every thread is busy and the
/// maximum allows. Errors only when no thread runs and none could be started; the job
/// is then not queued (it never runs).
pub fn submit(job: Job) -> io::Result<()> {
    let p = pool();
    let mut st = lock(p);
    let id = st.next_job;
    st.next_job += 1;
    st.jobs.push_back((id, job));
    // Every idle thread takes one queued job once woken: a thread is missing when the
    // queue is longer than the idle threads.
    if st.jobs.len() > st.idle && st.threads < st.config.max_threads {
        st.threads += 1;
        drop(st);
        if let Err(e) = spawn_worker() {
            let mut st = lock(p);
            st.threads -= 1;
            if st.threads == 0 {
                // Nothing will run it: take it back.
                st.jobs.retain(|(j, _)| *j != id);
                return Err(e);
            }
        }
    } else {
        drop(st);
    }
    p.cond.notify_one();
    Ok(())
}

fn worker() {
    let p = pool();
    let mut st = lock(p);
    loop {
        if st.threads > st.config.max_threads {
            // The maximum was lowered.
            st.threads -= 1;
            return;
        }
        if let Some((_, job)) = st.jobs.pop_front() {
            drop(st);
            // A panicking job may not end the thread: its count would stay taken and
            // queued jobs would wait for a thread that never comes. `run_blocking`
            // hands its closure's panic to the caller; any other job's panic was
            // already reported by the panic hook.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
                log::error!("green: a job of the blocking pool panicked");
                // Dropping a payload may panic in turn; the thread lives on either way.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            }
            st = lock(p);
            continue;
        }
        st.idle += 1;
        let idle = st.config.idle_timeout;
        let (next, timeout) = p
            .cond
            .wait_timeout(st, idle)
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
/// in the caller. When every helper thread is busy (see [`Config::max_threads`]), `f`
/// waits its turn in a first-in, first-out queue.
///
/// On a thread with no hub (or from the hub itself) `f` simply runs in place.
///
/// # Panics
///
/// If no helper thread runs and none can be started (the process is out of threads).
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
    if let Err(e) = submit(job) {
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
