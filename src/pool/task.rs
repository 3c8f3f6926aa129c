//! What a task is once it crosses into a worker: a monomorphised trampoline, the user's
//! `fn` pointer, a type signature, and the bytes of its arguments and results.
//!
//! The parent knows `T` and `U`; the worker only sees addresses and bytes. The pair is
//! bridged by [`Trampoline`]s: `run_map::<T, U>` (or `run_pair::<A, B, U>` for
//! `starmap`) is itself a plain function, so the parent sends *its* address with the
//! user's `fn` address. The worker calls the trampoline, which knows the types, checks
//! the signature and the byte lengths against them, and only then turns the user's
//! address back into a `fn(T) -> U`. A mismatched transmute is impossible by
//! construction: the parent writes both addresses from one monomorphisation, the
//! signature names both types, and a keyed [`tag`] over all three proves to the worker
//! that the descriptor was written by its parent and not scribbled.
//!
//! Everything here is pure (no system call), so the `miri_` tests run it under Miri.

use core::any::Any;
use core::mem::size_of;
use core::panic::AssertUnwindSafe;
use core::sync::atomic::{Ordering, compiler_fence};
use std::panic::catch_unwind;
use std::string::String;

use bytemuck::Pod;

use crate::text::copy_text;

/// Per-item outcome byte, as the parent posts it: the item has not been started.
pub(crate) const ITEM_NOT_RUN: u8 = 0;
/// Per-item outcome byte: the task returned its result.
pub(crate) const ITEM_OK: u8 = 1;
/// Per-item outcome byte: the task panicked (no result).
pub(crate) const ITEM_PANICKED: u8 = 2;
/// Per-item outcome byte: the worker started the task and has not finished it (what a
/// worker that died in the middle of a task leaves behind).
pub(crate) const ITEM_STARTED: u8 = 4;

/// One chunk's memory as a worker sees it while running it.
pub(crate) struct ChunkIo<'a> {
    /// `status.len()` arguments, back to back.
    pub(crate) input: &'a [u8],
    /// Room for as many results.
    pub(crate) output: &'a mut [u8],
    /// One outcome byte per item (`ITEM_*`), all `ITEM_NOT_RUN` on entry.
    pub(crate) status: &'a mut [u8],
    /// Where the text of a panic goes.
    pub(crate) message: &'a mut [u8],
}

/// How a chunk went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// The signature or the lengths did not match the trampoline: nothing ran.
    Refused,
    /// Every item ran and returned.
    Finished,
    /// An item panicked: it is marked `ITEM_PANICKED`, the items before it `ITEM_OK`,
    /// and those after it were not started (the parent posts them again). The panic's
    /// text is in the first `len` bytes of `message`.
    Panicked {
        /// Bytes of text written to `message`.
        len: usize,
        /// The text was cut to fit.
        truncated: bool,
    },
}

/// Runs one chunk of tasks in a worker.
///
/// Returns [`Ran::Refused`] (and runs nothing) if `sig` or the lengths of `io` do not
/// belong to this trampoline's types.
///
/// # Safety
///
/// `func` must be the address of a function of the type the trampoline was
/// instantiated for, in this very executable image (a forked worker shares its parent's
/// image, so an address taken in the parent is valid in the worker). [`tag`] is how the
/// worker makes sure of it before the call.
pub(crate) type Trampoline = unsafe fn(func: usize, sig: u64, io: ChunkIo<'_>) -> Ran;

/// A function's address as a `u64` for a task descriptor. Its provenance is exposed,
/// so that [`fn_at`] can turn the address back into a callable pointer (Miri checks
/// this; on the machine it is a plain code address).
pub(crate) fn fn_addr(f: *const ()) -> u64 {
    f.expose_provenance() as u64
}

/// The function at `addr`, as the pointer type `F`.
///
/// # Safety
///
/// `addr` came from [`fn_addr`] of a function of type `F` in this executable image
/// (in this process or the parent it was forked from, which share code addresses).
pub(crate) unsafe fn fn_at<F: Copy>(addr: usize) -> F {
    const { assert!(size_of::<F>() == size_of::<*const ()>()) };
    let p = core::ptr::with_exposed_provenance::<()>(addr);
    // SAFETY: `F` is a fn pointer type of pointer size (asserted), and `p` points at a
    // function of type `F` (the caller's contract).
    unsafe { core::mem::transmute_copy::<*const (), F>(&p) }
}

/// 64-bit FNV-1a over `F`'s type name, size and alignment, and the extra words. For
/// `F = fn(T) -> U` the name spells out both types, so a different `T` or `U` gives a
/// different signature.
pub(crate) fn signature<F>(extra: &[u64]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(core::any::type_name::<F>().as_bytes());
    eat(&(size_of::<F>() as u64).to_le_bytes());
    for word in extra {
        eat(&word.to_le_bytes());
    }
    hash
}

/// The signature of a `map` task `fn(T) -> U`.
pub(crate) fn map_signature<T: Pod, U: Pod>() -> u64 {
    signature::<fn(T) -> U>(&[size_of::<T>() as u64, size_of::<U>() as u64, 1])
}

/// The signature of a `starmap` task `fn(A, B) -> U`.
pub(crate) fn pair_signature<A: Pod, B: Pod, U: Pod>() -> u64 {
    signature::<fn(A, B) -> U>(&[
        size_of::<A>() as u64,
        size_of::<B>() as u64,
        size_of::<U>() as u64,
        2,
    ])
}

/// A keyed check word over a task descriptor's addresses and signature.
///
/// `key` lives only in the pool's process-private memory (inherited by its forked
/// workers, never written to shared memory), so a descriptor whose addresses were
/// scribbled over (by a wild write in some task, say) fails the check, and the worker
/// reports the chunk as corrupted instead of jumping to a garbage address. It is a
/// corruption check, not cryptography: it needs no secrecy from the pool's own code.
pub(crate) fn tag(key: u64, trampoline: u64, func: u64, sig: u64) -> u64 {
    let mut h = key ^ 0x6a09_e667_f3bc_c908;
    for word in [trampoline, func, sig] {
        h = (h ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 32;
    }
    h
}

/// Runs `item(i)` for every index of `status` in order, marking each `ITEM_STARTED`
/// before and `ITEM_OK` after, until one panics: that one is marked `ITEM_PANICKED`, its
/// text goes to `message`, and the rest are left `ITEM_NOT_RUN` (a chunk carries one
/// panic's text, so the parent posts the rest again).
///
/// The marks are volatile stores behind a compiler fence, so that a worker killed at any
/// instruction leaves an exact record: an item marked `ITEM_OK` has its result bytes
/// written, an item still `ITEM_STARTED` was in progress, and an item `ITEM_NOT_RUN`
/// was not started — the compiler may neither drop the `ITEM_STARTED` mark (it is
/// overwritten later) nor move the result's bytes after the `ITEM_OK` mark.
///
/// One `catch_unwind` covers the whole run, so the loop over cheap tasks stays tight. A
/// panic payload is dropped with panics caught too (one whose destructor panics is
/// leaked).
#[inline]
fn run_items(status: &mut [u8], message: &mut [u8], mut item: impl FnMut(usize)) -> Ran {
    let mut i = 0;
    let run = catch_unwind(AssertUnwindSafe(|| {
        while i < status.len() {
            mark(&mut status[i], ITEM_STARTED);
            item(i);
            mark(&mut status[i], ITEM_OK);
            i += 1;
        }
    }));
    let payload = match run {
        Ok(()) => return Ran::Finished,
        Err(payload) => payload,
    };
    if let Some(slot) = status.get_mut(i) {
        mark(slot, ITEM_PANICKED);
    }
    let text = panic_text(&*payload);
    let (len, truncated) = copy_text(text, message);
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        core::mem::forget(again);
    }
    Ran::Panicked { len, truncated }
}

/// Stores an item's outcome byte so that the compiler keeps it, in order: every memory
/// access before it (the result's bytes) stays before it.
#[inline(always)]
fn mark(slot: &mut u8, outcome: u8) {
    compiler_fence(Ordering::Release);
    // SAFETY: `slot` is a valid, exclusive byte (it comes from a `&mut u8`).
    unsafe { core::ptr::write_volatile(slot, outcome) };
    compiler_fence(Ordering::Release);
}

/// The text of a panic payload, as std's own hook shows it.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

impl<'a> ChunkIo<'a> {
    /// The four buffers, if their lengths fit `status.len()` items of `in_size` bytes
    /// in and `out_size` bytes out: `(input, output, status, message)`.
    #[allow(clippy::type_complexity)]
    fn fitted(
        self,
        in_size: usize,
        out_size: usize,
    ) -> Option<(&'a [u8], &'a mut [u8], &'a mut [u8], &'a mut [u8])> {
        let count = self.status.len();
        let fits = count.checked_mul(in_size) == Some(self.input.len())
            && count.checked_mul(out_size) == Some(self.output.len());
        fits.then_some((self.input, self.output, self.status, self.message))
    }
}

/// The [`Trampoline`] for `map`, `imap`, `imap_unordered` and `apply`: items are `T`s.
///
/// # Safety
///
/// As [`Trampoline`]: `func` is the address of a `fn(T) -> U` of this executable.
pub(crate) unsafe fn run_map<T: Pod, U: Pod>(func: usize, sig: u64, io: ChunkIo<'_>) -> Ran {
    let (ts, us) = (size_of::<T>(), size_of::<U>());
    let Some((input, output, status, message)) = io.fitted(ts, us) else {
        return Ran::Refused;
    };
    if sig != map_signature::<T, U>() {
        return Ran::Refused;
    }
    // SAFETY: the caller guarantees `func` is the address of a `fn(T) -> U` in this
    // image (the signature, which names T and U, matched); fn pointers and usize have
    // the same size on every Linux target.
    let f: fn(T) -> U = unsafe { fn_at::<fn(T) -> U>(func) };
    run_items(status, message, |i| {
        let arg: T = bytemuck::pod_read_unaligned(&input[i * ts..(i + 1) * ts]);
        let result = f(arg);
        output[i * us..(i + 1) * us].copy_from_slice(bytemuck::bytes_of(&result));
    })
}

/// The [`Trampoline`] for `starmap`: each item is an `A`'s bytes then a `B`'s.
///
/// # Safety
///
/// As [`Trampoline`]: `func` is the address of a `fn(A, B) -> U` of this executable.
pub(crate) unsafe fn run_pair<A: Pod, B: Pod, U: Pod>(
    func: usize,
    sig: u64,
    io: ChunkIo<'_>,
) -> Ran {
    let (asz, bsz, us) = (size_of::<A>(), size_of::<B>(), size_of::<U>());
    let stride = asz + bsz;
    let Some((input, output, status, message)) = io.fitted(stride, us) else {
        return Ran::Refused;
    };
    if sig != pair_signature::<A, B, U>() {
        return Ran::Refused;
    }
    // SAFETY: as in `run_map`, for a `fn(A, B) -> U` (named by the matched signature).
    let f: fn(A, B) -> U = unsafe { fn_at::<fn(A, B) -> U>(func) };
    run_items(status, message, |i| {
        let item = &input[i * stride..(i + 1) * stride];
        let a: A = bytemuck::pod_read_unaligned(&item[..asz]);
        let b: B = bytemuck::pod_read_unaligned(&item[asz..]);
        let result = f(a, b);
        output[i * us..(i + 1) * us].copy_from_slice(bytemuck::bytes_of(&result));
    })
}

/// How many items go into one chunk of a job of `len` items on `workers` workers, with
/// items of `in_size` bytes and results of `out_size` bytes, for a mailbox with room for
/// `max_items` items, `in_cap` bytes in and `out_cap` bytes out.
///
/// Like Python's default `chunksize`: about four chunks per worker, so that a slow
/// chunk does not leave the others idle at the end, while a long job of tiny tasks pays
/// one round trip per chunk rather than per item.
pub(crate) fn chunk_size(
    len: usize,
    workers: usize,
    in_size: usize,
    out_size: usize,
    (max_items, in_cap, out_cap): (usize, usize, usize),
) -> usize {
    let want = len.div_ceil(4 * workers.max(1)).max(1);
    let mut cap = max_items;
    if let Some(n) = in_cap.checked_div(in_size) {
        cap = cap.min(n);
    }
    if let Some(n) = out_cap.checked_div(out_size) {
        cap = cap.min(n);
    }
    want.min(cap).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn double(x: u32) -> u64 {
        u64::from(x) * 2
    }

    fn picky(x: u32) -> u32 {
        assert!(x != 3, "three is refused: {x}");
        x + 1
    }

    fn sub(a: i64, b: u8) -> i64 {
        a - i64::from(b)
    }

    fn input_of<T: Pod>(items: &[T]) -> std::vec::Vec<u8> {
        bytemuck::cast_slice::<T, u8>(items).to_vec()
    }

    fn io<'a>(
        input: &'a [u8],
        output: &'a mut [u8],
        status: &'a mut [u8],
        message: &'a mut [u8],
    ) -> ChunkIo<'a> {
        ChunkIo {
            input,
            output,
            status,
            message,
        }
    }

    /// `run_map` of a `fn(T) -> U` over the buffers: sound by the pointer's type.
    fn map_with<T: Pod, U: Pod>(
        f: fn(T) -> U,
        input: &[u8],
        output: &mut [u8],
        status: &mut [u8],
        message: &mut [u8],
    ) -> Ran {
        // SAFETY: `f` is a fn(T) -> U of this image (its type says so), called only
        // with the signature of `T` and `U`.
        unsafe {
            run_map::<T, U>(
                fn_addr(f as *const ()) as usize,
                map_signature::<T, U>(),
                io(input, output, status, message),
            )
        }
    }

    #[test]
    fn miri_run_map_computes_every_item() {
        let input = input_of(&[1u32, 2, 5]);
        let (mut output, mut status, mut message) = ([0u8; 24], [0u8; 3], [0u8; 16]);
        let ran = map_with::<u32, u64>(double, &input, &mut output, &mut status, &mut message);
        assert_eq!(ran, Ran::Finished);
        assert_eq!(status, [ITEM_OK; 3]);
        let got: [u64; 3] = bytemuck::pod_read_unaligned(&output);
        assert_eq!(got, [2, 4, 10]);
    }

    #[test]
    fn miri_run_map_stops_at_a_panicking_item_and_keeps_its_text() {
        let input = input_of(&[2u32, 3, 4]);
        let (mut output, mut status, mut message) = ([0xffu8; 12], [0u8; 3], [0u8; 16]);
        let ran = map_with::<u32, u32>(picky, &input, &mut output, &mut status, &mut message);
        // "three is refused: 3" is 19 bytes: cut to the 16 there is room for.
        assert_eq!(
            ran,
            Ran::Panicked {
                len: 16,
                truncated: true
            }
        );
        assert_eq!(&message, b"three is refused");
        assert_eq!(status, [ITEM_OK, ITEM_PANICKED, ITEM_NOT_RUN]);
        let got: [u32; 3] = bytemuck::pod_read_unaligned(&output);
        assert_eq!(
            got,
            [3, u32::MAX, u32::MAX],
            "a panicked or unstarted item's bytes are left alone"
        );
    }

    #[test]
    fn miri_panic_texts_are_cut_at_char_boundaries() {
        let mut out = [0u8; 5];
        assert_eq!(copy_text("abc", &mut out), (3, false));
        assert_eq!(copy_text("abcdéf", &mut out), (4, true));
        assert_eq!(&out[..4], b"abcd");
        let boxed: std::boxed::Box<dyn Any + Send> = std::boxed::Box::new(String::from("owned"));
        assert_eq!(panic_text(&*boxed), "owned");
        let boxed: std::boxed::Box<dyn Any + Send> = std::boxed::Box::new(7u8);
        assert_eq!(panic_text(&*boxed), "Box<dyn Any>");
    }

    #[test]
    fn miri_trampolines_refuse_a_wrong_signature_or_shape() {
        let input = input_of(&[1u32, 2]);
        let mut output = [0u8; 16];
        let mut status = [0u8; 2];
        let mut message = [0u8; 4];
        let f = fn_addr(double as fn(u32) -> u64 as *const ()) as usize;
        // SAFETY: refused before the transmute (wrong signature): `f` is never called
        // as a fn(u32) -> u32.
        let wrong_sig = unsafe {
            run_map::<u32, u32>(
                f,
                map_signature::<u32, u64>(),
                io(&input, &mut output[..8], &mut status, &mut message),
            )
        };
        assert_eq!(wrong_sig, Ran::Refused);
        // SAFETY: right types; the output is one result short, so nothing runs.
        let short = unsafe {
            run_map::<u32, u64>(
                f,
                map_signature::<u32, u64>(),
                io(&input, &mut output[..8], &mut status, &mut message),
            )
        };
        assert_eq!(short, Ran::Refused);
        assert_eq!(status, [0, 0]);
        assert_ne!(map_signature::<u32, u64>(), map_signature::<u64, u32>());
        assert_ne!(
            map_signature::<u32, u32>(),
            pair_signature::<u32, u32, u32>()
        );
    }

    #[test]
    fn miri_run_pair_reads_both_halves() {
        let mut input = vec![];
        for (a, b) in [(10i64, 1u8), (-5, 7)] {
            input.extend_from_slice(bytemuck::bytes_of(&a));
            input.push(b);
        }
        let mut output = [0u8; 16];
        let mut status = [0u8; 2];
        let mut message = [0u8; 4];
        // SAFETY: `sub` is a fn(i64, u8) -> i64 of this image.
        let ran = unsafe {
            run_pair::<i64, u8, i64>(
                fn_addr(sub as fn(i64, u8) -> i64 as *const ()) as usize,
                pair_signature::<i64, u8, i64>(),
                io(&input, &mut output, &mut status, &mut message),
            )
        };
        assert_eq!(ran, Ran::Finished);
        let got: [i64; 2] = bytemuck::pod_read_unaligned(&output);
        assert_eq!(got, [9, -12]);
    }

    #[test]
    fn miri_tag_depends_on_every_word() {
        let t = tag(7, 1, 2, 3);
        assert_eq!(t, tag(7, 1, 2, 3));
        assert_ne!(t, tag(8, 1, 2, 3));
        assert_ne!(t, tag(7, 9, 2, 3));
        assert_ne!(t, tag(7, 1, 9, 3));
        assert_ne!(t, tag(7, 1, 2, 9));
    }

    #[test]
    fn miri_chunk_size_aims_at_four_chunks_per_worker_within_the_mailbox() {
        let mb = (4096, 32 * 1024, 32 * 1024);
        assert_eq!(chunk_size(1, 4, 8, 8, mb), 1);
        assert_eq!(chunk_size(80, 2, 8, 8, mb), 10);
        assert_eq!(chunk_size(100_000, 2, 8, 8, mb), 4096);
        assert_eq!(chunk_size(100_000, 2, 1024, 8, mb), 32);
        assert_eq!(chunk_size(100_000, 2, 0, 0, mb), 4096);
        assert_eq!(chunk_size(0, 2, 8, 8, mb), 1);
    }
}
