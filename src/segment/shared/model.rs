//! The segment READY handshake for loom models (`tests/loom_segment.rs`): exists only
//! under `--cfg shmkit_loom`.
//!
//! A [`Segment`] is a header and a value slot with no mapping around them: under loom
//! the header's words are the facade's, that is loom's atomics (`magic`, `state`,
//! `creator_id`) and loom cells (every plain field), and the value is one loom cell,
//! so loom reports any access to a plain field or to the value that the handshake does
//! not order. Both halves run the real code: [`Segment::create`] is
//! [`HeaderPtr::publish`], as `Shared::initialise` calls it; [`Segment::open`] is
//! `Shared::ready_and_valid` (wait for READY, copy the header out, validate), as
//! `Shared::attach` calls it. Only the mapping, the file's size and the participant
//! registry are stand-ins (a model has neither files nor a registry): the header records
//! the sizes `Layout::of::<T>(4096)` gives, and both halves use [`MODEL_REGISTRY`].

use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::time::Duration;

use crate::error::SegmentError;
use crate::primitive::{AtomicU32, AtomicU64, Deadline, UnsafeCell, my_process_id};
use crate::segment::ShmSafe;
use crate::segment::header::{Fields, Header, HeaderPtr, Identity, Layout};
use crate::segment::identity::TYPE_NAME_MAX;

use super::{AttachError, Shared};

/// The participant registry nonce both halves use in a model.
pub const MODEL_REGISTRY: u64 = 0x5EC0;

/// A model segment: a fresh (all-zero) header and an uninitialised value.
pub struct Segment<T: ShmSafe> {
    header: Header,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the header's plain fields and the value are written only by the creator
// before READY and read by openers only after an Acquire load of READY (the handshake
// this type exists to check; loom reports any access it does not order).
unsafe impl<T: ShmSafe> Sync for Segment<T> {}
// SAFETY: as above; `T: ShmSafe` is `Send`.
unsafe impl<T: ShmSafe> Send for Segment<T> {}

/// How [`Segment::open`] failed.
#[derive(Debug)]
pub enum OpenError {
    /// An error `Shared::open` would return (`NotReady` once the deadline passed).
    Failed(SegmentError),
    /// Never READY, and the creator is dead (`open_or_create` then replaces it).
    CreatorDead,
}

/// A validated model segment: the value may be read.
pub struct Opened<'a, T: ShmSafe> {
    segment: &'a Segment<T>,
    creator_id: u32,
}

impl<T: ShmSafe> Default for Segment<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ShmSafe> Segment<T> {
    /// A fresh segment, as `shm_open(O_CREAT|O_EXCL)` and `ftruncate` leave it.
    pub fn new() -> Self {
        Segment {
            header: Header {
                magic: AtomicU64::new(0),
                version: UnsafeCell::new(0),
                state: AtomicU32::new(0),
                size: UnsafeCell::new(0),
                value_offset: UnsafeCell::new(0),
                value_size: UnsafeCell::new(0),
                kind: UnsafeCell::new(0),
                kit_version: UnsafeCell::new(0),
                type_hash: UnsafeCell::new(0),
                layout_hash: UnsafeCell::new(0),
                creator_id: AtomicU32::new(0),
                creator_pid: UnsafeCell::new(0),
                created_ns: UnsafeCell::new(0),
                type_name_len: UnsafeCell::new(0),
                flags: UnsafeCell::new(0),
                item_stride: UnsafeCell::new(0),
                registry: UnsafeCell::new(0),
                type_name: UnsafeCell::new([0; TYPE_NAME_MAX]),
            },
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    fn header(&self) -> HeaderPtr {
        // SAFETY: points at our header, which lives as long as `self`.
        unsafe { HeaderPtr::new(NonNull::from(&self.header).cast()) }
    }

    /// The creator's half, as `Shared::initialise` runs it: `HeaderPtr::publish` with
    /// the header fields for `T` and `init` building the value in place. Returns the
    /// creator's participant id. Dies at the die point `"segment.initialising"` (after
    /// the header, before `init`) if the model thread asked for it.
    ///
    /// # Safety
    ///
    /// Called once per segment; `init` leaves a valid `T`.
    pub unsafe fn create(&self, init: impl FnOnce(&mut MaybeUninit<T>)) -> u32 {
        let layout = Layout::of::<T>(4096);
        let fields = Fields {
            size: layout.size as u64,
            value_offset: layout.value_offset as u64,
            value_size: core::mem::size_of::<T>() as u64,
            identity: Identity::of::<T>(),
            creator_pid: 0,
            created_ns: 0,
            flags: 0,
            registry: MODEL_REGISTRY,
            item_stride: T::ITEM_STRIDE,
        };
        let me = my_process_id();
        let build = || {
            self.value.with_mut(|slot| {
                // SAFETY: the creator alone touches the slot before READY.
                init(unsafe { &mut *slot })
            })
        };
        // SAFETY: a fresh header, and (this function's contract) one creator.
        unsafe { self.header().publish(me, &fields, build, true) };
        me
    }

    /// The opener's half, as `Shared::attach` runs it once the object is mapped:
    /// `Shared::ready_and_valid`, waiting until `timeout` (`None`: forever) and, with
    /// `watch_creator` (as `open_or_create`), ending early if the creator died before
    /// READY.
    ///
    /// # Errors
    ///
    /// [`OpenError::Failed`] with the error `Shared::open` would give, or
    /// [`OpenError::CreatorDead`].
    pub fn open(
        &self,
        timeout: Option<Duration>,
        watch_creator: bool,
    ) -> Result<Opened<'_, T>, OpenError> {
        let layout = Layout::of::<T>(4096);
        let deadline = Deadline::from_timeout(timeout);
        match Shared::<T>::ready_and_valid(
            &self.header(),
            &layout,
            layout.size as u64,
            "model",
            deadline,
            watch_creator,
            MODEL_REGISTRY,
        ) {
            Ok((_, creator_id)) => Ok(Opened {
                segment: self,
                creator_id,
            }),
            Err(AttachError::Failed(e)) => Err(OpenError::Failed(e)),
            Err(AttachError::CreatorDead) => Err(OpenError::CreatorDead),
        }
    }
}

impl<T: ShmSafe> Opened<'_, T> {
    /// The creator's participant id, as the header records it.
    pub fn creator_id(&self) -> u32 {
        self.creator_id
    }

    /// Reads the value (as `&*shared` would), through the cell loom tracks.
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.segment.value.with(|value| {
            // SAFETY: validated after an Acquire load of READY, which the creator
            // stored after `init` left a valid `T` (`create`'s contract).
            f(unsafe { (*value).assume_init_ref() })
        })
    }
}
