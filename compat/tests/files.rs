//! Regular files under `patch_files()`: opens, reads, writes and syncs from a greenlet
//! run on the blocking pool, with the real calls' results and errors.

mod support;

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

fn patch() {
    support::patch();
    green::monkey::patch_files();
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("green-files-{}-{name}", std::process::id()))
}

#[test]
fn file_calls_run_on_a_helper_thread() {
    patch();
    // procfs names the thread that opens and reads it: a helper of the pool.
    let here = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    let there = green::spawn(|| std::fs::read_to_string("/proc/thread-self/comm").unwrap())
        .join()
        .unwrap();
    assert_eq!(there.trim(), "green-blocking", "here: {here:?}");
    assert_ne!(here.trim(), "green-blocking");
}

#[test]
fn results_and_errors_are_the_real_calls() {
    patch();
    let path = temp_path("rw");
    let p = path.clone();
    let got = green::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.write_all(b"hello, files").unwrap();
        f.sync_all().unwrap();
        f.sync_data().unwrap();
        f.write_at(b"HELLO", 0).unwrap();
        let mut b = [0u8; 5];
        f.read_exact_at(&mut b, 7).unwrap();
        drop(f);
        let mut f = std::fs::File::open(&p).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut v = [0u8; 3];
        let n = f.read(&mut v).unwrap();
        let missing = std::fs::File::open(p.with_extension("missing")).unwrap_err();
        // A read of a write-only file fails as the kernel says.
        let wo = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        let ebadf = wo.read_at(&mut v, 0).unwrap_err();
        (b, s, n, v, missing.raw_os_error(), ebadf.raw_os_error())
    })
    .join()
    .unwrap();
    assert_eq!(&got.0, b"files");
    assert_eq!(got.1, "HELLO, files");
    assert_eq!((got.2, &got.3), (3, b"HEL"));
    assert_eq!(got.4, Some(libc::ENOENT));
    assert_eq!(got.5, Some(libc::EBADF));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_large_read_leaves_the_hub_free() {
    patch();
    let path = temp_path("big");
    let data = vec![7u8; 8 << 20];
    std::fs::write(&path, &data).unwrap();
    let ticker = support::ticker();
    let start = Instant::now();
    let p = path.clone();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            green::spawn(move || std::fs::read(p).unwrap().len())
        })
        .collect();
    for r in green::joinall(readers) {
        assert_eq!(r.unwrap(), 8 << 20);
    }
    let took = start.elapsed();
    // Reads from the page cache can end within a tick or two: give the ticker time to
    // show that it runs (the gap it measured during the reads is what counts).
    green::sleep(Duration::from_millis(10));
    ticker.assert_smooth("two reads of 8 MiB");
    assert!(took < Duration::from_secs(10), "{took:?}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn pipes_are_not_files() {
    patch();
    // A pipe read from a greenlet waits on the reactor, not on the pool.
    let (mut r, mut w) = std::io::pipe().unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        w.write_all(b"p").unwrap();
    });
    let n = green::spawn(move || {
        let mut b = [0u8; 1];
        r.read(&mut b).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(n, 1);
    t.join().unwrap();
}
