//! Threads and processes that end while greenlets are parked inside hooked calls: the
//! unwinding at the thread's end runs after some of the hooks' thread-locals are
//! destroyed, and must neither abort the process nor use what is gone.
//!
//! Each body runs in a child process of its own (see `common/child.rs`): the failures
//! guarded against abort the process or hang it.

#[path = "common/child.rs"]
mod child;

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
