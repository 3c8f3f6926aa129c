//! Random operation sequences on a typed `Spsc` (single items, batches, chunks with
//! partial commits, closing), checked against a bounded `VecDeque` model: every
//! operation must succeed exactly when the model says so and return the model's items.
//! Once the fuzzer scribbles over the ring's shared state (indices, owner words,
//! flags, notifiers, slots), the model is dropped and every operation must still
//! return — an item, `WouldBlock`, `Disconnected` or `Corrupted` — never panic, read
//! out of bounds or hang.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use shmkit::spsc::PushError;
use shmkit::{Error, Spsc};

fn run<const N: usize>(data: &[u8]) {
    let ring = Box::new(Spsc::<u32, N>::new());
    let (mut tx, mut rx) = ring.split();
    let mut model: Option<VecDeque<u32>> = Some(VecDeque::new());
    let mut next = 0u32;
    let mut tx_closed = false;
    // `scribbled`: a scribble may also have written an owner word that the end is
    // not yet claimed under (then some other, live-looking owner holds it).
    let tolerated = |e: Error, scribbled: bool| {
        assert!(
            matches!(
                e,
                Error::WouldBlock | Error::Disconnected | Error::Corrupted | Error::Closed
            ) || (scribbled && matches!(e, Error::EndpointInUse { .. })),
            "unexpected {e:?}"
        )
    };
    let mut i = 0;
    while i < data.len() {
        let (op, arg) = (data[i], data.get(i + 1).copied().unwrap_or(0) as usize);
        i += 2;
        let free = model.as_ref().map(|m| N - m.len());
        let queued = model.as_ref().map(VecDeque::len);
        match op % 9 {
            0 => match tx.try_push(next) {
                Ok(()) => {
                    if let Some(m) = &mut model {
                        assert!(free.unwrap() > 0);
                        m.push_back(next);
                    }
                    next += 1;
                }
                Err(PushError::Full(_)) => assert!(free.is_none_or(|f| f == 0)),
                Err(e) => tolerated(e.error(), model.is_none()),
            },
            1 => {
                let items: Vec<u32> = (next..next + (arg % 20) as u32).collect();
                match tx.try_push_slice(&items) {
                    Ok(n) => {
                        if let Some(m) = &mut model {
                            assert_eq!(n, items.len().min(free.unwrap()));
                            m.extend(&items[..n]);
                        }
                        next += n as u32;
                    }
                    Err(e) => tolerated(e, model.is_none()),
                }
            }
            2 => match tx.try_write_chunk(arg % 20) {
                Ok(mut chunk) => {
                    if let Some(f) = free {
                        assert_eq!(chunk.len(), (arg % 20).min(f));
                    }
                    for (j, slot) in chunk.iter_mut().enumerate() {
                        *slot = next + j as u32;
                    }
                    let k = (arg / 20).min(chunk.len());
                    chunk.commit(k);
                    if let Some(m) = &mut model {
                        m.extend(next..next + k as u32);
                    }
                    next += k as u32;
                }
                Err(e) => tolerated(e, model.is_none()),
            },
            3 => match rx.try_pop() {
                Ok(v) => {
                    if let Some(m) = &mut model {
                        assert_eq!(Some(v), m.pop_front());
                    }
                }
                Err(e) => {
                    if model.is_some() {
                        assert!(queued == Some(0));
                    }
                    tolerated(e, model.is_none());
                }
            },
            4 => {
                let mut out = vec![0u32; arg % 20];
                match rx.try_pop_slice(&mut out) {
                    Ok(n) => {
                        if let Some(m) = &mut model {
                            assert_eq!(n, out.len().min(m.len()));
                            for v in &out[..n] {
                                assert_eq!(Some(*v), m.pop_front());
                            }
                        }
                    }
                    Err(e) => tolerated(e, model.is_none()),
                }
            }
            5 => match rx.try_read_chunk(arg % 20) {
                Ok(chunk) => {
                    let k = (arg / 20).min(chunk.len());
                    if let Some(m) = &mut model {
                        assert_eq!(chunk.len(), (arg % 20).min(m.len()));
                        for (v, e) in chunk.iter().zip(m.iter()) {
                            assert_eq!(v, e);
                        }
                        m.drain(..k);
                    }
                    chunk.commit(k);
                }
                Err(e) => tolerated(e, model.is_none()),
            },
            6 => {
                if let (Ok(n), Some(q)) = (rx.len(), queued) {
                    assert_eq!(n, q);
                }
            }
            7 if arg % 16 == 0 && !tx_closed => {
                tx.close();
                tx_closed = true;
                // Pushes now fail with Closed; the model keeps its items.
            }
            _ => {
                // Scribble: offset, then up to 8 bytes.
                let Some(&len) = data.get(i) else { return };
                let len = (len % 9) as usize;
                let Some(bytes) = data.get(i + 1..i + 1 + len) else {
                    return;
                };
                i += 1 + len;
                let size = core::mem::size_of::<Spsc<u32, N>>();
                let offset = (arg * 7) % size;
                // SAFETY: no chunk is alive here.
                unsafe { ring.__scribble(offset, bytes) };
                model = None;
            }
        }
    }
    if let Some(m) = model {
        drop(tx);
        for v in m {
            assert_eq!(rx.try_pop(), Ok(v));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => run::<1>(rest),
        1 => run::<4>(rest),
        _ => run::<32>(rest),
    }
});
