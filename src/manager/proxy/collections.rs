//! Dict, List and Namespace proxies.

use core::ops::{Bound, RangeBounds};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::string::String;
use std::vec::Vec;

use super::{boolean, dec, enc, len_methods, optional, proxy, seq, unit, value, with_encoded};
use crate::manager::protocol::{Bytes, Kind, Op, Reply};
use crate::manager::{Error, Manager};

proxy! {
    /// A proxy for a manager dict (Python's `manager.dict()`), typed over its keys and
    /// values.
    ///
    /// Keys are compared by their postcard encoding, which is the same for equal values
    /// of the usual key types (integers, strings, tuples, enums; not `f64`'s `0.0` and
    /// `-0.0`). [`keys`](Self::keys), [`values`](Self::values) and
    /// [`items`](Self::items) list entries in the order of the encoded keys (for
    /// unsigned integers below 128 and for strings of one length, their natural order).
    ///
    /// Every method makes one call to the server and may fail as calls do
    /// ([`Error::Disconnected`] when the server is gone, ...).
    ///
    /// ```
    /// let m = shmkit::Manager::start()?;
    /// let d = m.dict::<String, u32>("ages")?;
    /// d.insert(&"ann".into(), &31)?;
    /// assert_eq!(d.setdefault(&"bob".into(), &40)?, 40);
    /// assert_eq!(d.get(&"ann".into())?, Some(31));
    /// assert_eq!(d.len()?, 2);
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    pub struct Dict<K, V> = Kind::Dict;
}

impl Manager {
    /// The dict `name`, created empty if it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::WrongKind`] if `name` is another kind of object; as any call.
    pub fn dict<K, V>(&self, name: &str) -> Result<Dict<K, V>, Error> {
        self.open_proxy(name, &[], 0)
    }

    /// The list `name`, created empty if it does not exist.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict).
    pub fn list<T>(&self, name: &str) -> Result<List<T>, Error> {
        self.open_proxy(name, &[], 0)
    }

    /// The namespace `name`, created empty if it does not exist.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict).
    pub fn namespace(&self, name: &str) -> Result<Namespace, Error> {
        self.open_proxy(name, &[], 0)
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> Dict<K, V> {
    /// The value of `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the stored bytes are not a `V`; as any call.
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        let k = enc(key)?;
        self.h.call(Op::DictGet(Bytes(&k)), optional)
    }

    /// Sets `key` to `value`; returns the value it had.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>, Error> {
        let (k, v) = (enc(key)?, enc(value)?);
        self.h.call(Op::DictInsert(Bytes(&k), Bytes(&v)), optional)
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn remove(&self, key: &K) -> Result<Option<V>, Error> {
        let k = enc(key)?;
        self.h.call(Op::DictRemove(Bytes(&k)), optional)
    }

    /// Python's name for [`remove`](Self::remove).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn pop(&self, key: &K) -> Result<Option<V>, Error> {
        self.remove(key)
    }

    /// Is `key` there?
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn contains_key(&self, key: &K) -> Result<bool, Error> {
        let k = enc(key)?;
        self.h.call(Op::DictContains(Bytes(&k)), boolean)
    }

    /// The value of `key`, after setting it to `default` if it had none (atomic).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn setdefault(&self, key: &K, default: &V) -> Result<V, Error> {
        let (k, v) = (enc(key)?, enc(default)?);
        self.h.call(Op::DictSetDefault(Bytes(&k), Bytes(&v)), value)
    }

    /// Inserts every pair of `items` (in one call, atomically).
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn update<'a, I>(&self, items: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = (&'a K, &'a V)>,
        K: 'a,
        V: 'a,
    {
        let owned: Vec<(Vec<u8>, Vec<u8>)> = items
            .into_iter()
            .map(|(k, v)| Ok((enc(k)?, enc(v)?)))
            .collect::<Result<_, Error>>()?;
        let pairs = owned.iter().map(|(k, v)| (Bytes(k), Bytes(v))).collect();
        self.h.call(Op::DictUpdate(pairs), unit)
    }

    len_methods!("entries");

    /// Removes every entry.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn clear(&self) -> Result<(), Error> {
        self.h.call(Op::Clear, unit)
    }

    /// Every key.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn keys(&self) -> Result<Vec<K>, Error> {
        self.h.call(Op::DictKeys, seq)
    }

    /// Every value.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn values(&self) -> Result<Vec<V>, Error> {
        self.h.call(Op::DictValues, seq)
    }

    /// Every entry.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn items(&self) -> Result<Vec<(K, V)>, Error> {
        self.h.call(Op::DictItems, |r| match r {
            Reply::Pairs(p) => p.iter().map(|(k, v)| Ok((dec(k.0)?, dec(v.0)?))).collect(),
            _ => Err(crate::manager::handle::unexpected()),
        })
    }
}

proxy! {
    /// A proxy for a manager list (Python's `manager.list()`).
    ///
    /// ```
    /// let m = shmkit::Manager::start()?;
    /// let l = m.list::<u32>("xs")?;
    /// l.extend([1, 2, 3])?;
    /// l.insert(0, &0)?;
    /// assert_eq!(l.pop()?, Some(3));
    /// assert_eq!(l.slice(1..)?, vec![1, 2]);
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    pub struct List<T> = Kind::List;
}

impl<T: Serialize + DeserializeOwned> List<T> {
    /// Appends `item`.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn push(&self, item: &T) -> Result<(), Error> {
        let v = enc(item)?;
        self.h.call(Op::ListPush(Bytes(&v)), unit)
    }

    /// The item at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`]; as any call.
    pub fn get(&self, index: usize) -> Result<Option<T>, Error> {
        self.h.call(Op::ListGet(index as u64), optional)
    }

    /// Replaces the item at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`]; as any call.
    pub fn set(&self, index: usize, item: &T) -> Result<(), Error> {
        let v = enc(item)?;
        self.h.call(Op::ListSet(index as u64, Bytes(&v)), unit)
    }

    /// Inserts `item` before `index` (`index == len` appends).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] past the end; as any call.
    pub fn insert(&self, index: usize, item: &T) -> Result<(), Error> {
        let v = enc(item)?;
        self.h.call(Op::ListInsert(index as u64, Bytes(&v)), unit)
    }

    /// Removes and returns the last item.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn pop(&self) -> Result<Option<T>, Error> {
        self.h.call(Op::ListPop(None), optional)
    }

    /// Removes and returns the item at `index` (`None` past the end).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn pop_at(&self, index: usize) -> Result<Option<T>, Error> {
        self.h.call(Op::ListPop(Some(index as u64)), optional)
    }

    /// Removes the first item equal to `item` (by encoding); whether there was one.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn remove(&self, item: &T) -> Result<bool, Error> {
        let v = enc(item)?;
        self.h.call(Op::ListRemove(Bytes(&v)), boolean)
    }

    /// Appends every item (in one call, atomically).
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn extend<I: IntoIterator<Item = T>>(&self, items: I) -> Result<(), Error> {
        with_encoded(items, |b| self.h.call(Op::ListExtend(b), unit))
    }

    /// The items in `range` (clamped to the list, as Python's slices are).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn slice<R: RangeBounds<usize>>(&self, range: R) -> Result<Vec<T>, Error> {
        let a = match range.start_bound() {
            Bound::Included(&a) => a as u64,
            Bound::Excluded(&a) => a as u64 + 1,
            Bound::Unbounded => 0,
        };
        let b = match range.end_bound() {
            Bound::Included(&b) => b as u64 + 1,
            Bound::Excluded(&b) => b as u64,
            Bound::Unbounded => u64::MAX,
        };
        self.h.call(Op::ListSlice(a, b), seq)
    }

    /// Every item.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.slice(..)
    }

    len_methods!("items");

    /// Removes every item.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn clear(&self) -> Result<(), Error> {
        self.h.call(Op::Clear, unit)
    }
}

proxy! {
    /// A proxy for a manager namespace (Python's `manager.Namespace()`): values of any
    /// serde type by attribute name.
    ///
    /// ```
    /// let m = shmkit::Manager::start()?;
    /// let ns = m.namespace("config")?;
    /// ns.set("threads", &8u32)?;
    /// ns.set("label", &"fast")?;
    /// assert_eq!(ns.get::<u32>("threads")?, Some(8));
    /// assert_eq!(ns.names()?, vec!["label", "threads"]);
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    pub struct Namespace = Kind::Namespace;
}

impl Namespace {
    /// The attribute `name`, decoded as a `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if it is not a `T`; as any call.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        self.h.call(Op::NsGet(name), optional)
    }

    /// Sets the attribute `name`.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), Error> {
        let v = enc(value)?;
        self.h.call(Op::NsSet(name, Bytes(&v)), unit)
    }

    /// Removes the attribute `name`; whether it was there.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn remove(&self, name: &str) -> Result<bool, Error> {
        self.h.call(Op::NsRemove(name), |r| match r {
            Reply::OptBytes(b) => Ok(b.is_some()),
            _ => Err(crate::manager::handle::unexpected()),
        })
    }

    /// Every attribute name, sorted.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn names(&self) -> Result<Vec<String>, Error> {
        self.h.call(Op::NsNames, |r| match r {
            Reply::Names(n) => Ok(n.into_iter().map(String::from).collect()),
            _ => Err(crate::manager::handle::unexpected()),
        })
    }
}

fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Dict<std::rc::Rc<u8>, u8>>();
    is::<List<std::rc::Rc<u8>>>();
    is::<Namespace>();
}
