//! State verification: a client's compact digest of its replica, and the
//! server's check of it against what it believes that client holds.
//!
//! Deltas against acknowledged baselines assume both sides agree on every
//! baseline bit for bit. A bug, a memory error or a tampered client would
//! break that silently. So every few seconds a client sends a
//! [`StateDigest`]: the ack of exactly the updates it had received when it
//! made it, and a hash of every unit it holds, summed in
//! [`DIGEST_BUCKETS`] buckets by unit id. The server applies that ack,
//! computes the same digest over the states the client acknowledged
//! ([`crate::DeltaSender::verify`]), and resends whole every unit of a
//! bucket that differs. A digest older than an ack the server has already
//! applied proves nothing (it is [`Verification::Stale`]).

use serde::{Deserialize, Serialize};

use crate::ack::UpdateAck;
use crate::bits::BitWriter;
use crate::snapshot::{RecordContext, UnitSnapshot};
use crate::unit::UnitId;

/// Buckets of a digest: a mismatch is narrowed to the units of the
/// buckets that differ (1/16 of the view each), not the whole view.
pub const DIGEST_BUCKETS: usize = 16;

/// A client's digest of the units it holds (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateDigest {
    /// Exactly the updates the client had received when it made the digest.
    pub ack: UpdateAck,
    /// The server tick the states are written at (the client's newest
    /// update tick; it only changes how each state is hashed).
    pub tick: u64,
    /// Units it holds.
    pub units: u32,
    /// Per bucket (unit id mod [`DIGEST_BUCKETS`]), the wrapping sum of its
    /// units' hashes.
    pub buckets: [u64; DIGEST_BUCKETS],
}

/// What a [`StateDigest`] check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The client holds what the server believes it holds.
    Match,
    /// The server has applied a newer ack since: the digest proves nothing.
    Stale,
    /// Buckets differ (bit `i` of `buckets`: bucket `i`); `resent` units
    /// of those buckets will be sent whole again.
    Mismatch {
        /// Which buckets differ.
        buckets: u16,
        /// Units queued to be sent whole.
        resent: usize,
    },
}

/// The bucket of unit `id`.
pub fn digest_bucket(id: UnitId) -> usize {
    (id % DIGEST_BUCKETS as u64) as usize
}

/// Sums the hashes of `units` (id and whole state written at `tick`) into
/// per-bucket totals; the order of `units` does not matter.
pub fn digest_units<'a, S: UnitSnapshot>(
    units: impl Iterator<Item = (UnitId, &'a S)>,
    tick: u64,
) -> (u32, [u64; DIGEST_BUCKETS]) {
    let mut buckets = [0u64; DIGEST_BUCKETS];
    let mut count = 0u32;
    let mut w = BitWriter::new();
    for (id, state) in units {
        w.clear();
        let written = state.write_full(RecordContext { unit: id, tick }, &mut w);
        let h = hash_bytes(id.wrapping_mul(SEED), &w.bit_len().to_le_bytes());
        let h = match written {
            Ok(()) => hash_bytes(h, w.as_bytes()),
            Err(_) => hash_bytes(h, b"unwritable"),
        };
        let b = &mut buckets[digest_bucket(id)];
        *b = b.wrapping_add(mix(h));
        count = count.saturating_add(1);
    }
    (count, buckets)
}

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hashes `bytes` eight at a time (multiply-rotate), continuing from `h`.
fn hash_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        h = (h.rotate_left(23) ^ word).wrapping_mul(SEED);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    let word = u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 59);
    (h.rotate_left(23) ^ word).wrapping_mul(SEED)
}

/// A final avalanche, so that sums of hashes do not cancel by structure.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl StateDigest {
    /// Bit `i` set where bucket `i` differs from `buckets`.
    pub fn differing_buckets(&self, buckets: &[u64; DIGEST_BUCKETS]) -> u16 {
        (0..DIGEST_BUCKETS)
            .filter(|&i| self.buckets[i] != buckets[i])
            .fold(0u16, |m, i| m | (1 << i))
    }
}
