//! Compile-time pins of the layouts the kit keeps in shared memory (a layer below
//! everything that declares such a struct; it uses nothing but `core`).

/// Pins a shared struct's layout at compile time: the offset of every field, the size,
/// and optionally the alignment. These numbers are what another build, another program
/// or a tool reading the segment relies on, so a change to them must be deliberate.
///
/// Every field must be listed: the list is also matched against the struct by a
/// pattern without `..`, so a field added later does not compile until its offset is
/// pinned too. A wrong number fails the build with both values in the message (an
/// array of the pinned length meets one of the real length). A generic struct is
/// pinned at one instance. Under loom the facade's types are loom's, of other sizes, so
/// the pins apply to real builds only.
///
/// ```ignore
/// pin_layout!(Event { state: 0, notifier: 4 }, size 12);
/// pin_layout!(Header { magic: 0, version: 8, /* ... */ }, size 256, align 8);
/// ```
macro_rules! pin_layout {
    ($ty:ty { $($field:tt: $offset:expr),+ $(,)? }, size $size:expr $(, align $align:expr)? $(,)?) => {
        #[cfg(not(shmkit_loom))]
        const _: () = {
            type Pinned = $ty;
            $( let _: [(); $offset] = [(); core::mem::offset_of!(Pinned, $field)]; )+
            let _: [(); $size] = [(); core::mem::size_of::<Pinned>()];
            $( let _: [(); $align] = [(); core::mem::align_of::<Pinned>()]; )?
            // Every field is in the list: no `..` here.
            let _ = |value: &Pinned| {
                let Pinned { $($field: _),+ } = value;
            };
        };
    };
}
pub(crate) use pin_layout;
