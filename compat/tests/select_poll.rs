//! `poll`, `ppoll`, `select`, `pselect` and `usleep` under the monkey patch: from a
//! greenlet they park until an fd is ready or the timeout passes, and the result is the
//! kernel's; `epoll_wait` outside `event_loop` is left to block the thread.

mod support;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Two pipes; a thread writes to the second one's write end after `ms`.
/// (The writer hands its end back, so that no hang-up comes with the byte.)
type Writer = std::thread::JoinHandle<std::io::PipeWriter>;

fn two_pipes_one_written_after(
    ms: u64,
) -> (
    std::io::PipeReader,
    std::io::PipeReader,
    Writer,
    std::io::PipeWriter,
) {
    let (r1, w1) = std::io::pipe().unwrap();
    let (r2, mut w2) = std::io::pipe().unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        w2.write_all(b"x").unwrap();
        w2
    });
    (r1, r2, t, w1)
}

#[test]
fn poll_on_several_pipes_parks_until_one_is_ready() {
    support::patch();
    let (r1, r2, t, _w1) = two_pipes_one_written_after(200);
    let (fd1, fd2) = (r1.as_raw_fd(), r2.as_raw_fd());
    let ticker = support::ticker();
    let h = green::spawn(move || {
        let mut fds = [
            libc::pollfd {
                fd: fd1,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: fd2,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let start = Instant::now();
        // SAFETY: two valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 5000) };
        (n, fds[0].revents, fds[1].revents, start.elapsed())
    });
    let (n, a, b, took) = h.join().unwrap();
    ticker.assert_smooth("a poll waiting 200 ms");
    assert_eq!((n, a, b), (1, 0, libc::POLLIN));
    assert!(took >= Duration::from_millis(150), "{took:?}");
    t.join().unwrap();
}

#[test]
fn poll_and_ppoll_time_out_like_the_kernel() {
    support::patch();
    let (r, _w) = std::io::pipe().unwrap();
    let fd = r.as_raw_fd();
    let ticker = support::ticker();
    let h = green::spawn(move || {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let start = Instant::now();
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 150) };
        let polled = start.elapsed();
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let start = Instant::now();
        // SAFETY: one valid pollfd, a valid timeout, no mask.
        let m = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
        // No fds at all: a sleep.
        let start0 = Instant::now();
        // SAFETY: no fds.
        let z = unsafe { libc::poll(std::ptr::null_mut(), 0, 100) };
        (n, polled, m, start.elapsed(), z, start0.elapsed())
    });
    let (n, polled, m, ppolled, z, slept) = h.join().unwrap();
    ticker.assert_smooth("polls timing out");
    assert_eq!((n, m, z), (0, 0, 0));
    assert!(polled >= Duration::from_millis(145), "{polled:?}");
    assert!(ppolled >= Duration::from_millis(95), "{ppolled:?}");
    assert!(slept >= Duration::from_millis(95), "{slept:?}");
}

#[test]
fn select_on_pipes_parks_and_fills_the_sets() {
    support::patch();
    let (r1, r2, t, _w1) = two_pipes_one_written_after(200);
    let (fd1, fd2) = (r1.as_raw_fd(), r2.as_raw_fd());
    let ticker = support::ticker();
    let h = green::spawn(move || {
        // SAFETY: fd_set manipulation of fds below FD_SETSIZE.
        unsafe {
            let mut set: libc::fd_set = std::mem::zeroed();
            libc::FD_ZERO(&mut set);
            libc::FD_SET(fd1, &mut set);
            libc::FD_SET(fd2, &mut set);
            let mut tv = libc::timeval {
                tv_sec: 5,
                tv_usec: 0,
            };
            let n = libc::select(
                fd1.max(fd2) + 1,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            );
            (
                n,
                libc::FD_ISSET(fd1, &set),
                libc::FD_ISSET(fd2, &set),
                tv.tv_sec,
            )
        }
    });
    let (n, one, two, left) = h.join().unwrap();
    ticker.assert_smooth("a select waiting 200 ms");
    assert_eq!((n, one, two), (1, false, true));
    // Linux leaves the time not slept in the timeout.
    assert!((3..=4).contains(&left), "{left}");
    t.join().unwrap();
}

#[test]
fn select_and_pselect_time_out_like_the_kernel() {
    support::patch();
    let (r, _w) = std::io::pipe().unwrap();
    let fd = r.as_raw_fd();
    let ticker = support::ticker();
    let h = green::spawn(move || {
        // SAFETY: fd_set manipulation of an fd below FD_SETSIZE.
        unsafe {
            let mut set: libc::fd_set = std::mem::zeroed();
            libc::FD_SET(fd, &mut set);
            let mut tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 150_000,
            };
            let start = Instant::now();
            let n = libc::select(
                fd + 1,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            );
            let selected = start.elapsed();
            let cleared = !libc::FD_ISSET(fd, &set);
            libc::FD_SET(fd, &mut set);
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            let start = Instant::now();
            let m = libc::pselect(
                fd + 1,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &ts,
                std::ptr::null(),
            );
            (
                n,
                selected,
                cleared,
                (tv.tv_sec, tv.tv_usec),
                m,
                start.elapsed(),
            )
        }
    });
    let (n, selected, cleared, tv, m, pselected) = h.join().unwrap();
    ticker.assert_smooth("selects timing out");
    assert_eq!((n, m), (0, 0));
    assert!(cleared, "a timed-out select clears its sets");
    assert_eq!(tv, (0, 0));
    assert!(selected >= Duration::from_millis(145), "{selected:?}");
    assert!(pselected >= Duration::from_millis(95), "{pselected:?}");
}

#[test]
fn usleep_and_sleep_park() {
    support::patch();
    let ticker = support::ticker();
    let start = Instant::now();
    let sleepers: Vec<_> = (0..10)
        .map(|_| {
            green::spawn(|| {
                // SAFETY: plain sleeps.
                unsafe { (libc::usleep(200_000), libc::sleep(0)) }
            })
        })
        .collect();
    for r in green::joinall(sleepers) {
        assert_eq!(r.unwrap(), (0, 0));
    }
    let took = start.elapsed();
    ticker.assert_smooth("ten usleeps of 200 ms");
    // Side by side: about 200 ms, where one after the other takes 2 s.
    assert!(
        took >= Duration::from_millis(195) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[test]
fn epoll_wait_outside_event_loop_blocks_the_thread_as_before() {
    support::patch();
    // SAFETY: plain epoll creation; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0);
    let ticker = support::ticker();
    let h = green::spawn(move || {
        let mut ev = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: a valid epoll fd and buffer.
        unsafe { libc::epoll_wait(ep, ev.as_mut_ptr(), 4, 200) }
    });
    assert_eq!(h.join().unwrap(), 0);
    let (gap, _) = ticker.finish();
    // The default is the real call: the thread (and the ticker) waited.
    assert!(gap >= Duration::from_millis(150), "{gap:?}");
    // SAFETY: our own fd.
    unsafe { libc::close(ep) };
}

#[test]
fn patch_all_turns_the_blocked_hub_report_on() {
    support::patch();
    if std::env::var_os("GREEN_STALL_REPORT").is_none() {
        assert_eq!(
            green::monitor::stall_report(),
            Some(green::monitor::DEFAULT_STALL_THRESHOLD)
        );
    }
}
