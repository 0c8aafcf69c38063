//! Update sequence numbers and acknowledgements (cumulative + bitmask).
//!
//! Every `UnitUpdate` carries a wrapping 16-bit [`Sequence`]. The receiver
//! answers with [`UpdateAck`]s: the newest sequence it has plus a 64-bit mask
//! of the ones before it. [`ReceivedWindow`] is the receiver's memory of what
//! arrived: it drops duplicates and very old packets and produces the acks.

use serde::{Deserialize, Serialize};

/// Wrapping packet sequence number of a `UnitUpdate`.
pub type Sequence = u16;

/// True if `a` is newer than `b`, allowing for wrap-around.
pub fn sequence_greater(a: Sequence, b: Sequence) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// How many sequences behind the newest one a packet may be and still be
/// accepted and acknowledged.
pub const RECEIVE_WINDOW: u16 = 1024;

/// Acknowledges `latest` and, in bit `i` of `mask`, `latest - 1 - i`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpdateAck {
    /// Newest sequence this ack covers (always received).
    pub latest: Sequence,
    /// Bit `i` set: `latest - 1 - i` was received too.
    pub mask: u64,
}

impl UpdateAck {
    /// True if this ack says `seq` was received.
    pub fn acks(&self, seq: Sequence) -> bool {
        let behind = self.latest.wrapping_sub(seq);
        match behind {
            0 => true,
            1..=64 => self.mask >> (behind - 1) & 1 == 1,
            _ => false,
        }
    }

    /// True if `seq` is within the 65 sequences this ack speaks about.
    pub fn covers(&self, seq: Sequence) -> bool {
        self.latest.wrapping_sub(seq) <= 64
    }
}

/// What [`ReceivedWindow::check`] found for a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Not seen before and inside the window: process it.
    New,
    /// Already received: ignore.
    Duplicate,
    /// Older than the window: ignore (the sender will treat it as lost).
    Stale,
}

/// The receiver's record of which sequences arrived.
#[derive(Clone, Debug)]
pub struct ReceivedWindow {
    latest: Option<Sequence>,
    /// `slots[seq % RECEIVE_WINDOW]` holds `seq | VALID` once `seq` arrived.
    slots: Vec<u32>,
    /// Received since the last [`ReceivedWindow::take_acks`].
    pending: Vec<Sequence>,
}

const VALID: u32 = 1 << 16;

impl Default for ReceivedWindow {
    fn default() -> Self {
        Self {
            latest: None,
            slots: vec![0; usize::from(RECEIVE_WINDOW)],
            pending: Vec::new(),
        }
    }
}

impl ReceivedWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(seq: Sequence) -> usize {
        usize::from(seq % RECEIVE_WINDOW)
    }

    /// True if `seq` arrived and is still inside the window.
    pub fn contains(&self, seq: Sequence) -> bool {
        self.slots[Self::slot(seq)] == u32::from(seq) | VALID && self.check_age(seq)
    }

    fn check_age(&self, seq: Sequence) -> bool {
        match self.latest {
            Some(latest) => {
                sequence_greater(seq, latest) || latest.wrapping_sub(seq) < RECEIVE_WINDOW
            }
            None => true,
        }
    }

    /// Classifies an arriving sequence without recording it.
    pub fn check(&self, seq: Sequence) -> Arrival {
        if !self.check_age(seq) {
            Arrival::Stale
        } else if self.contains(seq) {
            Arrival::Duplicate
        } else {
            Arrival::New
        }
    }

    /// Records `seq` as received (call after the packet was applied).
    pub fn insert(&mut self, seq: Sequence) {
        if self.check(seq) != Arrival::New {
            return;
        }
        match self.latest {
            Some(latest) if sequence_greater(seq, latest) => {
                // Forget slots that the window slides past.
                let advance = seq.wrapping_sub(latest).min(RECEIVE_WINDOW);
                for i in 1..=advance {
                    let s = latest.wrapping_add(i);
                    self.slots[Self::slot(s)] = 0;
                }
                self.latest = Some(seq);
            }
            None => self.latest = Some(seq),
            _ => {}
        }
        self.slots[Self::slot(seq)] = u32::from(seq) | VALID;
        self.pending.push(seq);
    }

    /// Forgets which sequence is the newest, so the next one inserted sets
    /// it again: for a window one bogus sequence dragged ahead. Sequences
    /// still held stay duplicates.
    pub fn resync(&mut self) {
        self.latest = None;
    }

    /// The ack for everything received up to `latest`.
    fn ack_at(&self, latest: Sequence) -> UpdateAck {
        let mut mask = 0u64;
        for i in 0..64u16 {
            if self.contains(latest.wrapping_sub(i + 1)) {
                mask |= 1 << i;
            }
        }
        UpdateAck { latest, mask }
    }

    /// Acks covering every sequence received since the last call: usually
    /// one, more after a burst of over 64 packets. Empty if nothing arrived.
    pub fn take_acks(&mut self) -> Vec<UpdateAck> {
        let mut acks = Vec::new();
        let Some(latest) = self.latest else {
            return acks;
        };
        // Newest first, by distance behind `latest`.
        let mut pending = std::mem::take(&mut self.pending);
        pending.retain(|&s| self.contains(s));
        pending.sort_unstable_by_key(|&s| latest.wrapping_sub(s));
        pending.dedup();
        let mut i = 0;
        while i < pending.len() {
            let ack = self.ack_at(pending[i]);
            while i < pending.len() && ack.covers(pending[i]) {
                i += 1;
            }
            acks.push(ack);
        }
        pending.clear();
        self.pending = pending;
        acks
    }

    /// The current cumulative ack (for resending when nothing new arrived).
    pub fn current_ack(&self) -> Option<UpdateAck> {
        self.latest.map(|l| self.ack_at(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_comparison() {
        assert!(sequence_greater(1, 0));
        assert!(sequence_greater(0, 65535));
        assert!(!sequence_greater(65535, 0));
        assert!(!sequence_greater(5, 5));
    }

    #[test]
    fn ack_bits() {
        let ack = UpdateAck {
            latest: 1,
            mask: 0b101,
        };
        assert!(ack.acks(1) && ack.acks(0) && !ack.acks(65535) && ack.acks(65534));
        assert!(!ack.acks(2));
        assert!(ack.covers(1u16.wrapping_sub(64)) && !ack.covers(1u16.wrapping_sub(65)));
    }

    #[test]
    fn duplicates_and_stale_packets() {
        let mut w = ReceivedWindow::new();
        w.insert(10);
        assert_eq!(w.check(10), Arrival::Duplicate);
        assert_eq!(w.check(9), Arrival::New);
        w.insert(10 + RECEIVE_WINDOW);
        assert_eq!(w.check(10), Arrival::Stale);
        assert_eq!(w.check(11), Arrival::New);
    }

    #[test]
    fn acks_cover_bursts_and_wrap() {
        let mut w = ReceivedWindow::new();
        let start = 65500u16;
        let all: Vec<u16> = (0..300u16)
            .map(|i| start.wrapping_add(i))
            .filter(|s| s % 7 != 3)
            .collect();
        for &s in all.iter().rev() {
            w.insert(s);
        }
        let acks = w.take_acks();
        assert!(acks.len() >= 300 / 65);
        for &s in &all {
            assert!(acks.iter().any(|a| a.acks(s)), "{s} not acked");
        }
        for s in (0..300u16)
            .map(|i| start.wrapping_add(i))
            .filter(|s| s % 7 == 3)
        {
            assert!(
                !acks.iter().any(|a| a.acks(s)),
                "{s} acked but never received"
            );
        }
        assert!(w.take_acks().is_empty());
    }
}
