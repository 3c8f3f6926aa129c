//! Fuzzer bytes written over a live ring's shared state (indices, notifier words,
//! record headers and payloads, the ends' owner words), interleaved with operations
//! on both ends. Every operation is non-blocking, and must return — a value,
//! `WouldBlock`, `Disconnected` (an owner word now names a dead process) or
//! `Corrupted` — never panic, read out of bounds or hang (libFuzzer's `-timeout`
//! catches a hang; the validation bounds every loop).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmkit::{Error, Pipe};

const CAP: usize = 128;

fuzz_target!(|data: &[u8]| {
    let pipe = Box::new(Pipe::<CAP>::new());
    let (a, b) = pipe.ends();
    let mut buf = [0u8; CAP];
    // A live ring: a few messages in flight, some wrapped.
    for i in 0..5u8 {
        let _ = a.try_send_bytes(&[i; 40]);
        if i % 2 == 1 {
            let _ = b.try_recv_bytes_into(&mut buf);
        }
    }
    let ok_or_expected = |r: Result<usize, Error>| match r {
        Ok(n) => assert!(n <= CAP),
        Err(
            Error::WouldBlock
            | Error::Corrupted
            | Error::Disconnected
            | Error::BufferTooSmall { .. },
        ) => {}
        Err(e) => panic!("unexpected error {e:?}"),
    };
    let mut i = 0;
    while i < data.len() {
        let op = data[i];
        i += 1;
        match op % 8 {
            // Scribble: ring, offset, length, bytes.
            0..=2 => {
                let Some(&[ring, off_hi, off_lo, len]) = data.get(i..i + 4) else {
                    return;
                };
                i += 4;
                let len = (len % 16) as usize;
                let bytes = data.get(i..(i + len).min(data.len())).unwrap_or(&[]);
                i += bytes.len();
                if ring & 0x80 != 0 {
                    // An end's owner word: any id, any token.
                    let mut word = [0u8; 8];
                    word[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
                    // SAFETY: no handle binds anew after this (`a` and `b` keep the
                    // claims they made), so no two handles share an end.
                    unsafe { pipe.__scribble_owner(ring as usize, u64::from_le_bytes(word)) };
                    continue;
                }
                let offset = u16::from_be_bytes([off_hi, off_lo]) as usize % (384 + CAP);
                // SAFETY: this thread alone touches the pipe, and no operation on it
                // is running: the plain writes race with nothing.
                unsafe { pipe.__scribble(ring as usize, offset, bytes) };
            }
            3 | 4 => {
                let len = data.get(i).copied().unwrap_or(0) as usize % (CAP - 7);
                i += 1;
                match a.try_send_bytes(&vec![op; len]) {
                    Ok(()) | Err(Error::WouldBlock | Error::Corrupted | Error::Disconnected) => {}
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
            5 => ok_or_expected(b.try_recv_bytes_into(&mut buf)),
            6 => ok_or_expected(b.try_recv_bytes_into(&mut buf[..8])),
            _ => {
                // The reverse direction, and a zero-copy receive if one is ready.
                let _ = b.try_send_bytes(&[op; 24]);
                ok_or_expected(a.try_recv_bytes_into(&mut buf));
                if let Ok(true) = b.poll(Some(Duration::ZERO)) {
                    match b.recv_with(|m| m.len()) {
                        Ok(n) => assert!(n <= CAP - 8),
                        Err(Error::Corrupted | Error::Disconnected) => {}
                        Err(e) => panic!("unexpected error {e:?}"),
                    }
                }
            }
        }
    }
});
