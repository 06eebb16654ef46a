//! Naming the greenlet whose stack overflowed.
//!
//! A greenlet that overflows its stack runs into the guard page below it
//! (see `stack`) and the kernel raises `SIGSEGV` (or `SIGBUS`). Rust's own
//! handler only knows the thread's stack, so it would report a plain segmentation fault.
//! [`install`] puts a process-wide handler in front of it:
//!
//! * The handler finds the running greenlet's record through the thread's pointer to the
//!   current greenlet (`thread::running_info`), which the trampoline writes on every
//!   switch anyway; main and the hub have empty guard ranges. The tests of stacks outside
//!   any greenlet publish a record explicitly instead (`set_running`).
//! * The handler runs on the thread's alternate signal stack (`SA_ONSTACK`; the faulting
//!   stack is unusable), which [`ensure_altstack`] guarantees exists.
//! * If the fault was raised by the kernel (`si_code > 0`) and its address is inside the
//!   running greenlet's guard page, the handler writes
//!   `green: greenlet #42 "worker" overflowed its stack (131072 bytes); give it a larger
//!   stack with green::Builder::stack_size` to stderr and aborts.
//! * Otherwise it chains to the handler that was installed before (usually std's, which
//!   handles overflows of the thread's own stack). If that was `SIG_DFL` (or `SIG_IGN`),
//!   the default disposition is restored and the handler returns: the faulting instruction
//!   runs again and the process dies of the signal as it would have without us.
//!
//! Everything the handler does is async-signal-safe: it reads a `const`-initialised
//! thread-local without destructor, formats digits by hand into a stack buffer and uses
//! only `write(2)`, `sigaction(2)`, `raise(3)` and `abort(3)`.

#[cfg(test)]
use std::cell::Cell;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Once;

/// What the overflow handler needs to know about the running greenlet.
///
/// Each greenlet's record holds one (`Cold::info`), found through the current greenlet;
/// it does not change while its greenlet runs.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RunningInfo {
    /// Low end of the greenlet's guard page (inclusive).
    pub guard_lo: usize,
    /// High end of the guard page (exclusive): the lowest usable stack address.
    pub guard_hi: usize,
    /// The greenlet's id, printed as `#id`.
    pub id: u64,
    /// The greenlet's name (UTF-8 bytes, need not be NUL-terminated); null for none.
    pub name_ptr: *const u8,
    /// Length of the name in bytes.
    pub name_len: usize,
    /// Usable stack size in bytes, printed in the message.
    pub stack_size: usize,
}

#[cfg(test)]
thread_local! {
    /// A record the tests publish for stacks outside any greenlet (null: none). `const`
    /// and without destructor, so reading it is a plain TLS load (async-signal-safe).
    static RUNNING: Cell<*const RunningInfo> = const { Cell::new(ptr::null()) };
}

impl RunningInfo {
    /// A record for a greenlet with no name (set `name_ptr`/`name_len` to give one).
    pub(crate) fn new(guard_lo: usize, guard_hi: usize, id: u64, stack_size: usize) -> Self {
        RunningInfo {
            guard_lo,
            guard_hi,
            id,
            name_ptr: std::ptr::null(),
            name_len: 0,
            stack_size,
        }
    }
}

impl Default for RunningInfo {
    /// The record of a greenlet without a stack of its own (the main greenlet, the hub):
    /// an empty guard range.
    fn default() -> Self {
        RunningInfo::new(0, 0, 0, 0)
    }
}

/// Publishes the running greenlet for the overflow handler; null means the thread is on
/// its own stack. `info` must stay valid until it is replaced (by another call).
#[inline]
#[cfg(test)]
pub(crate) fn set_running(info: *const RunningInfo) {
    RUNNING.with(|r| r.set(info));
}

/// The record last published on this thread.
#[inline]
#[cfg(test)]
pub(crate) fn running() -> *const RunningInfo {
    RUNNING.get()
}

/// The previous dispositions of SIGSEGV (index 0) and SIGBUS (index 1), written once in
/// [`install`] before our handler is installed, read only by the handler afterwards.
struct PrevActions(UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);

// SAFETY: written only inside `INSTALL.call_once` before the handler that reads it is
// installed (sigaction is a full barrier with respect to signal delivery); read-only after.
unsafe impl Sync for PrevActions {}

static PREV: PrevActions = PrevActions(UnsafeCell::new([
    MaybeUninit::uninit(),
    MaybeUninit::uninit(),
]));
static INSTALL: Once = Once::new();

const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Installs the process-wide SIGSEGV/SIGBUS handler (idempotent). Call it before the
/// first greenlet runs, together with [`ensure_altstack`] on every thread running
/// greenlets.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: `PREV` is only written here, once, before our handler (its only
            // reader) is installed for `sig`. sigaction with a null new action only
            // reads the current one into valid, writable storage.
            unsafe {
                let prev = (*PREV.0.get())[i].as_mut_ptr();
                ptr::write_bytes(prev, 0, 1);
                if libc::sigaction(sig, ptr::null(), prev) != 0 {
                    (*prev).sa_sigaction = libc::SIG_DFL;
                }
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(sig, &action, ptr::null_mut()) != 0 {
                    log::warn!(
                        "green: cannot install the stack overflow handler: {}",
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
    });
}

/// An alternate signal stack allocated by [`ensure_altstack`]; dropping it (at thread
/// exit: the thread's state owns it) frees it.
pub(crate) struct OwnAltStack {
    addr: usize,
    len: usize,
}

impl Drop for OwnAltStack {
    fn drop(&mut self) {
        let (addr, len) = (self.addr, self.len);
        // SAFETY: disable the thread's alternate stack before freeing it, but only if it
        // still is ours; `current` is valid writable storage.
        unsafe {
            let mut current: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(ptr::null(), &mut current) == 0
                && current.ss_sp as usize == addr + crate::greenlet::stack::page_size()
            {
                if current.ss_flags & libc::SS_ONSTACK != 0 {
                    return; // Running on it (cannot happen at thread exit); leak it.
                }
                let disable = libc::stack_t {
                    ss_sp: ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&disable, ptr::null_mut());
            }
            libc::munmap(addr as *mut libc::c_void, len);
        }
    }
}

/// Usable size of an alternate signal stack we allocate.
const ALTSTACK_SIZE: usize = 64 * 1024;

/// Makes sure the calling thread has an alternate signal stack, on which the overflow
/// handler runs (a thread whose greenlet overflowed has no usable stack). std provides
/// one for the main thread and threads it spawns; threads created otherwise get a 64 KiB
/// one (plus a guard page), returned to be kept until the thread exits.
#[must_use = "dropping the returned stack frees it"]
pub(crate) fn ensure_altstack() -> Option<OwnAltStack> {
    let mut old = libc::stack_t {
        ss_sp: ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: sigaltstack with a null new stack only reads the current one into `old`.
    let rc = unsafe { libc::sigaltstack(ptr::null(), &mut old) };
    if rc == 0 && old.ss_flags & libc::SS_DISABLE == 0 {
        return None;
    }
    let page = crate::greenlet::stack::page_size();
    let len = ALTSTACK_SIZE.max(libc::SIGSTKSZ) + page;
    // SAFETY: a fresh anonymous mapping; aliases nothing.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        log::warn!(
            "green: cannot allocate a signal stack: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    // SAFETY: the lowest page of our fresh mapping becomes its guard page; the rest is
    // handed to the kernel as this thread's alternate signal stack, which only signal
    // delivery on this thread uses. It is recorded for freeing at thread exit.
    unsafe {
        libc::mprotect(addr, page, libc::PROT_NONE);
        let stack = libc::stack_t {
            ss_sp: addr.cast::<u8>().add(page).cast(),
            ss_flags: 0,
            ss_size: len - page,
        };
        if libc::sigaltstack(&stack, ptr::null_mut()) != 0 {
            log::warn!(
                "green: cannot install a signal stack: {}",
                std::io::Error::last_os_error()
            );
            libc::munmap(addr, len);
            return None;
        }
    }
    Some(OwnAltStack {
        addr: addr as usize,
        len,
    })
}

/// The SIGSEGV/SIGBUS handler.
///
/// # Safety
///
/// Called by the kernel only, with a valid `info` (SA_SIGINFO).
unsafe extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    #[cfg(test)]
    let published = RUNNING.get();
    #[cfg(not(test))]
    let published: *const RunningInfo = ptr::null();
    let running = if published.is_null() {
        crate::greenlet::thread::running_info()
    } else {
        published
    };
    // SAFETY: the kernel passes a valid siginfo; `si_addr` is meaningful for faults it
    // raised itself (si_code > 0), not for kill/raise/sigqueue.
    let fault_addr = unsafe {
        if info.is_null() || (*info).si_code <= 0 {
            None
        } else {
            Some((*info).si_addr() as usize)
        }
    };
    if let (Some(addr), false) = (fault_addr, running.is_null()) {
        // SAFETY: the scheduler keeps a published record valid while it is published.
        let record = unsafe { &*running };
        if addr >= record.guard_lo && addr < record.guard_hi {
            // SAFETY: as above; `report` only reads the record and writes to fd 2.
            unsafe { report(record) };
            // SAFETY: abort is async-signal-safe.
            unsafe { libc::abort() };
        }
    }
    // SAFETY: the handler was installed by `install`, which filled PREV first.
    unsafe { chain(sig, info, ctx) };
}

/// Passes a signal that is not a greenlet overflow on to the previous handler.
///
/// # Safety
///
/// Only from `handler`, with its arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let idx = if sig == libc::SIGSEGV { 0 } else { 1 };
    // SAFETY: PREV[idx] was initialised by `install` before this handler was installed.
    let prev = unsafe { (*PREV.0.get())[idx].assume_init_ref() };
    let action = prev.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // Restore the default disposition. Returning re-runs the faulting instruction,
        // which now kills the process as if we had never been there. (Ignoring a
        // hardware fault is not possible; it would loop forever.) A signal sent with
        // kill/raise is re-raised instead: it is pending until this handler returns.
        // SAFETY: sigaction and raise are async-signal-safe; `dfl` is a valid action.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut dfl.sa_mask);
            libc::sigaction(sig, &dfl, ptr::null_mut());
            if info.is_null() || (*info).si_code <= 0 {
                libc::raise(sig);
            }
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has the
        // three-argument signature; we pass on the kernel's own arguments.
        unsafe {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(action);
            f(sig, info, ctx);
        }
    } else {
        // SAFETY: without SA_SIGINFO the previous handler has the one-argument signature.
        unsafe {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(action);
            f(sig);
        }
    }
}

/// A fixed-size message buffer that silently truncates.
struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl Buf {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// Longest name printed, in bytes.
const MAX_NAME: usize = 200;

/// Formats the overflow message for `record` without allocating.
///
/// # Safety
///
/// `record.name_ptr` is null or points to `record.name_len` readable bytes.
unsafe fn format_message(record: &RunningInfo, buf: &mut Buf) {
    buf.push(b"green: greenlet #");
    buf.push_u64(record.id);
    if !record.name_ptr.is_null() && record.name_len > 0 {
        // SAFETY: guaranteed by the caller (the scheduler's published record).
        let name =
            unsafe { std::slice::from_raw_parts(record.name_ptr, record.name_len.min(MAX_NAME)) };
        buf.push(b" \"");
        buf.push(name);
        if record.name_len > MAX_NAME {
            buf.push(b"...");
        }
        buf.push(b"\"");
    }
    buf.push(b" overflowed its stack (");
    buf.push_u64(record.stack_size as u64);
    buf.push(b" bytes); give it a larger stack with green::Builder::stack_size\n");
}

/// Writes the overflow message for `record` to stderr with `write(2)` only.
///
/// # Safety
///
/// As [`format_message`].
unsafe fn report(record: &RunningInfo) {
    let mut buf = Buf {
        bytes: [0; 512],
        len: 0,
    };
    // SAFETY: forwarded from the caller.
    unsafe { format_message(record, &mut buf) };
    let mut rest = &buf.bytes[..buf.len];
    while !rest.is_empty() {
        // SAFETY: writing initialised bytes of a live buffer to fd 2.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n > 0 {
            rest = &rest[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_formatted_by_hand() {
        let name = "worker";
        let record = RunningInfo {
            guard_lo: 0,
            guard_hi: 4096,
            id: 42,
            name_ptr: name.as_ptr(),
            name_len: name.len(),
            stack_size: 131072,
        };
        let mut buf = Buf {
            bytes: [0; 512],
            len: 0,
        };
        // SAFETY: the name pointer and length come from a live &str.
        unsafe { format_message(&record, &mut buf) };
        assert_eq!(
            std::str::from_utf8(&buf.bytes[..buf.len]).unwrap(),
            "green: greenlet #42 \"worker\" overflowed its stack (131072 bytes); \
             give it a larger stack with green::Builder::stack_size\n"
        );

        let record = RunningInfo {
            name_ptr: ptr::null(),
            name_len: 0,
            id: u64::MAX,
            stack_size: 0,
            ..record
        };
        let mut buf = Buf {
            bytes: [0; 512],
            len: 0,
        };
        // SAFETY: null name.
        unsafe { format_message(&record, &mut buf) };
        let text = std::str::from_utf8(&buf.bytes[..buf.len]).unwrap();
        assert!(
            text.starts_with(
                "green: greenlet #18446744073709551615 overflowed its stack (0 bytes)"
            ),
            "{text}"
        );
    }

    #[test]
    fn long_names_are_truncated() {
        let name = "x".repeat(10_000);
        let record = RunningInfo {
            guard_lo: 0,
            guard_hi: 0,
            id: 7,
            name_ptr: name.as_ptr(),
            name_len: name.len(),
            stack_size: 1,
        };
        let mut buf = Buf {
            bytes: [0; 512],
            len: 0,
        };
        // SAFETY: the name pointer and length come from a live String.
        unsafe { format_message(&record, &mut buf) };
        let text = std::str::from_utf8(&buf.bytes[..buf.len]).unwrap();
        assert!(
            text.contains(&format!("\"{}...\"", "x".repeat(MAX_NAME))),
            "{text}"
        );
        assert!(text.ends_with("stack_size\n"), "{text}");
    }

    #[test]
    fn set_running_roundtrip_and_install_idempotent() {
        install();
        install();
        let _own = ensure_altstack();
        assert!(ensure_altstack().is_none(), "the thread has one now");
        let record = RunningInfo {
            guard_lo: 1,
            guard_hi: 2,
            id: 1,
            name_ptr: ptr::null(),
            name_len: 0,
            stack_size: 0,
        };
        set_running(&record);
        assert_eq!(running(), &record as *const _);
        set_running(ptr::null());
        assert!(running().is_null());
    }

    #[test]
    fn thread_without_altstack_gets_one() {
        // A thread whose alternate stack was removed (as if created by C code).
        std::thread::spawn(|| {
            // SAFETY: disabling this thread's alternate signal stack; std's own stack
            // stays mapped until the thread exits and is not used in between.
            unsafe {
                let disable = libc::stack_t {
                    ss_sp: ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                assert_eq!(libc::sigaltstack(&disable, ptr::null_mut()), 0);
            }
            let _own = ensure_altstack();
            let mut cur = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: 0,
                ss_size: 0,
            };
            // SAFETY: only reads the current alternate stack into `cur`.
            assert_eq!(unsafe { libc::sigaltstack(ptr::null(), &mut cur) }, 0);
            assert_eq!(cur.ss_flags & libc::SS_DISABLE, 0);
            assert!(cur.ss_size >= ALTSTACK_SIZE);
        })
        .join()
        .unwrap();
    }
}
