//! What loom models call to make time pass and processes die — the clock tick, a
//! death, a death at a named die point — and the die points in the protocols' code,
//! which are nothing at all outside loom.

/// Under loom: the model's clock ticks — every finite [`Deadline`](super::Deadline)
/// passes at once and every sleep with one ends (see the module docs). Call it from a
/// model thread to have loom explore timeouts against every other step.
#[cfg(shmkit_loom)]
pub fn loom_clock_tick() {
    super::loom_futex::tick();
}

/// Under loom: marks the calling model thread as dead (a `kill -9` stand-in). The
/// thread should then return without running any more kit code (leak guards with
/// `mem::forget` to model dying while holding them).
#[cfg(shmkit_loom)]
pub fn loom_die() {
    super::loom_ids::die();
}

/// A "die here" point in the real code of a protocol, for loom models of a process
/// killed at that instruction: the model thread that asked for `name` (with
/// [`loom_die_at`]) is marked dead here and unwinds out of the kit without running
/// another line of it (see [`loom_until_death`]). Outside loom it is nothing at all.
#[inline(always)]
pub(crate) fn die_point(name: &'static str) {
    #[cfg(shmkit_loom)]
    {
        if DIE_AT.with(|d| d.get()) == Some(name) {
            loom_die();
            // No panic hook, no message: a kill, not a bug.
            std::panic::resume_unwind(std::boxed::Box::new(Died));
        }
    }
    #[cfg(not(shmkit_loom))]
    let _ = name;
}

/// Under loom: the calling model thread is to die at the [`die_point`] `name`.
#[cfg(shmkit_loom)]
pub fn loom_die_at(name: &'static str) {
    DIE_AT.with(|d| d.set(Some(name)));
}

/// Under loom: runs `f`, which may die at a [`die_point`]; `None` if it did. The
/// thread should then return without running any more kit code.
#[cfg(shmkit_loom)]
pub fn loom_until_death<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) if payload.is::<Died>() => None,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

#[cfg(shmkit_loom)]
loom::thread_local! {
    /// The die point this model thread is to die at.
    static DIE_AT: core::cell::Cell<Option<&'static str>> = core::cell::Cell::new(None);
}

/// The unwinding payload of a death at a die point.
#[cfg(shmkit_loom)]
struct Died;
