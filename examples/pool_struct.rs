//! A `Pool` over a struct argument: forked workers run a plain `fn` on each item of a
//! slice of your own `#[repr(C)]` structs and send back a struct result.
//!
//! ```sh
//! cargo run --example pool_struct
//! ```
//!
//! Arguments and results cross between processes as bytes, so they are `Pod` (every
//! bit pattern is a valid value, no pointers) and at most `Pool::MAX_ITEM_SIZE`
//! (1024) bytes. `#[derive(Pod, Zeroable)]` checks that, and refuses padding — which
//! trips most first tries:
//!
//! ```text
//! #[derive(Clone, Copy, Pod, Zeroable)]
//! #[repr(C)]
//! struct Body { id: u32, mass: f64, pos: [f32; 3] }
//!
//! error[E0080]: evaluation panicked: #[derive(Pod)]: `Body` has padding (the compiler
//! inserted bytes between or after its fields to align them), and Pod forbids padding
//! because its bytes are uninitialised. Fix: order the fields from the largest
//! alignment to the smallest, and/or add explicit padding fields where the gaps are
//! (e.g. `_pad: [u8; 4]` after a u32 that precedes a u64), so that the struct's size
//! is the sum of its fields' sizes
//! ```
//!
//! `#[repr(C)]` keeps fields in the order written: 4 bytes of `id`, then 4 bytes of
//! padding so that `mass` starts at a multiple of 8, then 8 + 12 bytes, then 4 more
//! at the end to round the size up to a multiple of 8. The two fixes, both below:
//! order the fields from the largest alignment down (`Body`), or name the gaps
//! (`Landing`'s `_pad`).

use shmkit::{AsyncResult, Pod, Pool, PoolError, Zeroable};

/// A body thrown upwards. Largest alignment first — `f64`, then the 4-byte fields —
/// so there is no gap: 8 + 8 + 12 + 4 = 32 bytes, a multiple of 8.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Body {
    mass: f64,
    speed: f64,
    pos: [f32; 3],
    id: u32,
}

/// Where and when it lands. `id` is a `u32` before `f64`s: its 4-byte gap is a
/// named field, zeroed by hand.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Landing {
    id: u32,
    _pad: [u8; 4],
    seconds: f64,
    peak: f64,
    energy: f64,
}

/// The task: a plain `fn` (a worker is a fork of this program, so the pointer is
/// valid there), steps the flight of `b` until it is back on the ground.
fn fly(b: Body) -> Landing {
    const G: f64 = 9.81;
    const DT: f64 = 1e-4;
    let (mut h, mut v, mut t, mut peak) = (f64::from(b.pos[2]), b.speed, 0.0, 0.0f64);
    while h >= 0.0 {
        v -= G * DT;
        h += v * DT;
        t += DT;
        peak = peak.max(h);
    }
    Landing {
        id: b.id,
        _pad: [0; 4],
        seconds: t,
        peak,
        energy: 0.5 * b.mass * v * v,
    }
}

/// Pending results can live in a struct beside the pool: they keep it alive
/// themselves, they do not borrow it.
struct Pending {
    pool: Pool,
    launches: Vec<AsyncResult<Landing>>,
}

fn main() -> Result<(), PoolError> {
    let bodies: Vec<Body> = (0..64u32)
        .map(|id| Body {
            mass: 1.0 + f64::from(id % 4),
            speed: 5.0 + f64::from(id),
            pos: [0.0, 0.0, 1.0],
            id,
        })
        .collect();

    let pool = Pool::new(4)?; // early in `main`: the workers are forks of this process
    // All at once, results in input order.
    let landings = pool.map(fly, &bodies)?;
    let longest = landings
        .iter()
        .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .expect("64 landings");
    println!(
        "map: {} bodies; the longest flight is body {}: {:.2} s, {:.1} m high",
        landings.len(),
        longest.id,
        longest.seconds,
        longest.peak
    );

    // As they finish, in completion order: `(index into bodies, result)`.
    let mut first = Vec::new();
    for (i, landing) in pool.imap_unordered(fly, &bodies[..8]) {
        first.push((i, landing?.seconds));
    }
    println!(
        "imap_unordered: finished in the order {:?}",
        first.iter().map(|f| f.0).collect::<Vec<_>>()
    );

    // One at a time, started now, collected later.
    let launches = bodies[..4]
        .iter()
        .map(|&b| pool.apply_async(fly, b))
        .collect();
    let pending = Pending { pool, launches };
    for r in &pending.launches {
        let l = r.get()?;
        println!(
            "apply_async: body {} lands after {:.2} s with {:.0} J",
            l.id, l.seconds, l.energy
        );
    }
    pending.pool.join(); // no more tasks: let the workers exit
    Ok(())
}
