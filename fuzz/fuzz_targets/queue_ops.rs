//! Random operation sequences on a `Queue` (try_put, try_get, close, len), checked
//! against a `VecDeque` model, for capacities 1, 2, 3, 5 and 8.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use shmkit::{GetError, PutError, Queue};

fn run<const N: usize>(data: &[u8]) {
    let q = Box::new(Queue::<u32, N>::new());
    let mut model = VecDeque::new();
    let mut closed = false;
    for (i, &op) in data.iter().enumerate() {
        match op % 16 {
            0 => {
                q.close();
                closed = true;
            }
            1..=7 => {
                let v = (i as u32) << 8 | u32::from(op);
                let expect = if closed {
                    Err(PutError::Closed(v))
                } else if model.len() == N {
                    Err(PutError::Full(v))
                } else {
                    model.push_back(v);
                    Ok(())
                };
                assert_eq!(q.try_put(v), expect);
            }
            _ => {
                let expect = match model.pop_front() {
                    Some(v) => Ok(v),
                    None if closed => Err(GetError::Closed),
                    None => Err(GetError::Empty),
                };
                assert_eq!(q.try_get(), expect);
            }
        }
        assert_eq!(q.len(), model.len());
        assert_eq!(q.is_full(), model.len() == N);
        assert_eq!(q.is_empty(), model.is_empty());
    }
    assert_eq!(q.lost(), 0);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => run::<1>(rest),
        1 => run::<2>(rest),
        2 => run::<3>(rest),
        3 => run::<5>(rest),
        _ => run::<8>(rest),
    }
});
