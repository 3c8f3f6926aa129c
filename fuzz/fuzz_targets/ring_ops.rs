//! Random operation sequences on a `Pipe` ring, checked against a model that tracks
//! the ring's exact byte accounting (headers, 8-byte padding, the padding record at
//! the wrap, 8 bytes of slack after every record but one that fills the ring): every
//! send must succeed exactly when the model has room, every receive must return the
//! model's next message.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use shmkit::{Error, Pipe};

struct Rec {
    size: u64,
    msg: Option<Vec<u8>>,
}

struct Model {
    cap: u64,
    head: u64,
    tail: u64,
    recs: VecDeque<Rec>,
}

impl Model {
    fn try_send(&mut self, msg: &[u8]) -> bool {
        // A record (or padding) needs its size plus 8 bytes of slack free, except a
        // record that fills the whole array, which needs the ring empty.
        let rec = 8 + ((msg.len() as u64 + 7) & !7);
        let to_end = self.cap - self.tail % self.cap;
        if rec > to_end {
            if self.cap - (self.tail - self.head) < to_end + 8 {
                return false;
            }
            self.recs.push_back(Rec {
                size: to_end,
                msg: None,
            });
            self.tail += to_end;
        }
        let needed = if rec == self.cap { rec } else { rec + 8 };
        if self.cap - (self.tail - self.head) < needed {
            return false;
        }
        self.recs.push_back(Rec {
            size: rec,
            msg: Some(msg.to_vec()),
        });
        self.tail += rec;
        true
    }

    /// What the receiver's `peek` does: sees every published record, consumes
    /// padding in front; true if a message is next.
    fn peek(&mut self) -> bool {
        for _ in 0..2 {
            match self.recs.front() {
                None => return false,
                Some(Rec { msg: Some(_), .. }) => return true,
                Some(Rec { msg: None, .. }) => {
                    let rec = self.recs.pop_front().unwrap();
                    self.head += rec.size;
                }
            }
        }
        false
    }

    fn try_recv(&mut self) -> Option<Vec<u8>> {
        if !self.peek() {
            return None;
        }
        let rec = self.recs.pop_front().unwrap();
        self.head += rec.size;
        // `release` skips a padding record right behind, if it is published.
        if self.head % self.cap != 0 && matches!(self.recs.front(), Some(Rec { msg: None, .. })) {
            let rec = self.recs.pop_front().unwrap();
            self.head += rec.size;
        }
        rec.msg
    }
}

fn run<const CAP: usize>(data: &[u8]) {
    let pipe = Box::new(Pipe::<CAP>::new());
    let (a, b) = pipe.ends();
    let mut model = Model {
        cap: CAP as u64,
        head: 0,
        tail: 0,
        recs: VecDeque::new(),
    };
    let mut buf = vec![0u8; CAP];
    let max = CAP - 8;
    for chunk in data.chunks(2) {
        let (op, arg) = (chunk[0], chunk.get(1).copied().unwrap_or(0) as usize);
        match op % 4 {
            1 if op & 0x40 != 0 => {
                // A batch of 1 to 4 messages (`try_send_many`, published by one store
                // per batch): as many go as would one by one.
                let k = 1 + arg % 4;
                let msgs: Vec<Vec<u8>> = (0..k)
                    .map(|i| {
                        let len = (arg * 7 + i * 13 + op as usize) % (max + 1) / (1 + i);
                        (0..len).map(|j| (j as u8) ^ op ^ i as u8).collect()
                    })
                    .collect();
                let expect = msgs.iter().take_while(|m| model.try_send(m)).count();
                let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
                let got = a.try_send_many(&refs);
                assert_eq!(
                    got,
                    if expect > 0 {
                        Ok(expect)
                    } else {
                        Err(Error::WouldBlock)
                    }
                );
            }
            2 if op & 0x40 != 0 => {
                // Up to 1 to 5 messages at once (`try_recv_many`, one release).
                let max_n = 1 + arg % 5;
                let mut expect = Vec::new();
                while expect.len() < max_n {
                    match model.try_recv() {
                        Some(m) => expect.push(m),
                        None => break,
                    }
                }
                let mut got = Vec::new();
                match b.try_recv_many(max_n, |m| got.push(m.to_vec())) {
                    Ok(n) => assert_eq!(n, got.len()),
                    Err(e) => assert_eq!(e, Error::WouldBlock),
                }
                assert_eq!(got, expect);
            }
            0 | 1 => {
                // Lengths: anything up to the max, biased to the boundaries.
                let len = match op / 4 % 4 {
                    0 => arg % (max + 1),
                    1 => max - arg % 9,
                    2 => (arg * 8) % (max + 1),
                    _ => arg % 17,
                };
                let msg: Vec<u8> = (0..len).map(|j| (j as u8) ^ op).collect();
                let expect = model.try_send(&msg);
                let got = a.try_send_bytes(&msg);
                assert_eq!(
                    got,
                    if expect {
                        Ok(())
                    } else {
                        Err(Error::WouldBlock)
                    }
                );
            }
            2 => {
                let expect = model.try_recv();
                match b.try_recv_bytes_into(&mut buf) {
                    Ok(n) => assert_eq!(Some(&buf[..n]), expect.as_deref()),
                    Err(e) => {
                        assert_eq!(e, Error::WouldBlock);
                        assert!(expect.is_none());
                    }
                }
            }
            _ => {
                // Zero-copy receive when something is queued (never blocks).
                if b.poll(Some(std::time::Duration::ZERO)).unwrap() {
                    let expect = model.try_recv().expect("poll said ready");
                    let got = b.recv_with(|m| {
                        assert_eq!(m.as_ptr() as usize % 8, 0);
                        m.to_vec()
                    });
                    assert_eq!(got.unwrap(), expect);
                } else {
                    assert!(!model.peek());
                }
            }
        }
    }
    while let Some(expect) = model.try_recv() {
        let n = b.try_recv_bytes_into(&mut buf).unwrap();
        assert_eq!(&buf[..n], &expect[..]);
    }
    assert_eq!(b.try_recv_bytes_into(&mut buf), Err(Error::WouldBlock));
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => run::<64>(rest),
        1 => run::<128>(rest),
        _ => run::<1024>(rest),
    }
});
