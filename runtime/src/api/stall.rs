//! The blocked-hub report: one process-wide watcher thread that names any hub stuck
//! longer than a threshold, the greenlet that holds it and the system call its thread
//! is blocked in, once per stall. On by default in programs that call
//! `green::monkey::patch_all()` (see [`report_stalls_by_default`]), so that a call the
//! monkey patch does not cover is found in one run.
//!
//! Each thread made while the report is on counts its switches and records which
//! greenlet runs (`greenlet::thread::SwitchLog`: relaxed stores on its own thread). The watcher wakes
//! every half threshold and compares each hub's switch count with the last one it saw;
//! a hub whose count stood still for the threshold while a greenlet (not the idle hub)
//! ran is reported, with what `/proc/self/task/TID/syscall` says its thread does.
//! Reports go to the `log` crate (target `green::monitor`, level warn) when a logger
//! takes them, else to standard error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread as os_thread;
use std::time::{Duration, Instant};

use crate::greenlet::thread::{self, SwitchLog};

/// The threshold of the report that `patch_all()` turns on (unless the program chose
/// one, or `GREEN_STALL_REPORT` says otherwise).
///
/// ```
/// assert_eq!(green::monitor::DEFAULT_STALL_THRESHOLD.as_millis(), 500);
/// ```
pub const DEFAULT_STALL_THRESHOLD: Duration = Duration::from_millis(500);

/// What one watcher knows about one thread.
pub(crate) struct Watch {
    shared: Weak<SwitchLog>,
    /// The switch count last seen, and since when it stands still.
    last: u64,
    since: Instant,
    /// Whether this stall was reported.
    reported: bool,
}

impl Watch {
    /// Watches the thread whose switch log is `shared`.
    pub(crate) fn new(shared: &Arc<SwitchLog>) -> Watch {
        Watch {
            shared: Arc::downgrade(shared),
            last: shared.switches(),
            since: Instant::now(),
            reported: false,
        }
    }

    fn is_gone(&self) -> bool {
        self.shared.strong_count() == 0
    }

    /// The report of this hub's stall if one is due: it has not switched for
    /// `threshold` while a greenlet runs, and this stall was not reported yet.
    pub(crate) fn check(&mut self, threshold: Duration) -> Option<String> {
        let shared = self.shared.upgrade()?;
        let now = shared.switches();
        if now != self.last {
            self.last = now;
            self.since = Instant::now();
            self.reported = false;
            return None;
        }
        let stalled = self.since.elapsed();
        if self.reported || stalled < threshold {
            return None;
        }
        let Some((id, name)) = shared.running() else {
            // The hub is idle (waiting for timers or IO), not blocked.
            self.since = Instant::now();
            return None;
        };
        self.reported = true;
        let name = if name.is_empty() { "<unnamed>" } else { &name };
        Some(format!(
            "green: greenlet {id} ({name:?}) has blocked the hub of thread {:?} for {stalled:?} \
             (threshold {threshold:?}) without switching; {}",
            shared.thread_name,
            what_it_does(shared.tid)
        ))
    }
}

/// What the thread `tid` of this process is doing, from `/proc/self/task/TID/syscall`.
fn what_it_does(tid: libc::pid_t) -> String {
    let Ok(text) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return "its system call is unknown (no /proc/self/task/TID/syscall)".into();
    };
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    if first == "running" {
        return "it is running (computing, not in a system call)".into();
    }
    let Ok(nr) = first.parse::<libc::c_long>() else {
        return format!("its state is {:?}", text.trim());
    };
    if nr < 0 {
        return "it is stopped outside a system call".into();
    }
    let arg0 = words
        .next()
        .and_then(|a| i64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
    match syscall_name(nr) {
        Some((name, fd_first, hint)) => {
            let fd = match (fd_first, arg0) {
                (true, Some(fd)) => format!(" (fd {fd})"),
                _ => String::new(),
            };
            let hint = if hint.is_empty() {
                String::new()
            } else {
                format!(": {hint}")
            };
            format!("it is in the system call {name}{fd}{hint}")
        }
        None => format!("it is in system call number {nr}"),
    }
}

/// The name of system call `nr`, whether its first argument is an fd, and a hint at
/// what commonly makes it.
fn syscall_name(nr: libc::c_long) -> Option<(&'static str, bool, &'static str)> {
    const LOCK: &str = "a std::sync lock, Condvar, channel or thread join";
    const LOOP: &str = "an event loop (an async runtime's block_on? see green::monkey::event_loop)";
    #[cfg(target_arch = "x86_64")]
    {
        let x = match nr {
            libc::SYS_poll => Some(("poll", false, "")),
            libc::SYS_select => Some(("select", false, "")),
            libc::SYS_epoll_wait => Some(("epoll_wait", true, LOOP)),
            libc::SYS_open => Some(("open", false, "")),
            libc::SYS_pause => Some(("pause", false, "")),
            _ => None,
        };
        if x.is_some() {
            return x;
        }
    }
    Some(match nr {
        libc::SYS_read => ("read", true, ""),
        libc::SYS_write => ("write", true, ""),
        libc::SYS_readv => ("readv", true, ""),
        libc::SYS_writev => ("writev", true, ""),
        libc::SYS_pread64 => ("pread64", true, ""),
        libc::SYS_pwrite64 => ("pwrite64", true, ""),
        libc::SYS_openat => ("openat", false, ""),
        libc::SYS_close => ("close", true, ""),
        libc::SYS_fsync => ("fsync", true, ""),
        libc::SYS_fdatasync => ("fdatasync", true, ""),
        libc::SYS_flock => ("flock", true, ""),
        libc::SYS_fcntl => ("fcntl", true, ""),
        libc::SYS_ioctl => ("ioctl", true, ""),
        libc::SYS_futex => ("futex", false, LOCK),
        libc::SYS_nanosleep => ("nanosleep", false, ""),
        libc::SYS_clock_nanosleep => ("clock_nanosleep", false, ""),
        libc::SYS_ppoll => ("ppoll", false, ""),
        libc::SYS_pselect6 => ("pselect6", false, ""),
        libc::SYS_epoll_pwait => ("epoll_pwait", true, LOOP),
        libc::SYS_wait4 => ("wait4", false, ""),
        libc::SYS_waitid => ("waitid", false, ""),
        libc::SYS_connect => ("connect", true, ""),
        libc::SYS_accept4 => ("accept4", true, ""),
        libc::SYS_recvfrom => ("recvfrom", true, ""),
        libc::SYS_recvmsg => ("recvmsg", true, ""),
        libc::SYS_sendto => ("sendto", true, ""),
        libc::SYS_sendmsg => ("sendmsg", true, ""),
        libc::SYS_sendfile => ("sendfile", true, ""),
        libc::SYS_splice => ("splice", true, ""),
        libc::SYS_copy_file_range => ("copy_file_range", true, ""),
        libc::SYS_rt_sigtimedwait => ("rt_sigtimedwait", false, ""),
        libc::SYS_rt_sigsuspend => ("rt_sigsuspend", false, ""),
        libc::SYS_getrandom => ("getrandom", false, ""),
        libc::SYS_io_uring_enter => ("io_uring_enter", true, ""),
        libc::SYS_newfstatat => ("newfstatat", false, ""),
        _ => return None,
    })
}

/// The process-wide report's settings and the hubs it watches.
struct Global {
    threshold: Option<Duration>,
    /// The program chose (`set_stall_report`): the default does not apply.
    configured: bool,
    watcher: Option<os_thread::Thread>,
    hubs: Vec<Watch>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    threshold: None,
    configured: false,
    watcher: None,
    hubs: Vec::new(),
});

/// Whether the report is on: hubs made now register (one relaxed load per new hub).
static ON: AtomicBool = AtomicBool::new(false);

fn global() -> MutexGuard<'static, Global> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Turns the process-wide blocked-hub report on (`Some(threshold)`) or off (`None`):
/// one watcher thread reports, once per stall, any hub of the process that has not
/// switched for `threshold` while a greenlet runs, naming the greenlet and the system
/// call its thread is blocked in. Reports go to the `log` crate (target
/// `green::monitor`, level warn) when a logger takes them, else to standard error.
///
/// It watches every hub made while it is on, and the calling thread's hub. While on,
/// each of those hubs records its switches (relaxed stores in the switch path). A
/// program that calls this before `green::monkey::patch_all()` keeps its choice:
/// `patch_all` only turns the report on (with [`DEFAULT_STALL_THRESHOLD`]) when the
/// program has not chosen.
///
/// ```
/// use std::time::Duration;
/// green::monitor::set_stall_report(Some(Duration::from_millis(200)));
/// assert_eq!(green::monitor::stall_report(), Some(Duration::from_millis(200)));
/// green::monitor::set_stall_report(None); // off
/// assert_eq!(green::monitor::stall_report(), None);
/// ```
pub fn set_stall_report(threshold: Option<Duration>) {
    let mut g = global();
    g.configured = true;
    apply(g, threshold);
}

/// The threshold of the process-wide blocked-hub report, `None` while it is off.
///
/// ```
/// let _on: bool = green::monitor::stall_report().is_some();
/// ```
pub fn stall_report() -> Option<Duration> {
    global().threshold
}

/// What `green::monkey::patch_all()` calls: turns the report on with
/// [`DEFAULT_STALL_THRESHOLD`] unless the program chose with [`set_stall_report`] or the
/// environment variable `GREEN_STALL_REPORT` says `off` or a threshold in milliseconds.
///
/// ```
/// green::monitor::report_stalls_by_default();
/// ```
pub fn report_stalls_by_default() {
    let g = global();
    if g.configured {
        return;
    }
    let threshold = match std::env::var("GREEN_STALL_REPORT") {
        Ok(v) if v.eq_ignore_ascii_case("off") || v == "0" => None,
        Ok(v) => match v.trim_end_matches("ms").parse::<u64>() {
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                log::warn!("green: GREEN_STALL_REPORT={v:?} is neither `off` nor milliseconds");
                Some(DEFAULT_STALL_THRESHOLD)
            }
        },
        Err(_) => Some(DEFAULT_STALL_THRESHOLD),
    };
    apply(g, threshold);
}

fn apply(mut g: MutexGuard<'static, Global>, threshold: Option<Duration>) {
    g.threshold = threshold;
    ON.store(threshold.is_some(), Ordering::Relaxed);
    if threshold.is_none() {
        thread::watch_new_threads(false);
        return;
    }
    // Threads made from now on are watched, and the calling one if it uses green.
    thread::watch_new_threads(true);
    let _ = thread::if_exists(|t| {
        thread::list_for_report(&t.switch_log);
        t.set_monitored(true);
    });
    match &g.watcher {
        Some(t) => t.unpark(),
        None => {
            match os_thread::Builder::new()
                .name("green-stall-report".into())
                .spawn(watcher)
            {
                Ok(t) => g.watcher = Some(t.thread().clone()),
                Err(e) => log::error!("green: cannot start the blocked-hub report: {e}"),
            }
        }
    }
}

/// Whether the process-wide report watches the thread whose switch log is `shared`.
pub(crate) fn watches(shared: &SwitchLog) -> bool {
    ON.load(Ordering::Relaxed) && shared.in_report.load(Ordering::Relaxed)
}

fn watcher() {
    loop {
        let Some(threshold) = global().threshold else {
            // Off: wait until turned on again (`apply` unparks).
            os_thread::park();
            continue;
        };
        os_thread::park_timeout((threshold / 2).max(Duration::from_millis(1)));
        let reports: Vec<String> = {
            let mut g = global();
            let Some(threshold) = g.threshold else {
                continue;
            };
            g.hubs.retain(|w| !w.is_gone());
            g.hubs
                .extend(thread::take_new_logs().iter().map(Watch::new));
            g.hubs
                .iter_mut()
                .filter_map(|w| w.check(threshold))
                .collect()
        };
        for r in reports {
            if log::log_enabled!(target: "green::monitor", log::Level::Warn) {
                log::warn!(target: "green::monitor", "{r}");
            } else {
                eprintln!("{r}");
            }
        }
    }
}
