//! Threads and processes that end while greenlets are parked inside hooked calls: the
//! unwinding at the thread's end runs after some of the hooks' thread-locals are
//! destroyed, and must neither abort the process nor use what is gone.
//!
//! Each body runs in a child process of its own (see `common/child.rs`): the failures
//! guarded against abort the process or hang it.

#[path = "common/child.rs"]
mod child;
#[path = "../../tests/support/log_capture.rs"]
mod log_capture;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

/// How long a child may take before the parent gives up on it.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// Printed by a child that got to its end.
const DONE: &str = "CHILD-DONE";

/// Runs `body` in a child process of its own when called by the test harness, and checks
/// that the child got to its end and nothing panicked there (a panic in a hook called
/// from the exit-time unwinding may not abort the child: the panic's message can end
/// up parked in a hooked `write` to the parent's pipe, left behind at the thread's end).
fn in_child(name: &str, body: impl FnOnce()) {
    if child::is_child(name) {
        // No core dump if it aborts.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit only reads the struct.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
        body();
        println!("{DONE}");
    } else {
        let out = child::run(name, CHILD_LIMIT);
        assert!(out.contains(DONE) && !out.contains("panicked"), "{out}");
    }
}

/// Runs `f` on a new thread and waits for the thread's end (its thread-locals' too).
fn on_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

/// A greenlet parks in a hooked `epoll_wait` inside an `event_loop` scope; the thread
/// then ends (its main greenlet returns), and the unwinding kills it there.
fn park_in_event_loop() {
    let _h = green::spawn(|| {
        // A first scope makes the scope's thread-locals, destroyed before the runtime's.
        green::monkey::event_loop(|| ());
        green::monkey::event_loop(|| {
            // SAFETY: a new epoll fd with nothing registered and a one-entry buffer:
            // the wait only ends by the thread's end.
            unsafe {
                let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
                assert!(ep >= 0);
                let mut ev = std::mem::zeroed::<libc::epoll_event>();
                libc::epoll_wait(ep, &mut ev, 1, -1);
                libc::close(ep);
            }
        });
    });
    green::sleep(Duration::from_millis(20));
}

#[test]
fn a_thread_ends_while_a_greenlet_waits_inside_event_loop() {
    in_child(
        "a_thread_ends_while_a_greenlet_waits_inside_event_loop",
        || {
            green::monkey::patch_all();
            on_thread(park_in_event_loop);
        },
    );
}

#[test]
fn the_process_exits_while_a_greenlet_waits_inside_event_loop() {
    in_child(
        "the_process_exits_while_a_greenlet_waits_inside_event_loop",
        || {
            green::monkey::patch_all();
            park_in_event_loop();
            println!("{DONE}");
            // As `main` returning does: the thread-locals of this thread are destroyed.
            std::process::exit(0);
        },
    );
}

/// A greenlet runs a std accept loop whose accepts the kernel refuses for want of fds
/// (so that it backs off, parked in the hook); the thread ends meanwhile.
#[test]
fn a_thread_ends_while_an_accept_loop_backs_off() {
    in_child("a_thread_ends_while_an_accept_loop_backs_off", || {
        green::monkey::patch_all();
        on_thread(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let _queued = std::net::TcpStream::connect(addr).unwrap();
            // One accept succeeds first (the back-off's thread-local is made), then the
            // fd limit makes the next ones fail with EMFILE.
            let _second = std::net::TcpStream::connect(addr).unwrap();
            let _h = green::spawn(move || {
                let first = listener.accept().unwrap();
                drop(first);
                let _held = exhaust_fds();
                loop {
                    // Refused: the hook parks for the back-off delay, then returns EMFILE.
                    if listener.accept().is_ok() {
                        break;
                    }
                }
            });
            green::sleep(Duration::from_millis(100));
        });
    });
}

/// Opens files until the process has no fd left; returns them (closed when dropped).
fn exhaust_fds() -> Vec<std::fs::File> {
    let lim = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    // SAFETY: setrlimit only reads the struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let mut held = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        held.push(f);
    }
    held
}

/// A greenlet waits in `std::sync::mpsc::Receiver::recv` (std's thread parker, through
/// the futex hook) when the thread ends.
#[test]
fn a_thread_ends_while_a_greenlet_waits_in_recv() {
    in_child("a_thread_ends_while_a_greenlet_waits_in_recv", || {
        green::monkey::patch_all();
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        on_thread(move || {
            let _h = green::spawn(move || {
                let _ = rx.recv();
            });
            green::sleep(Duration::from_millis(20));
        });
        drop(tx);
    });
}

#[test]
fn the_process_exits_while_a_greenlet_waits_in_recv() {
    in_child("the_process_exits_while_a_greenlet_waits_in_recv", || {
        green::monkey::patch_all();
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let _h = green::spawn(move || {
            let _ = rx.recv();
        });
        green::sleep(Duration::from_millis(20));
        std::mem::forget(tx);
        println!("{DONE}");
        std::process::exit(0);
    });
}

/// The number of fds this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// What the thread's end logs when it leaves greenlets behind.
const LEFT: &str = "they are leaked";

/// Greenlets wait in std calls that retry a wait the kill interrupts (`Mutex::lock`,
/// `Condvar::wait`, `Receiver::recv`, `JoinHandle::join`) when their thread ends: they
/// cannot unwind and are left behind, as documented, but nothing else is: the ended
/// hub's fds are all closed.
#[test]
fn greenlets_left_in_std_waits_at_thread_end_leave_no_fds() {
    in_child(
        "greenlets_left_in_std_waits_at_thread_end_leave_no_fds",
        || {
            static M: Mutex<bool> = Mutex::new(false);
            static CV: Condvar = Condvar::new();
            log_capture::install(log::LevelFilter::Warn);
            green::monkey::patch_all();
            let fds = open_fds();
            let held = M.lock().unwrap();
            let (tx, rx) = mpsc::channel::<u32>();
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            let long = std::thread::spawn(move || {
                let _ = stop_rx.recv();
            });
            on_thread(move || {
                let _lock = green::spawn(|| drop(M.lock()));
                let _recv = green::spawn(move || {
                    let _ = rx.recv();
                });
                let _join = green::spawn(move || drop(long.join()));
                green::sleep(Duration::from_millis(20));
            });
            drop(held);
            let cv_user = std::sync::Arc::new(Mutex::new(false));
            let c = cv_user.clone();
            on_thread(move || {
                let _wait = green::spawn(move || {
                    let mut g = c.lock().unwrap();
                    while !*g {
                        g = CV.wait(g).unwrap();
                    }
                });
                green::sleep(Duration::from_millis(20));
            });
            assert_eq!(log_capture::logged(LEFT), 2);
            drop(tx);
            drop(stop_tx);
            // The helper thread that ran the join exits when the joined thread does.
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(open_fds(), fds, "the ended threads' hubs left fds open");
        },
    );
}

/// A greenlet waits for a std `Mutex` when its thread ends, and is left behind in the
/// futex hook's waiter table: the unlock must still wake a plain thread that waits for
/// the lock in the kernel, not the greenlet that never runs again.
#[test]
fn a_greenlet_left_in_mutex_lock_takes_no_wake() {
    in_child("a_greenlet_left_in_mutex_lock_takes_no_wake", || {
        static M: Mutex<()> = Mutex::new(());
        log_capture::install(log::LevelFilter::Warn);
        green::monkey::patch_all();
        let held = M.lock().unwrap();
        on_thread(|| {
            let _h = green::spawn(|| drop(M.lock()));
            green::sleep(Duration::from_millis(20));
        });
        assert_eq!(log_capture::logged(LEFT), 1);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _g = M.lock();
            tx.send(()).unwrap();
        });
        // Long enough for it to wait in the kernel (the lock reads contended since the
        // greenlet's wait, so its unlock wakes one waiter).
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the unlock's wake went to the greenlet left behind");
    });
}

/// Waits in `std::thread::park` until `go` is set, counting how often `park` returned;
/// sets `finished` at its end.
struct ParkInDrop {
    entered: mpsc::Sender<()>,
    go: Arc<AtomicBool>,
    returns: Arc<AtomicUsize>,
    finished: Arc<AtomicBool>,
}

impl Drop for ParkInDrop {
    fn drop(&mut self) {
        let _ = self.entered.send(());
        while !self.go.load(Ordering::SeqCst) {
            std::thread::park();
            self.returns.fetch_add(1, Ordering::SeqCst);
        }
        self.finished.store(true, Ordering::SeqCst);
    }
}

/// A greenlet killed at its thread's end parks in `std::thread::park` from a
/// destructor: the wait lasts until the `unpark` from another thread, and the
/// destructor gets to its end, with `park` returning a few times at most (never in a
/// loop, never leaving the greenlet unfinished).
#[test]
fn std_park_in_a_destructor_at_thread_end_waits_without_spinning() {
    in_child(
        "std_park_in_a_destructor_at_thread_end_waits_without_spinning",
        || {
            green::monkey::patch_all();
            let go = Arc::new(AtomicBool::new(false));
            let returns = Arc::new(AtomicUsize::new(0));
            let finished = Arc::new(AtomicBool::new(false));
            let (entered, in_drop) = mpsc::channel();
            let (g, r, f) = (go.clone(), returns.clone(), finished.clone());
            let t = std::thread::spawn(move || {
                let _h = green::spawn(move || {
                    let _w = ParkInDrop {
                        entered,
                        go: g,
                        returns: r,
                        finished: f,
                    };
                    // Nothing wakes it: the thread's end kills it here.
                    let _ = green::park::park(None);
                });
                green::sleep(Duration::from_millis(20));
            });
            in_drop
                .recv_timeout(CHILD_LIMIT)
                .expect("the destructor runs at the thread's end");
            std::thread::sleep(Duration::from_millis(300));
            go.store(true, Ordering::SeqCst);
            t.thread().unpark();
            t.join().unwrap();
            let n = returns.load(Ordering::SeqCst);
            assert!(
                finished.load(Ordering::SeqCst),
                "the destructor was left unfinished (park returned {n} times)"
            );
            // One wake-up, maybe a few spurious ones; not one per attempt to park.
            assert!(n < 20, "std::thread::park returned {n} times in 300 ms");
        },
    );
}
