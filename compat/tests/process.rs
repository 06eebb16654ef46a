//! Child processes under the monkey patch: `Command::output`, `status` and
//! `Child::wait` from greenlets run concurrently (the wait parks on a pidfd, the output
//! pipes on the reactor); `waitpid` of any child waits on the blocking pool; results and
//! errors are the real calls'. `waitpid(-1)` may reap any child of the process, so the
//! tests of this file take turns (`TURN`).

mod support;

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn ten_outputs_of_a_300_ms_child_run_concurrently() {
    let _t = turn();
    support::patch();
    let ticker = support::ticker();
    let start = Instant::now();
    let children: Vec<_> = (0..10)
        .map(|i| {
            green::spawn(move || {
                Command::new("sh")
                    .args(["-c", &format!("sleep 0.3; echo child {i}; echo err >&2")])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for (i, out) in green::joinall(children).into_iter().enumerate() {
        let out = out.unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("child {i}\n")
        );
        assert_eq!(out.stderr, b"err\n");
    }
    let took = start.elapsed();
    ticker.assert_smooth("ten 300 ms children");
    // Serial: 3 s.
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn status_and_wait_run_concurrently_and_report_exit_codes() {
    let _t = turn();
    support::patch();
    let ticker = support::ticker();
    let start = Instant::now();
    let statuses: Vec<_> = (0..5)
        .map(|i| {
            green::spawn(move || {
                Command::new("sh")
                    .args(["-c", &format!("sleep 0.2; exit {i}")])
                    .status()
                    .unwrap()
            })
        })
        .collect();
    let waits: Vec<_> = (0..5)
        .map(|_| {
            green::spawn(|| {
                let mut child = Command::new("sleep")
                    .arg("0.2")
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap();
                child.wait().unwrap()
            })
        })
        .collect();
    for (i, s) in green::joinall(statuses).into_iter().enumerate() {
        assert_eq!(s.unwrap().code(), Some(i as i32));
    }
    for s in green::joinall(waits) {
        assert!(s.unwrap().success());
    }
    let took = start.elapsed();
    ticker.assert_smooth("ten 200 ms children");
    assert!(took < Duration::from_millis(1000), "{took:?}");
}

#[test]
fn waitpid_of_any_child_waits_on_the_pool() {
    let _t = turn();
    support::patch();
    let child = Command::new("sleep").arg("0.2").spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let ticker = support::ticker();
    let h = green::spawn(|| {
        let mut status = 0;
        // SAFETY: a writable status.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        (r, status)
    });
    let (r, status) = h.join().unwrap();
    ticker.assert_smooth("waitpid(-1) for a 200 ms child");
    assert_eq!(r, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    // The child is reaped: std's handle is not used again.
    std::mem::forget(child);
}

#[test]
fn errors_and_wnohang_are_the_real_calls() {
    let _t = turn();
    support::patch();
    let h = green::spawn(|| {
        let mut status = 0;
        // Not a child (pid 1): ECHILD at once.
        // SAFETY: a writable status.
        let r = unsafe { libc::waitpid(1, &mut status, 0) };
        let e = std::io::Error::last_os_error().raw_os_error();
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        // WNOHANG while it runs: 0 at once.
        // SAFETY: as above.
        let now = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        // waitid for its exit, parked.
        // SAFETY: an all-zero siginfo_t is a valid value to be overwritten.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a writable siginfo_t.
        let w = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED) };
        // SAFETY: filled by waitid for an exited child.
        let (who, code) = unsafe { (info.si_pid(), info.si_status()) };
        let _ = child.try_wait();
        (r, e, now, w, who == pid, code)
    });
    let (r, e, now, w, same, code) = h.join().unwrap();
    assert_eq!((r, e), (-1, Some(libc::ECHILD)));
    assert_eq!(now, 0);
    assert_eq!((w, same, code), (0, true, 0));
}

#[test]
fn a_kill_ends_the_wait_without_reaping() {
    let _t = turn();
    support::patch();
    let child = Command::new("sleep").arg("2").spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let h = green::spawn(move || {
        let mut child = child;
        let r = child.wait();
        green::sleep(Duration::from_secs(5)); // the kill comes here
        (r.is_ok(), child)
    });
    green::sleep(Duration::from_millis(50));
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    // The child lives 2 s: the kill ended the wait well before.
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    // Not reaped by the killed wait: a plain wait gets it.
    let mut status = 0;
    let r = std::thread::spawn(move || {
        // SAFETY: a writable status.
        unsafe { libc::waitpid(pid, &mut status, 0) }
    })
    .join()
    .unwrap();
    assert_eq!(r, pid);
}

#[test]
fn on_a_plain_thread_output_is_the_real_one() {
    let _t = turn();
    support::patch();
    let out = std::thread::spawn(|| {
        Command::new("sh")
            .args(["-c", "echo plain"])
            .output()
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(out.stdout, b"plain\n");
}
