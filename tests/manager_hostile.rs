//! Hostile clients: wrong keys, garbage, oversized and negative frame lengths, slow
//! and silent handshakes. The server decodes nothing of theirs and keeps serving the
//! others meanwhile.
#![allow(clippy::disallowed_types)] // tests/common counts with a std atomic

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Child;
use shmkit::connection::{Address, Client, Options};
use shmkit::manager::{Error, Manager, Stats};

fn server(options: Options) -> (Address, Child) {
    let server = Manager::bind_with("tcp:127.0.0.1:0", b"good key", options).unwrap();
    let address = server.address().clone();
    (
        address,
        Child::spawn(move || server.serve().map_or(1, |()| 0)),
    )
}

fn host_port(a: &Address) -> String {
    match a {
        Address::Tcp(hp) => hp.clone(),
        _ => unreachable!(),
    }
}

/// Connects a raw socket, reads the server's challenge frame, sends `bytes`.
fn raw(a: &Address, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(host_port(a)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut challenge = [0u8; 4 + 11 + 8 + 40];
    s.read_exact(&mut challenge).unwrap();
    assert_eq!(&challenge[4..15], b"#CHALLENGE#");
    s.write_all(bytes).unwrap();
    s
}

/// Reads until the server closes the socket; how long that took.
fn closed_within(mut s: TcpStream) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return t.elapsed(),
            Ok(_) => {}
        }
    }
}

#[test]
fn the_server_decodes_nothing_before_a_key_is_verified() {
    let options = Options::new()
        .handshake_timeout(Duration::from_secs(1))
        .max_frame(64 * 1024);
    let (address, child) = server(options);
    let m = Manager::connect(&address, b"good key").unwrap();
    let mut stats_calls = 0u64;
    let mut stats = || -> Stats {
        stats_calls += 1;
        m.stats().unwrap()
    };
    let before = stats();

    // Wrong keys (through the real client) ...
    for _ in 0..5 {
        let r = Client::connect(&address, b"bad key");
        assert!(matches!(r, Err(Error::Authentication(_))), "{r:?}");
    }
    // ... garbage, an absurd length, a negative one, a frame over the 256-byte cap.
    let hostile: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &0x7fff_ffffi32.to_be_bytes(),
        &(-5i32).to_be_bytes(),
        &300i32.to_be_bytes(),
    ];
    for bytes in hostile {
        let waited = closed_within(raw(&address, bytes));
        assert!(waited < Duration::from_millis(900), "{waited:?}");
    }
    // An authenticated connection announcing a frame over the server's maximum is
    // closed before anything is read (let alone decoded).
    let mut authed = Client::connect(&address, b"good key").unwrap();
    authed.set_timeout(Some(Duration::from_secs(10)));
    let _ = authed.send_bytes(&vec![0u8; 100 * 1024]);
    assert!(authed.recv_bytes(1024).is_err());

    let expected_failed = before.handshakes_failed + 9;
    assert!(common::eventually(Duration::from_secs(5), || {
        stats().handshakes_failed == expected_failed
    }));
    let after = stats();
    assert_eq!(
        after.requests_decoded,
        before.requests_decoded + stats_calls - 1,
        "only the good client's requests were decoded"
    );
    m.shutdown().unwrap();
    assert!(child.join().success());
}

#[test]
fn a_wrong_answer_to_the_challenge_gets_failure() {
    let (address, child) = server(Options::new());
    // A well-formed answer with a wrong digest: the server must say #FAILURE#
    // (checked on its own, without the mutual half of the handshake).
    let mut answer = b"{sha256}".to_vec();
    answer.extend_from_slice(&[0u8; 32]);
    let mut frame = (answer.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&answer);
    let mut s = raw(&address, &frame);
    let mut verdict = [0u8; 4 + 9];
    s.read_exact(&mut verdict).unwrap();
    assert_eq!(&verdict[4..], b"#FAILURE#");
    assert!(closed_within(s) < Duration::from_secs(2));
    let m = Manager::connect(&address, b"good key").unwrap();
    assert_eq!(m.stats().unwrap().handshakes_failed, 1);
    m.shutdown().unwrap();
    assert!(child.join().success());
}

#[test]
fn slow_and_silent_handshakes_do_not_hold_up_the_others() {
    let options = Options::new().handshake_timeout(Duration::from_secs(1));
    let (address, child) = server(options);
    let m = Manager::connect(&address, b"good key").unwrap();
    let v = m.value("v", &5u32).unwrap();

    // Twenty clients that say nothing, and one that trickles a byte at a time.
    let silent: Vec<TcpStream> = (0..20).map(|_| raw(&address, &[])).collect();
    let trickle = std::thread::spawn({
        let address = address.clone();
        move || {
            let mut s = raw(&address, &[]);
            let t = Instant::now();
            for b in 20i32.to_be_bytes().iter().chain(&[7u8; 20]) {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = s.write_all(&[0]);
            (t, closed_within(s))
        }
    });
    // Meanwhile the good client is served promptly.
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    while start.elapsed() < Duration::from_millis(1500) {
        let t = Instant::now();
        assert_eq!(v.get().unwrap(), 5);
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "slowest call {slowest:?}"
    );
    // Every one of them was cut off at the handshake deadline.
    for s in silent {
        assert!(closed_within(s) < Duration::from_secs(3));
    }
    let (t, _) = trickle.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    m.shutdown().unwrap();
    assert!(child.join().success());
}

#[test]
fn an_authenticated_client_speaking_garbage_is_dropped_alone() {
    let (address, child) = server(Options::new());
    let m = Manager::connect(&address, b"good key").unwrap();
    let d = m.dict::<u8, u8>("d").unwrap();
    let mut garbage = Client::connect(&address, b"good key").unwrap();
    garbage.set_timeout(Some(Duration::from_secs(10)));
    garbage.send_bytes(&[0xff; 40]).unwrap();
    // The server says "bad request" and hangs up.
    let reply = garbage.recv_bytes(1024).unwrap();
    assert!(!reply.is_empty());
    assert_eq!(garbage.recv_bytes(1024), Err(Error::Disconnected));
    d.insert(&1, &2).unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(2));
    m.shutdown().unwrap();
    assert!(child.join().success());
}
