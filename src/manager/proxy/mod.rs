//! Typed proxies: process-local handles on a manager's objects.

use core::marker::PhantomData;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use super::Error;
use super::handle::{Manager, unexpected};
use super::protocol::{Bytes, Kind, Op, Reply, Request};
use crate::primitive::my_thread_id;

mod collections;
mod queue;
mod sync;
mod token;
mod value;

pub use collections::{Dict, List, Namespace};
pub use queue::{JoinableQueue, Queue};
pub use sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
pub use token::Token;
pub use value::{Array, Value};

/// What every proxy holds: its manager, the object's id and name.
#[derive(Clone)]
pub(crate) struct Handle {
    manager: Manager,
    id: u32,
    kind: Kind,
    name: Arc<str>,
}

impl core::fmt::Debug for Handle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("name", &&*self.name)
            .finish()
    }
}

impl Handle {
    /// Gets (or creates) the object `name` of `kind`.
    pub(crate) fn open(
        manager: &Manager,
        kind: Kind,
        name: &str,
        init: &[u8],
        param: u64,
    ) -> Result<Handle, Error> {
        Handle::open_with(manager, kind, name, init, param, true)
    }

    /// Gets (or, with `create`, creates) the object `name` of `kind`.
    fn open_with(
        manager: &Manager,
        kind: Kind,
        name: &str,
        init: &[u8],
        param: u64,
        create: bool,
    ) -> Result<Handle, Error> {
        let open = Request::Open {
            kind,
            name,
            init: Bytes(init),
            param,
            create,
        };
        let id = manager.request(&open, |r| match r {
            Reply::Opened { id } => Ok(id),
            _ => Err(unexpected()),
        })?;
        Ok(Handle {
            manager: manager.clone(),
            id,
            kind,
            name: Arc::from(name),
        })
    }

    /// Calls `op` on the object; `f` decodes the reply.
    #[inline]
    pub(crate) fn call<R>(
        &self,
        op: Op<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.manager.request(
            &Request::Call {
                id: self.id,
                thread: my_thread_id(),
                op,
            },
            f,
        )
    }

    /// The object's length (`Op::Len`).
    pub(crate) fn len(&self) -> Result<usize, Error> {
        self.call(Op::Len, count).map(|n| n as usize)
    }

    pub(crate) fn token(&self) -> Token {
        Token {
            kind: self.kind,
            name: String::from(&*self.name),
        }
    }
}

/// A typed proxy: a handle on one kind of manager object, which can be turned into a
/// [`Token`] and back.
pub trait Proxy: Sized {
    /// The kind of object this proxy drives.
    const KIND: Kind;
    /// The token naming this proxy's object.
    fn token(&self) -> Token;
    #[doc(hidden)]
    fn from_handle(handle: HandleOf) -> Self;
}

/// A proxy's innards (opaque).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct HandleOf(pub(crate) Handle);

impl Manager {
    /// The proxy for the object `token` names (sent through a queue or pipe, say).
    ///
    /// # Errors
    ///
    /// [`Error::WrongKind`] if `P` is not the token's kind (or the object's),
    /// [`Error::NotFound`] if the manager has no such object.
    pub fn proxy<P: Proxy>(&self, token: &Token) -> Result<P, Error> {
        if token.kind != P::KIND {
            return Err(Error::WrongKind);
        }
        let h = Handle::open_with(self, P::KIND, &token.name, &[], 0, false)?;
        Ok(P::from_handle(HandleOf(h)))
    }

    /// The proxy for the object `name` of `P`'s kind, created from `init`/`param` if
    /// it does not exist.
    pub(crate) fn open_proxy<P: Proxy>(
        &self,
        name: &str,
        init: &[u8],
        param: u64,
    ) -> Result<P, Error> {
        let h = Handle::open(self, P::KIND, name, init, param)?;
        Ok(P::from_handle(HandleOf(h)))
    }
}

/// Declares a proxy type: the struct (a [`Handle`] typed over its parameters) with
/// its [`Proxy`], `Clone` and `Debug` impls.
macro_rules! proxy {
    ($(#[$doc:meta])* pub struct $ty:ident $(<$($g:ident),+>)? = $kind:expr;) => {
        $(#[$doc])*
        pub struct $ty$(<$($g),+>)? {
            h: $crate::manager::proxy::Handle,
            _t: $crate::manager::proxy::Typed<($($($g,)+)?)>,
        }
        impl$(<$($g),+>)? $crate::manager::Proxy for $ty$(<$($g),+>)? {
            const KIND: $crate::manager::Kind = $kind;
            fn token(&self) -> $crate::manager::Token {
                self.h.token()
            }
            fn from_handle(h: $crate::manager::proxy::HandleOf) -> Self {
                $ty { h: h.0, _t: core::marker::PhantomData }
            }
        }
        impl$(<$($g),+>)? Clone for $ty$(<$($g),+>)? {
            fn clone(&self) -> Self {
                $ty { h: self.h.clone(), _t: core::marker::PhantomData }
            }
        }
        impl$(<$($g),+>)? core::fmt::Debug for $ty$(<$($g),+>)? {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(&self.h, f)
            }
        }
    };
}
pub(crate) use proxy;

/// `len` and `is_empty` for a proxy whose object has a length (`$what`: what it
/// counts, for the docs).
macro_rules! len_methods {
    ($what:literal) => {
        #[doc = concat!("Number of ", $what, ".")]
        ///
        /// # Errors
        ///
        /// As any call.
        pub fn len(&self) -> Result<usize, Error> {
            self.h.len()
        }

        #[doc = concat!("No ", $what, "?")]
        ///
        /// # Errors
        ///
        /// As any call.
        pub fn is_empty(&self) -> Result<bool, Error> {
            Ok(self.len()? == 0)
        }
    };
}
pub(crate) use len_methods;

/// Marks proxies `Send + Sync` whatever their type parameters: they hold no `T`.
pub(crate) type Typed<T> = PhantomData<fn() -> T>;

/// postcard bytes of `v`.
pub(crate) fn enc<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(v).map_err(|_| Error::Encode)
}

/// A `T` from postcard bytes.
pub(crate) fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(b).map_err(|_| Error::Decode)
}

pub(crate) fn unit(r: Reply<'_>) -> Result<(), Error> {
    match r {
        Reply::Unit => Ok(()),
        _ => Err(unexpected()),
    }
}

pub(crate) fn boolean(r: Reply<'_>) -> Result<bool, Error> {
    match r {
        Reply::Bool(b) => Ok(b),
        _ => Err(unexpected()),
    }
}

pub(crate) fn count(r: Reply<'_>) -> Result<u64, Error> {
    match r {
        Reply::U64(n) => Ok(n),
        _ => Err(unexpected()),
    }
}

pub(crate) fn value<T: DeserializeOwned>(r: Reply<'_>) -> Result<T, Error> {
    match r {
        Reply::Bytes(b) => dec(b.0),
        _ => Err(unexpected()),
    }
}

pub(crate) fn optional<T: DeserializeOwned>(r: Reply<'_>) -> Result<Option<T>, Error> {
    match r {
        Reply::OptBytes(b) => b.map(|b| dec(b.0)).transpose(),
        _ => Err(unexpected()),
    }
}

pub(crate) fn seq<T: DeserializeOwned>(r: Reply<'_>) -> Result<Vec<T>, Error> {
    match r {
        Reply::Seq(items) => items.iter().map(|b| dec(b.0)).collect(),
        _ => Err(unexpected()),
    }
}

/// Encodes every item of `items`, then calls `f` with the borrowed byte strings.
pub(crate) fn with_encoded<T: Serialize, R>(
    items: impl IntoIterator<Item = T>,
    f: impl FnOnce(Vec<Bytes<'_>>) -> Result<R, Error>,
) -> Result<R, Error> {
    let owned: Vec<Vec<u8>> = items
        .into_iter()
        .map(|v| enc(&v))
        .collect::<Result<_, _>>()?;
    f(owned.iter().map(|v| Bytes(v)).collect())
}
