//! The registry file: its layout, opening (or creating) and mapping it, waiting for
//! its header.

#![allow(clippy::disallowed_types)]

#[allow(clippy::wildcard_imports)]
use super::*;

/// The first byte offset of the slots' lock bytes (far beyond the file's end: locks are
/// advisory and may lie anywhere).
pub(super) const LOCK_BASE: i64 = 1 << 32;
/// The byte the creator of the file locks while it initialises it.
pub(super) const INIT_BYTE: i64 = LOCK_BASE - 1;

pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMKREG\x01");
pub(super) const VERSION: u32 = 1;
pub(super) const ST_INITIALIZING: u32 = 1;
pub(super) const ST_READY: u32 = 2;

pub(super) const HEADER: usize = 64;
pub(super) const ENTRY: usize = 32;
/// The file's size: the header and every entry, rounded up to 4 KiB pages.
pub(super) const FILE_SIZE: usize = (HEADER + ENTRY * ENTRIES).next_multiple_of(4096);

/// The file's header (see the module docs).
#[repr(C)]
pub(super) struct FileHeader {
    pub(super) magic: AtomicU64,
    pub(super) version: AtomicU32,
    pub(super) state: AtomicU32,
    pub(super) slots: AtomicU32,
    pub(super) _reserved0: AtomicU32,
    pub(super) nonce: AtomicU64,
    pub(super) _reserved: [AtomicU64; 4],
}

/// One slot's entry (see the module docs).
#[repr(C)]
pub(crate) struct Entry {
    pub(super) state: AtomicU32,
    pub(super) parent: AtomicU32,
    pub(super) pid: AtomicI32,
    pub(super) tid: AtomicI32,
    pub(super) started: AtomicU64,
    pub(super) _reserved: AtomicU64,
}

crate::layout::pin_layout!(
    FileHeader { magic: 0, version: 8, state: 12, slots: 16, _reserved0: 20, nonce: 24, _reserved: 32 },
    size HEADER,
);
crate::layout::pin_layout!(
    Entry { state: 0, parent: 4, pid: 8, tid: 12, started: 16, _reserved: 24 },
    size ENTRY,
);
const _: () = assert!(FILE_SIZE % 4096 == 0);

// ---- the file --------------------------------------------------------------------------

/// The mapped registry.
#[derive(Clone, Copy)]
pub(super) struct Reg {
    pub(super) base: NonNull<u8>,
}

impl Reg {
    pub(super) fn header(self) -> &'static FileHeader {
        // SAFETY: `base` is a live, page-aligned mapping of FILE_SIZE bytes (never
        // unmapped once published), and the header is all atomics.
        unsafe { &*self.base.as_ptr().cast::<FileHeader>() }
    }

    pub(super) fn entry(self, slot: u32) -> &'static Entry {
        debug_assert!(slot < SLOTS);
        let slot = (slot & SLOT_MASK) as usize;
        // SAFETY: as in `header`; HEADER + ENTRY * slot + ENTRY <= FILE_SIZE for every
        // slot below ENTRIES, and an entry is all atomics, 8-aligned.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(HEADER + ENTRY * slot)
                .cast::<Entry>()
        }
    }
}

/// The registry, set up on first use. `None` if it cannot be (then ids cannot be
/// issued, and liveness is `Unknown`).
pub(super) fn reg() -> Option<Reg> {
    if SETUP.load(Ordering::Acquire) == 2 {
        let base = BASE.load(Ordering::Acquire);
        return NonNull::new(base as *mut u8).map(|base| Reg { base });
    }
    reg_slow()
}

#[cold]
pub(super) fn reg_slow() -> Option<Reg> {
    // A forked child must drop this process's lifelines at once: the hook exists
    // before any descriptor or slot does.
    crate::sys::fork::on_child(after_fork_in_child);
    loop {
        match SETUP.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                let ok = setup().is_ok();
                SETUP.store(if ok { 2 } else { 3 }, Ordering::Release);
            }
            Err(1) => {
                core::hint::spin_loop();
                continue;
            }
            Err(_) => {}
        }
        return match SETUP.load(Ordering::Acquire) {
            2 => NonNull::new(BASE.load(Ordering::Acquire) as *mut u8).map(|base| Reg { base }),
            1 => continue,
            _ => None,
        };
    }
}

/// Opens (or creates) the registry file, maps it, and waits until it is initialised.
pub(super) fn setup() -> Result<(), rustix::io::Errno> {
    use rustix::fd::IntoRawFd;
    let fd = open_file()?;
    let size = rustix::fs::fstat(&fd)?.st_size as usize;
    if size < FILE_SIZE {
        // Either ours to size (we created it) or its creator is at work: extend it to
        // the full size (idempotent, and harmless if the creator does the same).
        rustix::fs::ftruncate(&fd, FILE_SIZE as u64)?;
    }
    // SAFETY: a fresh shared mapping of the file, at an address the kernel picks.
    let base = unsafe {
        rustix::mm::mmap(
            core::ptr::null_mut(),
            FILE_SIZE,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            &fd,
            0,
        )?
    };
    let reg = Reg {
        base: NonNull::new(base.cast::<u8>()).ok_or(rustix::io::Errno::NOMEM)?,
    };
    let raw = fd.into_raw_fd();
    if let Err(e) = initialise(reg, raw) {
        // SAFETY: we own `raw`; nothing else has seen it.
        let _ = unsafe { libc::close(raw) };
        // SAFETY: our own fresh mapping; nothing holds a reference into it.
        let _ = unsafe { rustix::mm::munmap(base, FILE_SIZE) };
        return Err(e);
    }
    NONCE.store(
        reg.header().nonce.load(Ordering::Acquire),
        Ordering::Release,
    );
    FD.store(raw, Ordering::Release);
    BASE.store(reg.base.as_ptr() as usize, Ordering::Release);
    Ok(())
}

/// The registry file, opened read-write, close-on-exec.
pub(super) fn open_file() -> Result<rustix::fd::OwnedFd, rustix::io::Errno> {
    use rustix::fs::Mode;
    #[cfg(feature = "std")]
    if let Some(path) = std::env::var_os("SHMKIT_REGISTRY") {
        use rustix::fs::OFlags;
        return rustix::fs::open(
            path.as_os_str(),
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        );
    }
    let mut name = [0u8; 48];
    let len = shm_name(&mut name);
    let name = CStr::from_bytes_with_nul(&name[..=len]).map_err(|_| rustix::io::Errno::INVAL)?;
    let flags = rustix::shm::OFlags::RDWR | rustix::shm::OFlags::CREATE;
    match rustix::shm::open(name, flags, Mode::RUSR | Mode::WUSR) {
        Ok(fd) => Ok(fd),
        // No /dev/shm (a sandbox): a private registry, shared with forked children
        // only (named segments then cannot be shared with unrelated processes).
        Err(_) => rustix::fs::memfd_create(c"shmkit-registry", rustix::fs::MemfdFlags::CLOEXEC),
    }
}

/// `/shmkit-registry-<euid>` with its NUL into `buf`; returns the length without NUL.
pub(super) fn shm_name(buf: &mut [u8; 48]) -> usize {
    let prefix = b"/shmkit-registry-";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut at = prefix.len();
    at += put_decimal(&mut buf[at..], rustix::process::geteuid().as_raw());
    buf[at] = 0;
    at
}

/// Writes `n` in decimal at the start of `buf`; returns how many digits it wrote.
/// Async-signal-safe (no allocation, no formatting machinery), for the fork hook.
///
/// # Panics
///
/// If `buf` is shorter than the number's digits (at most 10): callers size their
/// buffers for any `u32`.
pub(super) fn put_decimal(buf: &mut [u8], n: u32) -> usize {
    let mut digits = [0u8; 10];
    let (mut n, mut k) = (n, 0);
    loop {
        digits[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, &d) in digits[..k].iter().rev().enumerate() {
        buf[i] = d;
    }
    k
}

/// Waits for the file's header to be READY, initialising it if nobody else is (or its
/// initialiser died).
pub(super) fn initialise(reg: Reg, fd: i32) -> Result<(), rustix::io::Errno> {
    let h = reg.header();
    let start = crate::sys::time::monotonic_ns();
    loop {
        // SYNC POINT with the Release store of READY below (in another process).
        if h.state.load(Ordering::Acquire) == ST_READY {
            if h.magic.load(Ordering::Relaxed) != MAGIC
                || h.version.load(Ordering::Relaxed) != VERSION
                || h.slots.load(Ordering::Relaxed) != SLOTS
            {
                return Err(rustix::io::Errno::PROTO);
            }
            return Ok(());
        }
        // Nobody READY: whoever holds the init byte initialises; if it is free, we do.
        if set_lock(fd, INIT_BYTE, true)? {
            if h.state.load(Ordering::Acquire) != ST_READY {
                h.state.store(ST_INITIALIZING, Ordering::Relaxed);
                let mut nonce = [0u8; 8];
                let _ = rustix::rand::getrandom(&mut nonce, rustix::rand::GetRandomFlags::empty());
                let nonce = u64::from_le_bytes(nonce)
                    ^ crate::sys::time::monotonic_ns().rotate_left(17)
                    ^ u64::from(rustix::process::getpid().as_raw_nonzero().get() as u32);
                h.magic.store(MAGIC, Ordering::Relaxed);
                h.version.store(VERSION, Ordering::Relaxed);
                h.slots.store(SLOTS, Ordering::Relaxed);
                h.nonce.store(nonce | 1, Ordering::Relaxed);
                // SYNC POINT with the Acquire load of `state` above (in other processes).
                h.state.store(ST_READY, Ordering::Release);
            }
            let _ = unlock(fd, INIT_BYTE);
            continue;
        }
        if crate::sys::time::monotonic_ns().saturating_sub(start) > 5_000_000_000 {
            return Err(rustix::io::Errno::TIMEDOUT);
        }
        crate::sys::time::sleep_ns(100_000);
    }
}
