//! `shmkit inspect`'s decoders on arbitrary bytes: the input is either a whole
//! "segment file" of its own (first byte >= 200), or a real segment of one of the kit's
//! kinds (chosen by the first byte) with the rest of the input written over it as
//! (offset, byte) pairs, as a scribbling peer would. Opening and decoding must give a
//! state or an error: never a panic, an out-of-bounds read or a hang.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shmkit::inspect::Segment;
use shmkit::{
    Array, Barrier, BoundedSemaphore, Condvar, Event, JoinableQueue, Mutex, Pipe, Queue,
    ReentrantMutex, Semaphore, Shared, ShmSafe, Value,
};

/// The bytes of a fresh named segment holding `value`.
fn bytes_of<T: ShmSafe>(tag: &str, value: T) -> Vec<u8> {
    let name = format!("shmkit-fuzz-inspect-{}-{tag}", std::process::id());
    let s = Shared::create(&name, value).expect("create");
    let bytes = std::fs::read(format!("/dev/shm/{name}")).expect("read");
    drop(s);
    bytes
}

fn samples() -> &'static [Vec<u8>] {
    static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        vec![
            bytes_of("q", Queue::<u64, 8>::new()),
            bytes_of("jq", JoinableQueue::<[u8; 12], 3>::new()),
            bytes_of("p", Pipe::<64>::new()),
            bytes_of("m", Mutex::new(0u32)),
            bytes_of("rm", ReentrantMutex::new(0u64)),
            bytes_of("v", Value::new(1.5f64)),
            bytes_of("a", Array::new([1i16; 7])),
            bytes_of("s", Semaphore::new(2)),
            bytes_of("bs", BoundedSemaphore::new(2)),
            bytes_of("e", Event::new()),
            bytes_of("b", Barrier::new(3)),
            bytes_of("c", Condvar::new()),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let bytes = if which >= 200 {
        rest.to_vec()
    } else {
        let samples = samples();
        let mut bytes = samples[which as usize % samples.len()].clone();
        for pair in rest.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
            bytes[at] = pair[2];
        }
        bytes
    };
    if let Ok(seg) = Segment::from_bytes(&bytes) {
        let _ = seg.state();
        let _ = seg.creator();
    }
});
