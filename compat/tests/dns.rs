//! Name resolution under the monkey patch: `getaddrinfo` (std's `ToSocketAddrs`),
//! `getnameinfo` and `gethostbyname_r` run on the blocking pool while the greenlet
//! parks, with the real call's results and errors.
//!
//! A slow resolver is simulated through the hook's seam (`__set_resolver`): the function
//! the hook runs on the pool sleeps, then asks glibc. The machine's resolver
//! configuration is never touched. The seam is process-wide, so the tests that set it
//! take turns (`SEAM`).

mod support;

use std::ffi::{CStr, CString};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libc::{addrinfo, c_char, c_int};

static SEAM: Mutex<()> = Mutex::new(());
static CALLS: AtomicUsize = AtomicUsize::new(0);
static DELAY_MS: AtomicUsize = AtomicUsize::new(0);

type Gai = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;

/// glibc's own `getaddrinfo` (the one after this executable's hook).
fn glibc_getaddrinfo() -> Gai {
    // SAFETY: a NUL-terminated name; RTLD_NEXT from the executable finds libc's symbol.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"getaddrinfo".as_ptr()) };
    assert!(!p.is_null());
    // SAFETY: glibc's getaddrinfo has this signature.
    unsafe { std::mem::transmute::<*mut libc::c_void, Gai>(p) }
}

/// The simulated resolver: counts, sleeps `DELAY_MS` (blocking its helper thread), then
/// asks glibc.
unsafe extern "C" fn slow_resolver(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    CALLS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(DELAY_MS.load(Ordering::SeqCst) as u64));
    // SAFETY: forwarded unchanged.
    unsafe { glibc_getaddrinfo()(node, service, hints, res) }
}

/// Runs `f` with the simulated resolver (delay `ms`) installed.
fn with_slow_resolver<R>(ms: usize, f: impl FnOnce() -> R) -> R {
    let _turn = SEAM.lock().unwrap_or_else(|e| e.into_inner());
    DELAY_MS.store(ms, Ordering::SeqCst);
    green::monkey::__set_resolver(Some(slow_resolver));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            green::monkey::__set_resolver(None);
        }
    }
    let _reset = Reset;
    f()
}

/// What a `getaddrinfo` call gave: its code and its list, flattened.
fn gai(
    f: Gai,
    node: Option<&str>,
    service: Option<&str>,
    hints: Option<addrinfo>,
) -> (c_int, Vec<String>) {
    let node = node.map(|n| CString::new(n).unwrap());
    let service = service.map(|s| CString::new(s).unwrap());
    let mut res: *mut addrinfo = std::ptr::null_mut();
    // SAFETY: valid strings or nulls, valid hints or null, a writable result.
    let code = unsafe {
        f(
            node.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
            service.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            hints
                .as_ref()
                .map_or(std::ptr::null(), |h| h as *const addrinfo),
            &mut res,
        )
    };
    let mut out = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: a node of the list getaddrinfo returned.
        let a = unsafe { &*p };
        // SAFETY: `ai_addr` holds `ai_addrlen` bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts(a.ai_addr.cast::<u8>(), a.ai_addrlen as usize) };
        let canon = if a.ai_canonname.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated string of the list.
            unsafe { CStr::from_ptr(a.ai_canonname) }
                .to_string_lossy()
                .into_owned()
        };
        out.push(format!(
            "{} {} {} {:?} {canon}",
            a.ai_family, a.ai_socktype, a.ai_protocol, bytes
        ));
        p = a.ai_next;
    }
    if !res.is_null() {
        // SAFETY: the list this call got.
        unsafe { libc::freeaddrinfo(res) };
    }
    (code, out)
}

fn hints(flags: c_int, family: c_int, socktype: c_int) -> addrinfo {
    // SAFETY: an all-zero addrinfo is valid hints.
    let mut h: addrinfo = unsafe { std::mem::zeroed() };
    h.ai_flags = flags;
    h.ai_family = family;
    h.ai_socktype = socktype;
    h
}

#[test]
fn lookups_by_name_run_concurrently() {
    support::patch();
    with_slow_resolver(300, || {
        let calls = CALLS.load(Ordering::SeqCst);
        let ticker = support::ticker();
        let start = Instant::now();
        let lookups: Vec<_> = (0..10)
            .map(|i| {
                green::spawn(move || {
                    ("localhost", 8000 + i)
                        .to_socket_addrs()
                        .map(|a| a.collect::<Vec<_>>())
                })
            })
            .collect();
        for (i, r) in green::joinall(lookups).into_iter().enumerate() {
            let addrs = r.unwrap().unwrap();
            assert!(
                addrs
                    .iter()
                    .any(|a| a.ip().is_loopback() && a.port() == 8000 + i as u16),
                "{addrs:?}"
            );
        }
        let took = start.elapsed();
        ticker.assert_smooth("ten lookups of a 300 ms resolver");
        assert_eq!(
            CALLS.load(Ordering::SeqCst) - calls,
            10,
            "each lookup ran on the pool"
        );
        // Serial: 3 s.
        assert!(took < Duration::from_millis(1500), "{took:?}");
    });
}

#[test]
fn results_and_errors_are_the_real_calls() {
    support::patch();
    let real = glibc_getaddrinfo();
    // The hook, as the executable's code reaches it.
    let hooked: Gai = libc::getaddrinfo;
    let stream = hints(0, libc::AF_UNSPEC, libc::SOCK_STREAM);
    let cases: Vec<(Option<&str>, Option<&str>, Option<addrinfo>)> = vec![
        (Some("localhost"), Some("80"), Some(stream)),
        (Some("localhost"), Some("http"), None),
        (
            Some("localhost"),
            None,
            Some(hints(libc::AI_CANONNAME, libc::AF_INET, 0)),
        ),
        (Some("127.0.0.1"), Some("8080"), None),
        (Some("::1"), None, Some(stream)),
        (
            Some("not an address"),
            None,
            Some(hints(libc::AI_NUMERICHOST, 0, 0)),
        ),
        (
            Some("localhost"),
            Some("no-such-service-here"),
            Some(stream),
        ),
        (Some("localhost"), Some("80"), Some(hints(0, 12345, 0))),
        (None, None, None),
        (
            None,
            Some("443"),
            Some(hints(libc::AI_PASSIVE, libc::AF_INET6, libc::SOCK_STREAM)),
        ),
    ];
    with_slow_resolver(0, || {
        let calls = CALLS.load(Ordering::SeqCst);
        let got = green::spawn(move || {
            cases
                .iter()
                .map(|(n, s, h)| (gai(hooked, *n, *s, *h), gai(real, *n, *s, *h)))
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        let codes: Vec<c_int> = got.iter().map(|((c, _), _)| *c).collect();
        for ((hook, real), i) in got.iter().zip(0..) {
            assert_eq!(hook, real, "case {i}");
        }
        // The error cases gave their own codes.
        assert_eq!(codes[5], libc::EAI_NONAME);
        assert_eq!(codes[6], libc::EAI_SERVICE);
        assert_eq!(codes[7], libc::EAI_FAMILY);
        assert_eq!(codes[8], libc::EAI_NONAME);
        // Names went to the pool; numeric ones were answered in place.
        let pooled = CALLS.load(Ordering::SeqCst) - calls;
        assert_eq!(pooled, 5, "{codes:?}");
    });
}

#[test]
fn outside_greenlets_the_lookup_is_glibcs() {
    support::patch();
    with_slow_resolver(0, || {
        let calls = CALLS.load(Ordering::SeqCst);
        let addrs: Vec<SocketAddr> =
            std::thread::spawn(|| ("localhost", 1).to_socket_addrs().unwrap().collect())
                .join()
                .unwrap();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()));
        assert_eq!(
            CALLS.load(Ordering::SeqCst),
            calls,
            "a plain thread does not use the pool"
        );
    });
}

#[test]
fn a_kill_ends_a_slow_lookup_at_once() {
    support::patch();
    with_slow_resolver(1000, || {
        let calls = CALLS.load(Ordering::SeqCst);
        let start = Instant::now();
        let h = green::spawn(|| {
            let r = ("localhost", 80).to_socket_addrs();
            // The lookup failed with ECANCELED; the kill comes at the next switch point.
            green::sleep(Duration::from_secs(5));
            r.is_ok()
        });
        green::sleep(Duration::from_millis(50));
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        assert!(
            start.elapsed() < Duration::from_millis(800),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            CALLS.load(Ordering::SeqCst) - calls,
            1,
            "the lookup went to the pool"
        );
        // Let the abandoned lookup finish before the seam goes.
        std::thread::sleep(Duration::from_millis(1100));
    });
}

#[test]
fn getnameinfo_and_gethostbyname_r_match_the_real_calls() {
    support::patch();
    let real_gni = {
        // SAFETY: as in `glibc_getaddrinfo`.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"getnameinfo".as_ptr()) };
        assert!(!p.is_null());
        p as usize
    };
    let names = |f: usize, flags: c_int| -> (c_int, String, String) {
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 80u16.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
            },
            sin_zero: [0; 8],
        };
        let (mut host, mut serv) = ([0 as c_char; 256], [0 as c_char; 64]);
        type Gni = unsafe extern "C" fn(
            *const libc::sockaddr,
            libc::socklen_t,
            *mut c_char,
            libc::socklen_t,
            *mut c_char,
            libc::socklen_t,
            c_int,
        ) -> c_int;
        // SAFETY: `f` is a getnameinfo; a valid address and buffers.
        let code = unsafe {
            std::mem::transmute::<usize, Gni>(f)(
                (&raw const sa).cast(),
                std::mem::size_of_val(&sa) as libc::socklen_t,
                host.as_mut_ptr(),
                256,
                serv.as_mut_ptr(),
                64,
                flags,
            )
        };
        let s = |b: &[c_char]| {
            // SAFETY: NUL-terminated by getnameinfo (zeroed before).
            let c = unsafe { CStr::from_ptr(b.as_ptr()) };
            c.to_string_lossy().into_owned()
        };
        (code, s(&host), s(&serv))
    };
    let hooked = libc::getnameinfo as *const () as usize;
    let got = green::spawn(move || {
        [
            0,
            libc::NI_NUMERICHOST,
            libc::NI_NAMEREQD,
            libc::NI_NUMERICSERV,
        ]
        .map(|fl| (names(hooked, fl), names(real_gni, fl)))
    })
    .join()
    .unwrap();
    for (hook, real) in &got {
        assert_eq!(hook, real);
    }
    assert_eq!(got[1].0.1, "127.0.0.1");

    // gethostbyname_r fills the caller's buffer.
    let by_name = || {
        // SAFETY: an all-zero hostent is a valid value to be overwritten.
        let mut he: libc::hostent = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as c_char; 4096];
        let (mut result, mut herr) = (std::ptr::null_mut(), 0);
        // SAFETY: valid name, hostent, buffer and out-pointers (the hook is the
        // executable's `gethostbyname_r`).
        let r = unsafe {
            gethostbyname_r(
                c"localhost".as_ptr(),
                &mut he,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
                &mut herr,
            )
        };
        assert!(!result.is_null() || r != 0);
        let addr = (r == 0 && !result.is_null() && !he.h_addr_list.is_null()).then(|| {
            // SAFETY: a filled hostent's first IPv4 address.
            unsafe { std::slice::from_raw_parts((*he.h_addr_list).cast::<u8>(), 4).to_vec() }
        });
        (r, addr)
    };
    let in_greenlet = green::spawn(by_name).join().unwrap();
    let on_thread = std::thread::spawn(by_name).join().unwrap();
    assert_eq!(in_greenlet, on_thread);
    assert_eq!(
        in_greenlet
            .1
            .map(|a| IpAddr::from([a[0], a[1], a[2], a[3]])),
        Some(IpAddr::from([127, 0, 0, 1]))
    );
}

unsafe extern "C" {
    fn gethostbyname_r(
        name: *const c_char,
        ret: *mut libc::hostent,
        buf: *mut c_char,
        buflen: libc::size_t,
        result: *mut *mut libc::hostent,
        h_errnop: *mut c_int,
    ) -> c_int;
}
