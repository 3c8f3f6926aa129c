//! Clients and servers that die, over real processes: a client killed with `kill -9`
//! while holding locks and permits, a server killed (or stopped) under blocked and
//! idle calls, many clients at once with an exact final state.
#![allow(clippy::disallowed_types)] // tests/common counts with a std atomic

mod common;

use std::time::{Duration, Instant};

use common::Child;
use shmkit::connection::{Address, Options};
use shmkit::manager::{Error, Manager};

/// A server forked on `address` (`unix:` or `tcp:127.0.0.1:0`); its address, and
/// the child serving it.
fn forked_server(address: &str, key: &[u8], options: Options) -> (Address, Child) {
    let server = Manager::bind_with(address, key, options).unwrap();
    let address = server.address().clone();
    (
        address,
        Child::spawn(move || server.serve().map_or(1, |()| 0)),
    )
}

fn unix_address(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!("shmkit-crash-{}", std::process::id()));
    format!("unix:{}/{tag}.sock", dir.display())
}

fn addresses(tag: &str) -> [String; 2] {
    [unix_address(tag), "tcp:127.0.0.1:0".to_string()]
}

#[test]
fn a_client_killed_holding_locks_and_permits_gives_them_back() {
    for address in addresses("holder") {
        let (address, server) = forked_server(&address, b"k", Options::new());
        let m = Manager::connect(&address, b"k").unwrap();
        let lock = m.lock("lock").unwrap();
        let rlock = m.rlock("rlock").unwrap();
        let sem = m.semaphore("sem", 3).unwrap();
        let held = m.event("held").unwrap();
        let holder = Child::spawn(|| {
            lock.acquire().unwrap();
            rlock.acquire().unwrap();
            rlock.acquire().unwrap();
            sem.acquire().unwrap();
            sem.acquire().unwrap();
            held.set().unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        assert!(held.wait_timeout(Duration::from_secs(20)).unwrap());
        assert!(!lock.try_acquire().unwrap());
        assert_eq!(sem.value().unwrap(), 1);
        // A waiter already blocked when the holder dies is the one told.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| lock.acquire_timeout(Duration::from_secs(20)));
            std::thread::sleep(Duration::from_millis(50));
            let t = Instant::now();
            signal(holder.pid(), libc::SIGKILL);
            assert_eq!(waiter.join().unwrap(), Err(Error::OwnerDead));
            assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        });
        drop(holder);
        // The waiter's thread holds the lock now (it was told OwnerDead).
        assert!(lock.is_locked().unwrap());
        lock.release().unwrap();
        assert!(lock.try_acquire().unwrap());
        lock.release().unwrap();
        assert_eq!(rlock.acquire(), Err(Error::OwnerDead));
        rlock.release().unwrap();
        assert!(!rlock.is_locked().unwrap());
        assert!(common::eventually(Duration::from_secs(5), || sem
            .value()
            .unwrap()
            == 3));
        m.shutdown().unwrap();
        assert!(server.join().success());
        if let Address::Unix(path) = &address {
            assert!(
                !path.exists(),
                "the serving process removes its socket file"
            );
        }
    }
}

#[test]
fn a_dead_client_is_noticed_even_while_a_child_it_forked_lives() {
    // The client forks a child that never uses the manager: the child's copies of
    // the client's sockets must not keep the client's session (and lock) alive.
    let (address, server) = forked_server(&unix_address("orphan"), b"k", Options::new());
    let m = Manager::connect(&address, b"k").unwrap();
    let lock = m.lock("lock").unwrap();
    let grandchild = m.value("grandchild", &0i32).unwrap();
    let client = Child::spawn(|| {
        let m = Manager::connect(&address, b"k").unwrap();
        let lock = m.lock("lock").unwrap();
        lock.acquire().unwrap();
        let sleeper = shmkit::Process::spawn(|| {
            std::thread::sleep(Duration::from_secs(60));
            0
        })
        .unwrap();
        m.value("grandchild", &0i32)
            .unwrap()
            .set(&sleeper.pid())
            .unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(common::eventually(Duration::from_secs(20), || grandchild
        .get()
        .unwrap()
        != 0));
    let sleeper = grandchild.get().unwrap();
    signal(client.pid(), libc::SIGKILL);
    let r = lock.acquire_timeout(Duration::from_secs(10));
    signal(sleeper, libc::SIGKILL);
    assert_eq!(r, Err(Error::OwnerDead));
    drop(client);
    m.shutdown().unwrap();
    assert!(server.join().success());
}

#[test]
fn a_started_server_dies_with_the_process_that_started_it() {
    let pipe = shmkit::Shared::new(shmkit::Pipe::<4096>::new()).unwrap();
    let (ours, theirs) = pipe.ends();
    let starter = Child::spawn(move || {
        let m = Manager::start().unwrap();
        // Started from a short-lived thread: the server must follow the process,
        // not the thread (PR_SET_PDEATHSIG would follow the thread).
        let m = std::thread::spawn(move || m).join().unwrap();
        m.value("v", &1u8).unwrap();
        let text = format!(
            "{}\n{}",
            m.address(),
            m.authkey()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        theirs.send_bytes(text.as_bytes()).unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let mut buf = [0u8; 1024];
    let n = ours.recv_bytes_into(&mut buf).unwrap();
    let text = String::from_utf8(buf[..n].to_vec()).unwrap();
    let (address, key) = text.split_once('\n').unwrap();
    let key: Vec<u8> = (0..key.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&key[i..i + 2], 16).unwrap())
        .collect();
    let m = Manager::connect(address, &key).unwrap();
    assert_eq!(m.value("v", &0u8).unwrap().get().unwrap(), 1);
    drop(m);
    let socket = std::path::PathBuf::from(address.strip_prefix("unix:").unwrap());
    assert!(socket.exists());
    signal(starter.pid(), libc::SIGKILL);
    drop(starter);
    // The server notices within moments, removes its socket directory and exits.
    // (The socket goes first, then its directory: wait for both.)
    assert!(common::eventually(Duration::from_secs(5), || !socket.exists()));
    assert!(common::eventually(Duration::from_secs(5), || !socket
        .parent()
        .unwrap()
        .exists()));
    assert!(Manager::connect(address, &key).is_err());
}

#[test]
fn a_killed_server_fails_every_call_at_once() {
    for address in addresses("killed") {
        let (address, server) = forked_server(&address, b"k", Options::new());
        let m = Manager::connect(&address, b"k").unwrap();
        let q = m.queue::<u32>("q", 0).unwrap();
        let v = m.value("v", &1u32).unwrap();
        std::thread::scope(|s| {
            let blocked = s.spawn(|| q.get());
            std::thread::sleep(Duration::from_millis(100));
            let t = Instant::now();
            signal(server.pid(), libc::SIGKILL);
            assert_eq!(blocked.join().unwrap(), Err(Error::Disconnected));
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        });
        let t = Instant::now();
        assert!(v.get().is_err());
        assert!(q.try_get().is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
        let status = { server }.join();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}

#[test]
fn a_stopped_server_fails_calls_within_the_liveness_window() {
    let (address, server) = forked_server("tcp:127.0.0.1:0", b"k", Options::new());
    let liveness = Duration::from_millis(1500);
    let m = Manager::connect_with(&address, b"k", Options::new().liveness(liveness)).unwrap();
    let q = m.queue::<u32>("q", 0).unwrap();
    // A blocked call lives on heartbeats while the server runs...
    assert_eq!(q.get_timeout(Duration::from_secs(3)), Err(Error::Timeout));
    // ... and ends when they stop (a host that vanished sends no FIN either).
    std::thread::scope(|s| {
        let blocked = s.spawn(|| q.get());
        std::thread::sleep(Duration::from_millis(200));
        signal(server.pid(), libc::SIGSTOP);
        let t = Instant::now();
        assert_eq!(blocked.join().unwrap(), Err(Error::Timeout));
        let waited = t.elapsed();
        assert!(waited < liveness + Duration::from_secs(2), "{waited:?}");
    });
    // A later call fails too: on a pooled connection within the liveness window, on a
    // new one within the handshake deadline (5 s).
    let t = Instant::now();
    assert_eq!(q.qsize(), Err(Error::Timeout));
    assert!(
        t.elapsed() >= liveness && t.elapsed() < Duration::from_secs(8),
        "{:?}",
        t.elapsed()
    );
    signal(server.pid(), libc::SIGKILL);
    signal(server.pid(), libc::SIGCONT);
    drop(server);
}

#[test]
fn many_clients_many_ops_exact_final_state() {
    const CLIENTS: u32 = 4;
    const OPS: u32 = 150;
    for address in addresses("many") {
        let (address, server) = forked_server(&address, b"many", Options::new());
        let address = &address;
        let children: Vec<Child> = (0..CLIENTS)
            .map(|c| {
                Child::spawn(move || {
                    // Each child is a separate client (it connects itself).
                    let m = Manager::connect(address, b"many").unwrap();
                    let d = m.dict::<(u32, u32), u32>("d").unwrap();
                    let q = m.queue::<(u32, u32)>("q", 8).unwrap();
                    let total = m.value("total", &0u64).unwrap();
                    let lock = m.lock("total-lock").unwrap();
                    for i in 0..OPS {
                        d.insert(&(c, i), &(c * OPS + i)).unwrap();
                        q.put(&(c, i)).unwrap();
                        lock.acquire().unwrap();
                        total.set(&(total.get().unwrap() + 1)).unwrap();
                        lock.release().unwrap();
                    }
                    0
                })
            })
            .collect();
        let m = Manager::connect(address, b"many").unwrap();
        let q = m.queue::<(u32, u32)>("q", 8).unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..CLIENTS * OPS {
            let item = q.get_timeout(Duration::from_secs(30)).unwrap();
            assert!(seen.insert(item), "{item:?} twice");
        }
        for c in children {
            assert!(c.join().success());
        }
        assert_eq!(q.try_get(), Err(Error::WouldBlock));
        let d = m.dict::<(u32, u32), u32>("d").unwrap();
        assert_eq!(d.len().unwrap(), (CLIENTS * OPS) as usize);
        for (k, v) in d.items().unwrap() {
            assert_eq!(v, k.0 * OPS + k.1);
        }
        assert_eq!(
            m.value("total", &0u64).unwrap().get().unwrap(),
            u64::from(CLIENTS * OPS)
        );
        // Every child's session ended with it.
        assert!(common::eventually(Duration::from_secs(5), || m
            .stats()
            .unwrap()
            .sessions
            == 1));
        m.shutdown().unwrap();
        assert!(server.join().success());
    }
}

/// Sends `sig` to `pid` (a child of this test, not yet reaped).
fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes no memory; the pid is our unreaped child, so not reused.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}
