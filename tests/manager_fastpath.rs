//! The local fast path (calls through a shared-memory pipe passed as a memfd): in use
//! by default for Unix-socket servers, never for TCP, off on request; big values
//! travel in chunks.

use std::time::Duration;

use shmkit::connection::Options;
use shmkit::manager::Manager;

#[test]
fn local_calls_take_the_fast_path_and_carry_big_values() {
    let m = Manager::start().unwrap();
    let v = m.value("blob", &Vec::<u8>::new()).unwrap();
    for len in [0usize, 10, 70_000, 300_000] {
        let blob: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        v.set(&blob).unwrap();
        assert_eq!(v.get().unwrap(), blob);
    }
    let l = m.list::<u64>("many").unwrap();
    l.extend(0..50_000u64).unwrap();
    assert_eq!(l.to_vec().unwrap(), (0..50_000).collect::<Vec<u64>>());
    let s = m.stats().unwrap();
    assert!(s.fast_paths >= 1, "{s:?}");
    m.shutdown().unwrap();
}

#[test]
fn fast_path_can_be_turned_off() {
    let m = Manager::start_with(Options::new().fast_path(false)).unwrap();
    let v = m.value("x", &3u8).unwrap();
    assert_eq!(v.get().unwrap(), 3);
    assert_eq!(m.stats().unwrap().fast_paths, 0);
    // Another handle on the same server, with the fast path.
    let fast = Manager::connect(m.address(), m.authkey()).unwrap();
    assert_eq!(fast.value("x", &0u8).unwrap().get().unwrap(), 3);
    assert_eq!(fast.stats().unwrap().fast_paths, 1);
    drop(fast);
    m.shutdown().unwrap();
}

#[test]
fn tcp_never_takes_the_fast_path() {
    let server = Manager::bind("tcp:127.0.0.1:0", b"k").unwrap();
    let address = server.address().clone();
    let t = std::thread::spawn(move || server.serve());
    let m = Manager::connect(&address, b"k").unwrap();
    assert_eq!(m.value("x", &1u8).unwrap().get().unwrap(), 1);
    assert_eq!(m.stats().unwrap().fast_paths, 0);
    m.shutdown().unwrap();
    t.join().unwrap().unwrap();
    let _ = Duration::ZERO;
}
