//! `dump_on_signal`: a signal sent from another thread makes the hub print the dump to
//! standard error. Standard error is redirected to a pipe for the test, so this file
//! holds a single test (a binary of its own).

use std::time::Duration;

#[test]
fn a_signal_prints_the_dump_to_stderr() {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two fds; dup/dup2/fcntl on fds we own.
    let saved = unsafe {
        assert_eq!(
            libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK),
            0
        );
        let saved = libc::dup(2);
        assert!(saved >= 0);
        assert_eq!(libc::dup2(fds[1], 2), 2);
        saved
    };
    green::dump_on_signal(libc::SIGUSR1).unwrap();
    let sleeper = green::Builder::new()
        .name("sleeper")
        .spawn(|| green::sleep(Duration::from_secs(30)))
        .unwrap();
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: signals our own process, whose SIGUSR1 handler is set above.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    });
    // The hub waits for its timers here; the signal's byte ends that wait.
    green::sleep(Duration::from_millis(500));
    sender.join().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reads into a live buffer of its length.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: puts the saved stderr back and closes what we made.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("green: "), "{out}");
    assert!(out.contains("\"sleeper\": parked on sleep"), "{out}");
    sleeper.kill();
}
