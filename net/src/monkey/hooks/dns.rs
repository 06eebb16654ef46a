//! Hooks of name resolution (`patch_dns()`): `getaddrinfo` (what `ToSocketAddrs` by host
//! name calls), `getnameinfo`, `gethostbyname_r` and `gethostbyname2_r`.
//!
//! From a greenlet, glibc's function runs on the blocking pool while the greenlet parks,
//! so results and errors (`EAI_*` codes, `/etc/hosts`, `nsswitch.conf`) are exactly the
//! real call's. A lookup that cannot wait on the network (a numeric address with a
//! numeric or no service) is made in place.
//!
//! `getaddrinfo` and `getnameinfo` work on copies of their arguments, so a kill arriving
//! during the lookup ends the wait at once (`EAI_SYSTEM` with `errno` `ECANCELED`); the
//! lookup finishes on its helper thread and its result is freed. `gethostbyname_r` and
//! `gethostbyname2_r` fill the caller's buffer, so the greenlet waits until the lookup
//! is done and the kill is deferred to its next switch point.
//!
//! `gethostbyname`, `gethostbyname2` and `gethostbyaddr` are not hooked: they return
//! glibc's static storage, which a helper thread would share with every other thread,
//! so they would hand a greenlet another caller's answer. They block the thread; use
//! `getaddrinfo` (std's `ToSocketAddrs`) or the `_r` variants.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_char, c_int, sockaddr, socklen_t};

use super::{canceled, offload_if, set_errno};
use crate::monkey::{DNS, real, rt, state};

/// The signature of `getaddrinfo`.
pub type GetaddrinfoFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const libc::addrinfo,
    *mut *mut libc::addrinfo,
) -> c_int;

/// The function the hook runs on the blocking pool in place of glibc's `getaddrinfo`
/// (0: glibc's). A seam for tests.
static RESOLVER: AtomicUsize = AtomicUsize::new(0);

/// Makes the patched `getaddrinfo` run `f` on the blocking pool instead of glibc's
/// function (`None`: glibc's again), so that tests can simulate a slow or failing
/// resolver without touching the machine's configuration. Not covered by semver.
///
/// ```
/// green_net::monkey::__set_resolver(None);
/// ```
#[doc(hidden)]
pub fn __set_resolver(f: Option<GetaddrinfoFn>) {
    RESOLVER.store(f.map_or(0, |f| f as usize), Ordering::SeqCst);
}

fn resolver() -> GetaddrinfoFn {
    match RESOLVER.load(Ordering::SeqCst) {
        0 => real::getaddrinfo::get(),
        // SAFETY: a non-zero value was stored from a `GetaddrinfoFn` by `__set_resolver`.
        p => unsafe { std::mem::transmute::<usize, GetaddrinfoFn>(p) },
    }
}

fn cooperative() -> bool {
    state() & DNS != 0 && rt::in_greenlet()
}

/// A C string argument, copied (`None` for a null pointer).
///
/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn owned(p: *const c_char) -> Option<CString> {
    // SAFETY: the caller's contract (checked non-null).
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_owned())
}

/// Whether `getaddrinfo` of these arguments cannot wait on anything: no name to look up
/// (a numeric address or none, no canonical name asked for) and a numeric or no service.
fn instant(node: Option<&CStr>, service: Option<&CStr>, flags: c_int) -> bool {
    let host = match node {
        None => true,
        Some(n) => {
            flags & libc::AI_NUMERICHOST != 0
                || (flags & libc::AI_CANONNAME == 0
                    && n.to_str()
                        .is_ok_and(|s| s.parse::<std::net::IpAddr>().is_ok()))
        }
    };
    let serv = match service {
        None => true,
        Some(s) => {
            flags & libc::AI_NUMERICSERV != 0
                || (!s.is_empty() && s.to_bytes().iter().all(u8::is_ascii_digit))
        }
    };
    host && serv
}

/// The hints a lookup needs, without their pointers (which must be null anyway).
#[derive(Clone, Copy)]
struct Hints {
    flags: c_int,
    family: c_int,
    socktype: c_int,
    protocol: c_int,
}

impl Hints {
    fn to_c(self) -> libc::addrinfo {
        libc::addrinfo {
            ai_flags: self.flags,
            ai_family: self.family,
            ai_socktype: self.socktype,
            ai_protocol: self.protocol,
            ai_addrlen: 0,
            ai_addr: std::ptr::null_mut(),
            ai_canonname: std::ptr::null_mut(),
            ai_next: std::ptr::null_mut(),
        }
    }
}

/// A `getaddrinfo` result made on a helper thread; frees the list unless taken.
struct Lookup {
    code: c_int,
    errno: c_int,
    res: *mut libc::addrinfo,
}

// SAFETY: the list belongs to this value alone; glibc's freeaddrinfo may free it on any
// thread.
unsafe impl Send for Lookup {}

impl Drop for Lookup {
    fn drop(&mut self) {
        if !self.res.is_null() {
            // SAFETY: a list getaddrinfo returned, not freed yet, owned by this value.
            unsafe { libc::freeaddrinfo(self.res) };
        }
    }
}

/// Hook for `getaddrinfo(3)` (what `ToSocketAddrs` calls for a host name).
///
/// # Safety
/// The libc contract of `getaddrinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    if !cooperative() || res.is_null() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    }
    // SAFETY: the caller passes NUL-terminated strings or nulls (getaddrinfo's contract).
    let (n, s) = unsafe { (owned(node), owned(service)) };
    let h = (!hints.is_null()).then(|| {
        // SAFETY: a non-null `hints` points to a readable addrinfo.
        let h = unsafe { &*hints };
        Hints {
            flags: h.ai_flags,
            family: h.ai_family,
            socktype: h.ai_socktype,
            protocol: h.ai_protocol,
        }
    });
    if instant(n.as_deref(), s.as_deref(), h.map_or(0, |h| h.flags)) {
        // SAFETY: forwarded unchanged.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    }
    let looked_up = rt::run_owned(move || {
        let c = h.map(Hints::to_c);
        let mut out = Lookup {
            code: 0,
            errno: 0,
            res: std::ptr::null_mut(),
        };
        // SAFETY: owned strings and hints, and a writable result pointer.
        out.code = unsafe {
            resolver()(
                n.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
                s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                c.as_ref()
                    .map_or(std::ptr::null(), |c| c as *const libc::addrinfo),
                &mut out.res,
            )
        };
        out.errno = super::errno();
        out
    });
    match looked_up {
        Ok(mut l) => {
            // SAFETY: `res` is writable (checked non-null); the list is the caller's now.
            unsafe { *res = std::mem::replace(&mut l.res, std::ptr::null_mut()) };
            if l.code == libc::EAI_SYSTEM {
                set_errno(l.errno);
            }
            l.code
        }
        Err(p) => canceled(p, libc::EAI_SYSTEM),
    }
}

/// A `getnameinfo` result made on a helper thread.
struct Names {
    code: c_int,
    errno: c_int,
    host: Vec<u8>,
    serv: Vec<u8>,
}

/// Hook for `getnameinfo(3)`.
///
/// # Safety
/// The libc contract of `getnameinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getnameinfo(
    sa: *const sockaddr,
    salen: socklen_t,
    host: *mut c_char,
    hostlen: socklen_t,
    serv: *mut c_char,
    servlen: socklen_t,
    flags: c_int,
) -> c_int {
    let numeric = flags & libc::NI_NUMERICHOST != 0
        && (serv.is_null() || servlen == 0 || flags & libc::NI_NUMERICSERV != 0);
    let fits = (salen as usize) <= std::mem::size_of::<libc::sockaddr_storage>();
    if !cooperative() || numeric || sa.is_null() || !fits {
        // SAFETY: forwarded unchanged.
        return unsafe { real::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags) };
    }
    // SAFETY: an all-zero sockaddr_storage is a valid value to be overwritten.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: `sa` holds `salen` readable bytes (getnameinfo's contract), which fit.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.cast::<u8>(),
            (&raw mut addr).cast::<u8>(),
            salen as usize,
        )
    };
    let want_host = if host.is_null() { 0 } else { hostlen };
    let want_serv = if serv.is_null() { 0 } else { servlen };
    let looked_up = rt::run_owned(move || {
        let mut out = Names {
            code: 0,
            errno: 0,
            host: vec![0; want_host as usize],
            serv: vec![0; want_serv as usize],
        };
        let hp = if want_host == 0 {
            std::ptr::null_mut()
        } else {
            out.host.as_mut_ptr()
        };
        let sp = if want_serv == 0 {
            std::ptr::null_mut()
        } else {
            out.serv.as_mut_ptr()
        };
        // SAFETY: an owned address and owned buffers of the given lengths.
        out.code = unsafe {
            real::getnameinfo(
                (&raw const addr).cast(),
                salen,
                hp.cast(),
                want_host,
                sp.cast(),
                want_serv,
                flags,
            )
        };
        out.errno = super::errno();
        out
    });
    match looked_up {
        Ok(out) => {
            if out.code == 0 {
                // SAFETY: the caller's buffers hold `hostlen`/`servlen` bytes, as the
                // owned ones the real call filled.
                unsafe {
                    if want_host > 0 {
                        std::ptr::copy_nonoverlapping(
                            out.host.as_ptr(),
                            host.cast(),
                            out.host.len(),
                        );
                    }
                    if want_serv > 0 {
                        std::ptr::copy_nonoverlapping(
                            out.serv.as_ptr(),
                            serv.cast(),
                            out.serv.len(),
                        );
                    }
                }
            } else if out.code == libc::EAI_SYSTEM {
                set_errno(out.errno);
            }
            out.code
        }
        Err(p) => canceled(p, libc::EAI_SYSTEM),
    }
}

/// Hook for `gethostbyname_r(3)`.
///
/// # Safety
/// The libc contract of `gethostbyname_r`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: libc::size_t,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: forwarded unchanged (here or on a helper thread, while the caller waits).
    offload_if(cooperative(), || unsafe {
        real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop)
    } as isize) as c_int
}

/// Hook for `gethostbyname2_r(3)`.
///
/// # Safety
/// The libc contract of `gethostbyname2_r`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: libc::size_t,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: forwarded unchanged (here or on a helper thread, while the caller waits).
    offload_if(cooperative(), || unsafe {
        real::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop)
    } as isize) as c_int
}
