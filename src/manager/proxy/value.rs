//! Value and Array proxies.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::vec::Vec;

use super::{enc, len_methods, proxy, seq, unit, value};
use crate::manager::protocol::{Bytes, Kind, Op};
use crate::manager::{Error, Manager};

proxy! {
    /// A proxy for one value held by a manager (Python's `manager.Value`).
    ///
    /// ```
    /// let m = shmkit::Manager::start()?;
    /// let v = m.value("hits", &0u64)?;
    /// v.set(&(v.get()? + 1))?;
    /// assert_eq!(v.get()?, 1);
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    pub struct Value<T> = Kind::Value;
}

proxy! {
    /// A proxy for a fixed-length array held by a manager (Python's `manager.Array`).
    ///
    /// ```
    /// let m = shmkit::Manager::start()?;
    /// let a = m.array("slots", 4, &0i32)?;
    /// a.set(2, &7)?;
    /// assert_eq!(a.to_vec()?, vec![0, 0, 7, 0]);
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    pub struct Array<T> = Kind::Array;
}

impl Manager {
    /// The value `name`, created holding `init` if it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::WrongKind`] if `name` is another kind of object; as any call.
    pub fn value<T: Serialize>(&self, name: &str, init: &T) -> Result<Value<T>, Error> {
        self.open_proxy(name, &enc(init)?, 0)
    }

    /// The array `name`, created with `len` copies of `init` if it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if it would take more than 1 GiB on the server;
    /// as [`value`](Self::value).
    pub fn array<T: Serialize>(&self, name: &str, len: usize, init: &T) -> Result<Array<T>, Error> {
        self.open_proxy(name, &enc(init)?, len as u64)
    }
}

impl<T: Serialize + DeserializeOwned> Value<T> {
    /// The value.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the stored bytes are not a `T`; as any call.
    pub fn get(&self) -> Result<T, Error> {
        self.h.call(Op::Get, value)
    }

    /// Replaces the value.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn set(&self, v: &T) -> Result<(), Error> {
        let b = enc(v)?;
        self.h.call(Op::Set(Bytes(&b)), unit)
    }
}

impl<T: Serialize + DeserializeOwned> Array<T> {
    /// The element at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`], [`Error::Decode`]; as any call.
    pub fn get(&self, index: usize) -> Result<T, Error> {
        self.h.call(Op::ArrayGet(index as u64), value)
    }

    /// Replaces the element at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`]; as any call.
    pub fn set(&self, index: usize, v: &T) -> Result<(), Error> {
        let b = enc(v)?;
        self.h.call(Op::ArraySet(index as u64, Bytes(&b)), unit)
    }

    len_methods!("elements");

    /// Every element.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`]; as any call.
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.h.call(Op::ArrayAll, seq)
    }
}
