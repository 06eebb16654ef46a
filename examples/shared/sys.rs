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
