//! One sender's updates, encoded once, shared by several receivers on
//! lossy links (`galaxy_protocol::shared`): with the members' acks joined,
//! no member is ever sent a delta against a baseline it lacks; a member
//! joining a running stream and one leaving it with a clone of the sender
//! converge like the rest.

use std::collections::BTreeMap;

use galaxy_protocol::link_model::{LinkConditions, LinkModel, SplitMix64};
use galaxy_protocol::*;

use crate::verify::unit;

/// A member of the shared stream: its receiver and its two links.
struct Member {
    id: u64,
    receiver: DeltaReceiver,
    down: LinkModel<Vec<u8>>,
    up: LinkModel<UpdateAck>,
    applied: u64,
}

impl Member {
    fn new(id: u64, link: LinkConditions) -> Self {
        Self {
            id,
            receiver: DeltaReceiver::new(DeltaConfig::default()),
            down: LinkModel::new(link, id * 7 + 1),
            up: LinkModel::new(link, id * 13 + 5),
            applied: 0,
        }
    }

    /// Delivers what arrives now; returns the acks that reach the server.
    fn exchange(&mut self, tick: u64) -> Vec<UpdateAck> {
        for bytes in self.down.deliver(tick) {
            let Ok(ServerMessage::UnitUpdate(u)) = decode_server::<QuantizedUnit>(&bytes) else {
                panic!("update did not decode")
            };
            match self.receiver.receive(&u) {
                Ok(ReceiveOutcome::Applied(_)) => self.applied += 1,
                Ok(_) => {}
                Err(e) => panic!("member {} refused a shared update: {e}", self.id),
            }
        }
        for ack in self.receiver.take_acks() {
            self.up.send(tick, ack);
        }
        self.up.deliver(tick)
    }

    fn holds(&self) -> BTreeMap<UnitId, QuantizedUnit> {
        self.receiver.units().map(|(id, u)| (id, *u)).collect()
    }
}

fn sees(sender: &DeltaSender) -> BTreeMap<UnitId, QuantizedUnit> {
    sender.visible_units().map(|(id, u)| (id, *u)).collect()
}

/// Encodes the updates once and hands the same bytes to each member.
fn broadcast(sender: &mut DeltaSender, tick: u64, members: &mut [Member]) -> usize {
    let updates = sender.write_updates(tick);
    for u in &updates {
        let bytes = encode_server(&ServerMessage::UnitUpdate(u.clone())).unwrap();
        for m in members.iter_mut() {
            m.down.send(tick, bytes.clone());
        }
    }
    updates.len()
}

#[test]
fn members_joining_and_leaving_a_shared_stream_on_lossy_links_converge() {
    let lossy = LinkConditions {
        loss: 0.08,
        duplicate: 0.02,
        latency_ticks: 2,
        jitter_ticks: 3,
    };
    let mut rng = SplitMix64::new(42);
    let mut sender = DeltaSender::new(DeltaConfig::default());
    let mut join = AckJoin::default();
    let mut members: Vec<Member> = (1..=3).map(|id| Member::new(id, lossy)).collect();
    for m in &members {
        join.add(m.id);
    }
    // The member that leaves, with its own sender.
    let mut alone: Option<(DeltaSender, Member)> = None;
    let mut joined_acks = None;
    let mut sent = 0;
    let mut settled_at = None;
    for tick in 1..=800u64 {
        // 300 units; each tick some move or are hurt, a few die or appear.
        if tick <= 330 {
            for _ in 0..40 {
                let id = rng.below(300);
                let change = if rng.chance(0.05) {
                    None
                } else {
                    Some(unit(
                        id as i64 * 100 + rng.below(50) as i64,
                        50.0 + rng.below(50) as f32,
                    ))
                };
                for s in std::iter::once(&mut sender).chain(alone.as_mut().map(|a| &mut a.0)) {
                    match change {
                        Some(u) => s.set_unit(id, u),
                        None => s.remove_unit(id),
                    }
                }
            }
        }
        if tick == 150 {
            // A fourth member joins the running stream.
            sender.restart_receiver();
            members.push(Member::new(4, lossy));
            join.add(4);
            joined_acks = None;
        }
        if tick == 250 {
            // Member 2 leaves with a clone of the shared sender.
            let at = members.iter().position(|m| m.id == 2).unwrap();
            let leaver = members.remove(at);
            join.remove(2);
            alone = Some((sender.clone(), leaver));
        }
        sent += broadcast(&mut sender, tick, &mut members);
        for m in members.iter_mut() {
            for ack in m.exchange(tick) {
                join.receive(m.id, &ack);
            }
        }
        if let Some(ack) = join.joined().filter(|a| Some(*a) != joined_acks) {
            sender.receive_ack(&ack);
            joined_acks = Some(ack);
        }
        if let Some((solo, leaver)) = alone.as_mut() {
            broadcast(solo, tick, std::slice::from_mut(leaver));
            for ack in leaver.exchange(tick) {
                solo.receive_ack(&ack);
            }
        }
        // Changes stop at 330: then both senders learn every member has all.
        if tick > 330 && sender.is_settled() && alone.as_ref().is_some_and(|a| a.0.is_settled()) {
            settled_at = Some(tick);
            break;
        }
    }
    assert!(settled_at.is_some(), "never settled");
    assert!(sent > 300, "{sent} updates");
    let want = sees(&sender);
    assert!(want.len() > 200);
    for m in &members {
        assert_eq!(m.holds(), want, "member {} (applied {})", m.id, m.applied);
    }
    let (solo, leaver) = alone.unwrap();
    assert_eq!(leaver.holds(), sees(&solo), "the member that left");
    assert_eq!(sender.pending_units() + solo.pending_units(), 0);
    let stats = sender.stats();
    assert!(
        stats.delta_units > stats.full_units,
        "{stats:?}: mostly deltas"
    );
}
