//! One sender's updates shared by several receivers (spectators watching
//! the same sectors): each update is encoded once and the same bytes go to
//! every member. The sender must only name baselines every member has, so
//! it is given the members' acknowledgements joined: a packet counts as
//! received when every member acknowledged it ([`AckJoin`]).
//!
//! A receiver that joins a running stream has none of the acknowledged
//! states: the sender starts over with it
//! ([`crate::DeltaSender::restart_receiver`]). A member that leaves (its
//! view changed, or it fell behind) takes a clone of the sender: every
//! baseline the clone names is one the member acknowledged, and the
//! sequence numbers it continues are the ones the member has seen.

use crate::ack::{Sequence, UpdateAck, sequence_greater};

/// The members' acknowledgements of one shared stream, joined: what every
/// member received. `M` names a member (e.g. its client id).
#[derive(Clone, Debug)]
pub struct AckJoin<M> {
    /// Each member and everything it acknowledged, as one cumulative ack
    /// (`None`: nothing yet).
    members: Vec<(M, Option<UpdateAck>)>,
}

impl<M> Default for AckJoin<M> {
    fn default() -> Self {
        Self {
            members: Vec::new(),
        }
    }
}

impl<M: Copy + Eq> AckJoin<M> {
    /// Adds a member that has acknowledged nothing yet (no-op if present).
    pub fn add(&mut self, member: M) {
        if !self.contains(member) {
            self.members.push((member, None));
        }
    }

    /// Removes a member; what the others received decides from now on.
    pub fn remove(&mut self, member: M) {
        self.members.retain(|(m, _)| *m != member);
    }

    /// True if `member` is in the join.
    pub fn contains(&self, member: M) -> bool {
        self.members.iter().any(|(m, _)| *m == member)
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True with no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, in the order they were added.
    pub fn members(&self) -> impl Iterator<Item = M> + '_ {
        self.members.iter().map(|(m, _)| *m)
    }

    /// Takes one member's ack (ignored for a stranger): it adds to what
    /// that member acknowledged before.
    pub fn receive(&mut self, member: M, ack: &UpdateAck) {
        if let Some((_, had)) = self.members.iter_mut().find(|(m, _)| *m == member) {
            *had = Some(match *had {
                None => *ack,
                Some(old) => union(old, *ack),
            });
        }
    }

    /// The newest sequence `member` acknowledged (`None`: nothing yet, or
    /// not a member).
    pub fn latest(&self, member: M) -> Option<Sequence> {
        self.members
            .iter()
            .find(|(m, _)| *m == member)
            .and_then(|(_, a)| a.map(|a| a.latest))
    }

    /// What every member received, as one ack for the shared sender: its
    /// `latest` is the newest sequence all members acknowledged, at or
    /// before the oldest member's newest, and its mask holds the ones
    /// before that all acknowledged. `None` while a member has
    /// acknowledged nothing, or when none is common.
    pub fn joined(&self) -> Option<UpdateAck> {
        let acks: Vec<UpdateAck> = self
            .members
            .iter()
            .map(|(_, a)| *a)
            .collect::<Option<_>>()?;
        let oldest = acks
            .iter()
            .map(|a| a.latest)
            .reduce(|a, b| if sequence_greater(a, b) { b } else { a })?;
        let all = |seq: Sequence| acks.iter().all(|a| a.acks(seq));
        let latest = (0..=64u16)
            .map(|back| oldest.wrapping_sub(back))
            .find(|&s| all(s))?;
        let mut mask = 0u64;
        for i in 0..64u16 {
            if all(latest.wrapping_sub(1 + i)) {
                mask |= 1 << i;
            }
        }
        Some(UpdateAck { latest, mask })
    }
}

/// Everything `a` and `b` acknowledge, as far as one ack can say (the
/// newer `latest` and the 64 sequences before it).
fn union(a: UpdateAck, b: UpdateAck) -> UpdateAck {
    let (new, old) = if sequence_greater(b.latest, a.latest) {
        (b, a)
    } else {
        (a, b)
    };
    let behind = new.latest.wrapping_sub(old.latest);
    let mut mask = new.mask;
    if (1..=64).contains(&behind) {
        // `old.latest` is bit behind-1; its mask's bit i is bit behind+i.
        mask |= 1 << (behind - 1);
        if behind < 64 {
            mask |= old.mask << behind;
        }
    } else if behind == 0 {
        mask |= old.mask;
    }
    UpdateAck {
        latest: new.latest,
        mask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(latest: Sequence, received_before: &[Sequence]) -> UpdateAck {
        let mut mask = 0;
        for &s in received_before {
            mask |= 1 << (latest.wrapping_sub(s) - 1);
        }
        UpdateAck { latest, mask }
    }

    #[test]
    fn acks_of_one_member_add_up() {
        let u = union(ack(10, &[8]), ack(12, &[11]));
        for (s, got) in [(12, true), (11, true), (10, true), (9, false), (8, true)] {
            assert_eq!(u.acks(s), got, "{s}");
        }
        assert_eq!(
            union(ack(12, &[11]), ack(10, &[8])),
            u,
            "order does not matter"
        );
        let wrap = union(ack(65_535, &[]), ack(1, &[0]));
        assert!(wrap.acks(65_535) && wrap.acks(0) && wrap.acks(1));
    }

    #[test]
    fn the_join_is_what_every_member_received() {
        let mut j = AckJoin::default();
        j.add(1u64);
        j.add(2);
        assert_eq!(j.joined(), None, "member 2 has said nothing yet");
        j.receive(1, &ack(20, &[19, 18, 17]));
        j.receive(2, &ack(18, &[16, 15]));
        // Member 2 lost 17 and is only at 18; 1 has 15..=20 except 16.
        j.receive(1, &ack(17, &[16, 15]));
        let joined = j.joined().unwrap();
        assert_eq!(joined.latest, 18);
        assert!(joined.acks(16) && joined.acks(15) && !joined.acks(17));
        // The slow member leaves: the rest decide.
        j.remove(2);
        assert_eq!(j.joined().unwrap().latest, 20);
        assert_eq!(j.latest(1), Some(20));
        assert_eq!(j.latest(2), None);
    }

    #[test]
    fn no_common_sequence_joins_to_nothing() {
        let mut j = AckJoin::default();
        j.add('a');
        j.add('b');
        j.receive('a', &ack(5, &[]));
        j.receive('b', &ack(6, &[]));
        assert_eq!(j.joined(), None);
        j.receive('b', &ack(5, &[]));
        assert_eq!(j.joined().map(|a| a.latest), Some(5));
    }
}
