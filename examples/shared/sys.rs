//! Process facts from /proc and the file-descriptor limit (Linux).

use std::io;

/// `pid`'s `RLIMIT_NOFILE` (0: this process) before the call; sets it to `new` if given.
fn prlimit(pid: u32, new: Option<&libc::rlimit>) -> io::Result<libc::rlimit> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let new = new.map_or(std::ptr::null(), |n| n as *const libc::rlimit);
    // SAFETY: prlimit reads `new` (null: change nothing) and writes `old`, both live.
    if unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, new, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

/// Sets the soft `RLIMIT_NOFILE` of process `pid` (0: this one) to `soft`, capped at
/// the hard limit; returns the soft limit it replaced.
pub fn set_fd_limit(pid: u32, soft: u64) -> io::Result<u64> {
    let cur = prlimit(pid, None)?;
    let new = libc::rlimit {
        rlim_cur: soft.min(cur.rlim_max),
        rlim_max: cur.rlim_max,
    };
    prlimit(pid, Some(&new)).map(|old| old.rlim_cur)
}

/// Raises this process's soft `RLIMIT_NOFILE` to the hard limit; fails with a clear
/// message if that is still below `needed` file descriptors. Returns the new limit.
pub fn raise_fd_limit(needed: u64) -> Result<u64, String> {
    let lim = prlimit(0, None).map_err(|e| format!("getrlimit: {e}"))?;
    let have = match set_fd_limit(0, lim.rlim_max) {
        Ok(_) => lim.rlim_max,
        Err(_) => lim.rlim_cur,
    };
    if have < needed {
        return Err(format!(
            "need about {needed} file descriptors but RLIMIT_NOFILE is {have} \
             (hard limit {}); raise it with `ulimit -n {needed}` or use fewer connections",
            lim.rlim_max
        ));
    }
    Ok(have)
}

/// The number of OS threads in this process (entries of /proc/self/task).
pub fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// What a process holds: resident memory and open file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    /// `VmRSS` of /proc/PID/status, in KiB.
    pub rss_kib: u64,
    /// Entries of /proc/PID/fd.
    pub fds: usize,
}

/// [`ProcStats`] of process `pid`.
pub fn proc_stats(pid: u32) -> io::Result<ProcStats> {
    let dir = format!("/proc/{pid}");
    let status = std::fs::read_to_string(format!("{dir}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS in status"))?;
    let fds = std::fs::read_dir(format!("{dir}/fd"))?.count();
    Ok(ProcStats { rss_kib, fds })
}

/// Sets `SO_LINGER` to zero seconds on a socket: closing it then sends a reset (RST)
/// instead of the orderly FIN, dropping whatever is unsent.
pub fn set_linger_zero(sock: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes of the live `linger`; the fd
    // is borrowed, so open for the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
