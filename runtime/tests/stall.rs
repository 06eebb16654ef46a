//! The process-wide blocked-hub report names the greenlet and the system call.
//! (A logger is process-wide: this file is a test binary of its own.)

use std::os::fd::AsRawFd;
use std::time::Duration;

#[path = "../../tests/support/log_capture.rs"]
mod log_capture;

/// The reports logged so far (target `green::monitor`).
fn reports() -> Vec<String> {
    log_capture::lines()
        .into_iter()
        .filter(|l| l.target == "green::monitor")
        .map(|l| l.text)
        .collect()
}

#[test]
fn a_blocking_system_call_is_named() {
    log_capture::install(log::LevelFilter::Warn);
    green::monitor::set_stall_report(Some(Duration::from_millis(100)));
    // An idle hub (sleeping greenlets) is not reported.
    green::sleep(Duration::from_millis(300));
    assert!(reports().is_empty(), "{:?}", reports());

    let (reader, mut writer) = std::io::pipe().unwrap();
    let fd = reader.as_raw_fd();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        std::io::Write::write_all(&mut writer, b"x").unwrap();
    });
    let h = green::Builder::new()
        .name("raw-reader")
        .spawn(move || {
            let mut b = [0u8; 1];
            // A raw system call: nothing can make it cooperative.
            // SAFETY: a valid fd and a one-byte buffer.
            unsafe { libc::syscall(libc::SYS_read, fd, b.as_mut_ptr(), 1) }
        })
        .unwrap();
    let id = h.greenlet().id();
    assert_eq!(h.join().unwrap(), 1);
    feeder.join().unwrap();
    green::monitor::set_stall_report(None);
    let logs = reports();
    assert_eq!(logs.len(), 1, "one report per stall: {logs:?}");
    let r = &logs[0];
    assert!(
        r.contains(&format!("greenlet {id} (\"raw-reader\")")),
        "{r}"
    );
    assert!(r.contains(&format!("system call read (fd {fd})")), "{r}");
    drop(reader);
}
