//! `green::net::UdpSocket`'s multicast, broadcast and TTL options, beside
//! `std::net::UdpSocket`'s. No datagram is sent to a multicast group: groups are joined
//! on the loopback interface only, and each call must give what std gives for the same
//! call on the same kind of socket.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use green::net::UdpSocket;

/// The same outcome: both `Ok` and equal, or both errors with the same OS error (or
/// kind).
fn same<T: PartialEq + std::fmt::Debug>(green: io::Result<T>, std: io::Result<T>, what: &str) {
    match (green, std) {
        (Ok(g), Ok(s)) => assert_eq!(g, s, "{what}"),
        (Err(g), Err(s)) => {
            assert_eq!(g.raw_os_error(), s.raw_os_error(), "{what}: {g} vs {s}");
            assert_eq!(g.kind(), s.kind(), "{what}: {g} vs {s}");
        }
        (g, s) => panic!("{what}: green {g:?}, std {s:?}"),
    }
}

/// The loopback interface's index (for IPv6 memberships).
fn loopback_index() -> u32 {
    // SAFETY: a NUL-terminated string literal.
    unsafe { libc::if_nametoindex(c"lo".as_ptr()) }
}

#[test]
fn v4_join_and_leave_on_loopback() {
    let g = UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let group = Ipv4Addr::new(224, 0, 0, 123);
    let lo = Ipv4Addr::LOCALHOST;
    same(
        g.join_multicast_v4(&group, &lo),
        s.join_multicast_v4(&group, &lo),
        "join",
    );
    // A second join of the same group fails the same way (EADDRINUSE on Linux).
    same(
        g.join_multicast_v4(&group, &lo),
        s.join_multicast_v4(&group, &lo),
        "join twice",
    );
    same(
        g.leave_multicast_v4(&group, &lo),
        s.leave_multicast_v4(&group, &lo),
        "leave",
    );
    // Not a member any more.
    let (gl, sl) = (
        g.leave_multicast_v4(&group, &lo),
        s.leave_multicast_v4(&group, &lo),
    );
    assert!(gl.is_err());
    same(gl, sl, "leave twice");
    // Not a multicast address.
    let unicast = Ipv4Addr::new(127, 0, 0, 2);
    let (gj, sj) = (
        g.join_multicast_v4(&unicast, &lo),
        s.join_multicast_v4(&unicast, &lo),
    );
    assert!(gj.is_err());
    same(gj, sj, "join a unicast address");
}

#[test]
fn v4_options_round_trip() {
    let g = UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    same(g.multicast_loop_v4(), s.multicast_loop_v4(), "default loop");
    same(
        g.multicast_ttl_v4(),
        s.multicast_ttl_v4(),
        "default multicast ttl",
    );
    for on in [false, true] {
        g.set_multicast_loop_v4(on).unwrap();
        assert_eq!(g.multicast_loop_v4().unwrap(), on);
    }
    for ttl in [0, 7, 255] {
        g.set_multicast_ttl_v4(ttl).unwrap();
        assert_eq!(g.multicast_ttl_v4().unwrap(), ttl);
    }
    same(
        g.set_multicast_ttl_v4(256),
        s.set_multicast_ttl_v4(256),
        "ttl out of range",
    );
    for on in [true, false] {
        g.set_broadcast(on).unwrap();
        assert_eq!(g.broadcast().unwrap(), on);
    }
    g.set_ttl(33).unwrap();
    assert_eq!(g.ttl().unwrap(), 33);
    // IPv6 options on an IPv4 socket: whatever std says.
    same(
        g.multicast_loop_v6(),
        s.multicast_loop_v6(),
        "v6 loop on a v4 socket",
    );
}

#[test]
fn v6_join_leave_and_loop() {
    let (g, s) = match (
        UdpSocket::bind("[::1]:0"),
        std::net::UdpSocket::bind("[::1]:0"),
    ) {
        (Ok(g), Ok(s)) => (g, s),
        (Err(g), Err(s)) => {
            // No IPv6 loopback here: green must fail like std.
            assert_eq!(g.kind(), s.kind());
            eprintln!("skipped: no IPv6 loopback ({s})");
            return;
        }
        (g, s) => panic!("bind [::1]: green {g:?}, std {s:?}"),
    };
    let group: Ipv6Addr = "ff02::123".parse().unwrap();
    let lo = loopback_index();
    assert_ne!(lo, 0, "no loopback interface");
    same(
        g.join_multicast_v6(&group, lo),
        s.join_multicast_v6(&group, lo),
        "join",
    );
    same(
        g.leave_multicast_v6(&group, lo),
        s.leave_multicast_v6(&group, lo),
        "leave",
    );
    let (gl, sl) = (
        g.leave_multicast_v6(&group, lo),
        s.leave_multicast_v6(&group, lo),
    );
    assert!(gl.is_err());
    same(gl, sl, "leave twice");
    same(g.multicast_loop_v6(), s.multicast_loop_v6(), "default loop");
    for on in [false, true] {
        g.set_multicast_loop_v6(on).unwrap();
        assert_eq!(g.multicast_loop_v6().unwrap(), on);
    }
}
