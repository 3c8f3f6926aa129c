//! Every manager proxy's behaviour, through a real forked server, over a Unix socket
//! and over TCP on loopback.
#![allow(clippy::disallowed_types)] // tests/common counts with a std atomic

mod common;

use std::time::{Duration, Instant};

use common::Child;
use shmkit::manager::{Dict, Error, Manager, Proxy, Queue, Token};

/// A server forked on `tcp:127.0.0.1:0`, and a handle on it.
fn tcp_manager(key: &[u8]) -> (Manager, Child) {
    let server = Manager::bind("tcp:127.0.0.1:0", key).unwrap();
    let address = server.address().clone();
    let child = Child::spawn(move || server.serve().map_or(1, |()| 0));
    (Manager::connect(&address, key).unwrap(), child)
}

fn both(f: impl Fn(&Manager)) {
    let local = Manager::start().unwrap();
    f(&local);
    local.shutdown().unwrap();
    let (remote, child) = tcp_manager(b"objects key");
    f(&remote);
    remote.shutdown().unwrap();
    assert!(child.join().success());
}

#[test]
fn dict_list_namespace_value_array() {
    both(|m| {
        let d = m.dict::<String, u64>("d").unwrap();
        assert_eq!(d.insert(&"a".into(), &1).unwrap(), None);
        assert_eq!(d.insert(&"a".into(), &2).unwrap(), Some(1));
        assert_eq!(d.setdefault(&"b".into(), &5).unwrap(), 5);
        assert_eq!(d.setdefault(&"b".into(), &6).unwrap(), 5);
        assert!(d.contains_key(&"a".into()).unwrap());
        d.update([(&"c".to_string(), &3u64)]).unwrap();
        assert_eq!(d.len().unwrap(), 3);
        assert_eq!(d.keys().unwrap(), ["a", "b", "c"]);
        assert_eq!(d.values().unwrap(), [2, 5, 3]);
        assert_eq!(d.items().unwrap()[2], ("c".to_string(), 3));
        assert_eq!(d.pop(&"a".into()).unwrap(), Some(2));
        assert_eq!(d.get(&"a".into()).unwrap(), None);
        d.clear().unwrap();
        assert!(d.is_empty().unwrap());
        // The same name, found again; another kind under it is refused.
        let again = m.dict::<String, u64>("d").unwrap();
        again.insert(&"x".into(), &9).unwrap();
        assert_eq!(d.get(&"x".into()).unwrap(), Some(9));
        assert!(matches!(m.list::<u8>("d"), Err(Error::WrongKind)));
        // A value of another type does not decode.
        let wrong = m.dict::<String, String>("d").unwrap();
        assert_eq!(wrong.get(&"x".into()), Err(Error::Decode));

        let l = m.list::<u32>("l").unwrap();
        l.extend([1, 2, 3]).unwrap();
        l.push(&4).unwrap();
        l.insert(0, &0).unwrap();
        assert!(matches!(
            l.insert(9, &0),
            Err(Error::IndexOutOfBounds { index: 9, len: 5 })
        ));
        l.set(1, &10).unwrap();
        assert_eq!(l.to_vec().unwrap(), [0, 10, 2, 3, 4]);
        assert_eq!(l.slice(1..3).unwrap(), [10, 2]);
        assert_eq!(l.slice(3..99).unwrap(), [3, 4]);
        assert_eq!(l.pop().unwrap(), Some(4));
        assert_eq!(l.pop_at(0).unwrap(), Some(0));
        assert!(l.remove(&2).unwrap());
        assert!(!l.remove(&2).unwrap());
        assert_eq!(l.get(1).unwrap(), Some(3));
        assert_eq!(l.get(7).unwrap(), None);
        assert_eq!(l.len().unwrap(), 2);

        let ns = m.namespace("ns").unwrap();
        ns.set("n", &3u8).unwrap();
        ns.set("s", "text").unwrap();
        assert_eq!(ns.get::<u8>("n").unwrap(), Some(3));
        assert_eq!(ns.get::<String>("s").unwrap().as_deref(), Some("text"));
        assert_eq!(ns.names().unwrap(), ["n", "s"]);
        assert!(ns.remove("n").unwrap());
        assert_eq!(ns.get::<u8>("n").unwrap(), None);

        let v = m.value("v", &(1u32, -2i64)).unwrap();
        assert_eq!(v.get().unwrap(), (1, -2));
        v.set(&(3, 4)).unwrap();
        assert_eq!(m.value("v", &(0u32, 0i64)).unwrap().get().unwrap(), (3, 4));

        let a = m.array("a", 3, &1.5f64).unwrap();
        a.set(1, &2.5).unwrap();
        assert_eq!(a.to_vec().unwrap(), [1.5, 2.5, 1.5]);
        assert_eq!(a.get(2).unwrap(), 1.5);
        assert!(matches!(a.get(3), Err(Error::IndexOutOfBounds { .. })));
        assert_eq!(a.len().unwrap(), 3);
    });
}

#[test]
fn queues_block_and_time_out() {
    both(|m| {
        let q = m.queue::<u32>("q", 2).unwrap();
        assert_eq!(q.try_get(), Err(Error::WouldBlock));
        q.put(&1).unwrap();
        q.try_put(&2).unwrap();
        assert_eq!(q.try_put(&3), Err(Error::WouldBlock));
        let t = Instant::now();
        assert_eq!(
            q.put_timeout(&3, Duration::from_millis(50)),
            Err(Error::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(q.qsize().unwrap(), 2);
        assert_eq!(q.get().unwrap(), 1);
        assert_eq!(q.get_timeout(Duration::from_millis(10)).unwrap(), 2);
        let t = Instant::now();
        assert_eq!(
            q.get_timeout(Duration::from_millis(50)),
            Err(Error::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(50));

        // A blocked get is served by a put from another thread.
        std::thread::scope(|s| {
            let h = s.spawn(|| q.get().unwrap());
            std::thread::sleep(Duration::from_millis(20));
            q.put(&7).unwrap();
            assert_eq!(h.join().unwrap(), 7);
        });

        let j = m.joinable_queue::<String>("jq", 0).unwrap();
        j.put(&"a".into()).unwrap();
        j.put(&"b".into()).unwrap();
        assert_eq!(
            j.join_timeout(Duration::from_millis(10)),
            Err(Error::Timeout)
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..2 {
                    j.get().unwrap();
                    j.task_done().unwrap();
                }
            });
            j.join().unwrap();
        });
        assert_eq!(j.task_done(), Err(Error::Overflow));
    });
}

#[test]
fn locks_semaphores_conditions_events_barriers() {
    both(|m| {
        let lock = m.lock("lock").unwrap();
        lock.acquire().unwrap();
        assert!(lock.is_locked().unwrap());
        assert!(!lock.try_acquire().unwrap());
        assert!(!lock.acquire_timeout(Duration::from_millis(20)).unwrap());
        lock.release().unwrap();
        assert_eq!(lock.release(), Err(Error::NotOwner));

        let r = m.rlock("rlock").unwrap();
        r.acquire().unwrap();
        r.acquire().unwrap();
        std::thread::scope(|s| {
            // Another thread neither takes nor releases it.
            s.spawn(|| {
                assert!(!r.try_acquire().unwrap());
                assert_eq!(r.release(), Err(Error::NotOwner));
            });
        });
        r.release().unwrap();
        assert!(r.is_locked().unwrap());
        r.release().unwrap();
        assert!(!r.is_locked().unwrap());

        let s = m.semaphore("sem", 2).unwrap();
        s.acquire().unwrap();
        assert!(s.try_acquire().unwrap());
        assert!(!s.try_acquire().unwrap());
        s.release().unwrap();
        assert_eq!(s.value().unwrap(), 1);
        let b = m.bounded_semaphore("bsem", 1).unwrap();
        assert_eq!(b.release(), Err(Error::Overflow));
        b.acquire().unwrap();
        b.release().unwrap();

        let e = m.event("event").unwrap();
        assert!(!e.wait_timeout(Duration::from_millis(10)).unwrap());
        std::thread::scope(|sc| {
            let h = sc.spawn(|| e.wait_timeout(Duration::from_secs(10)).unwrap());
            std::thread::sleep(Duration::from_millis(20));
            e.set().unwrap();
            assert!(h.join().unwrap());
        });
        assert!(e.is_set().unwrap());
        e.clear().unwrap();
        assert!(!e.is_set().unwrap());

        let c = m.condition("cond").unwrap();
        assert_eq!(
            c.wait_timeout(Duration::from_millis(1)),
            Err(Error::NotOwner)
        );
        std::thread::scope(|sc| {
            let waiter = sc.spawn(|| {
                c.acquire().unwrap();
                let notified = c.wait_timeout(Duration::from_secs(10)).unwrap();
                c.release().unwrap();
                notified
            });
            // Notify until the waiter has gone to sleep and been woken.
            while !waiter.is_finished() {
                c.acquire().unwrap();
                c.notify_all().unwrap();
                c.release().unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(waiter.join().unwrap());
        });

        let bar = m.barrier("barrier", 3).unwrap();
        assert_eq!(bar.parties().unwrap(), 3);
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..3).map(|_| sc.spawn(|| bar.wait().unwrap())).collect();
            let mut idx: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            idx.sort();
            assert_eq!(idx, [0, 1, 2]);
        });
        assert_eq!(
            bar.wait_timeout(Duration::from_millis(20)),
            Err(Error::Broken)
        );
        assert!(bar.is_broken().unwrap());
        assert_eq!(bar.wait(), Err(Error::Broken));
        bar.reset().unwrap();
        assert!(!bar.is_broken().unwrap());
        assert!(matches!(m.barrier("zero", 0), Err(Error::InvalidArgument)));
    });
}

#[test]
fn tokens_travel_through_a_queue_and_come_back_as_proxies() {
    both(|m| {
        let d = m.dict::<u32, String>("scores").unwrap();
        d.insert(&1, &"one".into()).unwrap();
        let q = m.queue::<Token>("tokens", 0).unwrap();
        q.put(&d.token()).unwrap();
        let token = q.get().unwrap();
        let back: Dict<u32, String> = m.proxy(&token).unwrap();
        assert_eq!(back.get(&1).unwrap().as_deref(), Some("one"));
        let bytes = token.to_bytes();
        assert_eq!(Token::from_bytes(&bytes).unwrap(), token);
        assert!(matches!(
            m.proxy::<Queue<u8>>(&token),
            Err(Error::WrongKind)
        ));
        let missing = Token {
            kind: token.kind,
            name: "nobody".into(),
        };
        assert!(matches!(
            m.proxy::<Dict<u32, String>>(&missing),
            Err(Error::NotFound)
        ));
    });
}

#[test]
fn a_token_sent_through_a_pipe_becomes_a_proxy_in_another_process() {
    let m = Manager::start().unwrap();
    let d = m.dict::<String, u32>("shared-by-token").unwrap();
    let pipe = shmkit::Shared::new(shmkit::Pipe::<1024>::new()).unwrap();
    let (ours, theirs) = pipe.ends();
    let address = m.address().clone();
    let key = m.authkey().to_vec();
    let child = Child::spawn(move || {
        let mut buf = [0u8; 512];
        let n = theirs.recv_bytes_into(&mut buf).unwrap();
        let token = Token::from_bytes(&buf[..n]).unwrap();
        // A separate handle (as an unrelated process would make) and the token.
        let m = Manager::connect(&address, &key).unwrap();
        let d: Dict<String, u32> = m.proxy(&token).unwrap();
        d.insert(&"from the child".into(), &7).unwrap();
        0
    });
    ours.send_bytes(&d.token().to_bytes()).unwrap();
    assert!(child.join().success());
    assert_eq!(d.get(&"from the child".into()).unwrap(), Some(7));
    m.shutdown().unwrap();
}

#[test]
fn a_forked_child_uses_the_manager_as_it_is() {
    let m = Manager::start().unwrap();
    let counter = m.value("n", &0u64).unwrap();
    let lock = m.lock("l").unwrap();
    let done = m.queue::<u32>("done", 0).unwrap();
    // The parent uses the manager first: its session's sockets are inherited.
    counter.set(&0).unwrap();
    let children: Vec<Child> = (0..4u32)
        .map(|i| {
            let (counter, lock, done) = (&counter, &lock, &done);
            Child::spawn(move || {
                for _ in 0..25 {
                    lock.acquire().unwrap();
                    counter.set(&(counter.get().unwrap() + 1)).unwrap();
                    lock.release().unwrap();
                }
                done.put(&i).unwrap();
                0
            })
        })
        .collect();
    let mut seen: Vec<u32> = (0..4).map(|_| done.get().unwrap()).collect();
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3]);
    for c in children {
        assert!(c.join().success());
    }
    assert_eq!(counter.get().unwrap(), 100);
    // The children's sessions ended with them; the parent's own still works.
    assert!(common::eventually(Duration::from_secs(5), || {
        m.stats().unwrap().sessions == 1
    }));
}

#[test]
fn dropping_the_last_handle_stops_a_started_server() {
    let m = Manager::start().unwrap();
    let address = m.address().clone();
    let key = m.authkey().to_vec();
    let socket = match &address {
        shmkit::connection::Address::Unix(p) => p.clone(),
        _ => unreachable!(),
    };
    assert!(socket.exists());
    let dir = socket.parent().unwrap().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let v = m.value("x", &1u8).unwrap();
    drop(m);
    // Proxies keep the manager alive; the last one stops it.
    assert_eq!(v.get().unwrap(), 1);
    drop(v);
    assert!(!socket.exists());
    assert!(!dir.exists());
    assert!(Manager::connect(&address, &key).is_err());
}
