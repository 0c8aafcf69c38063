//! Acked-baseline deltas heal after loss, duplication and reordering, and
//! fall back to whole units whenever no usable baseline exists.

use std::collections::{BTreeMap, HashMap};

use galaxy_protocol::link_model::{LinkConditions, LinkModel, SplitMix64};
use galaxy_protocol::sender::DeltaConfig;
use galaxy_protocol::*;
use proptest::prelude::*;

/// Sender and receiver joined by two lossy links, checking every applied
/// state against what the sender meant at that tick.
pub struct Harness<S: UnitSnapshot = QuantizedUnit> {
    pub sender: DeltaSender<S>,
    pub receiver: DeltaReceiver<S>,
    pub down: LinkModel<Vec<u8>>,
    pub up: LinkModel<Vec<u8>>,
    truth: HashMap<(u64, UnitId), Option<S>>,
    pub tick: u64,
    pub checked: u64,
    pub bytes_down: usize,
    /// With a budget, updates are written within it (see `with_budget`).
    pub budget: Option<ByteBudget>,
}

impl<S: UnitSnapshot> Harness<S> {
    pub fn new(config: DeltaConfig, down: LinkConditions, up: LinkConditions, seed: u64) -> Self {
        Self {
            sender: DeltaSender::new(config),
            receiver: DeltaReceiver::new(config),
            down: LinkModel::new(down, seed),
            up: LinkModel::new(up, seed ^ 0xabcdef),
            truth: HashMap::new(),
            tick: 0,
            checked: 0,
            bytes_down: 0,
            budget: None,
        }
    }

    /// Writes updates within `budget` from now on, checking after every
    /// tick that the bytes sent since then never exceed the budget's rate
    /// by more than one message.
    pub fn with_budget(mut self, budget: ByteBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// One tick: send this tick's updates, deliver what arrives, ack.
    pub fn step(&mut self) -> Vec<UnitUpdate<S>> {
        self.tick += 1;
        let tick = self.tick;
        let updates = match self.budget.as_mut() {
            Some(b) => {
                b.refill();
                self.sender.write_updates_within(tick, b)
            }
            None => self.sender.write_updates(tick),
        };
        for u in &updates {
            for d in &u.updates {
                self.truth
                    .insert((tick, d.unit_id), self.sender.unit(d.unit_id).copied());
            }
            let bytes = encode_server(&ServerMessage::UnitUpdate(u.clone()))
                .expect("sender output encodes");
            assert!(
                bytes.len() <= MAX_UNIT_UPDATE_BYTES,
                "{} bytes",
                bytes.len()
            );
            self.bytes_down += bytes.len();
            self.down.send(tick, bytes);
        }
        if let Some(b) = &self.budget {
            let allowed = tick as usize * b.bytes_per_tick() + MAX_UNIT_UPDATE_BYTES;
            assert!(
                self.bytes_down <= allowed,
                "{} bytes sent in {tick} ticks of {} (+ one message)",
                self.bytes_down,
                b.bytes_per_tick()
            );
        }
        for bytes in self.down.deliver(tick) {
            let Ok(ServerMessage::UnitUpdate(u)) = decode_server::<S>(&bytes) else {
                panic!("update did not decode")
            };
            match self.receiver.receive(&u) {
                Ok(ReceiveOutcome::Applied(_)) => {
                    for d in &u.updates {
                        if let Some(got) = self.receiver.recorded(d.unit_id, u.timestamp) {
                            let want = self.truth[&(u.timestamp, d.unit_id)];
                            assert_eq!(
                                got.copied(),
                                want,
                                "unit {} at tick {}",
                                d.unit_id,
                                u.timestamp
                            );
                            self.checked += 1;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("a correct sender's update was refused: {e}"),
            }
        }
        for ack in self.receiver.take_acks() {
            self.up
                .send(tick, encode_client(&ClientMessage::UpdateAck(ack)).unwrap());
        }
        for bytes in self.up.deliver(tick) {
            let Ok(ClientMessage::UpdateAck(ack)) = decode_client(&bytes) else {
                panic!("ack did not decode")
            };
            self.sender.receive_ack(&ack);
        }
        updates
    }

    /// Ticks with no changes until the sender knows the receiver has
    /// everything; false if that takes more than `max_ticks`.
    pub fn settle(&mut self, max_ticks: u64) -> bool {
        for _ in 0..max_ticks {
            if self.sender.is_settled() {
                return true;
            }
            self.step();
        }
        self.sender.is_settled()
    }

    /// True if the receiver sees exactly what the sender holds.
    pub fn converged(&self) -> bool {
        let want: BTreeMap<_, _> = self.sender.visible_units().collect();
        let got: BTreeMap<_, _> = self.receiver.units().collect();
        want == got
    }
}

/// A world of units that walk (dead-reckoned), turn, wander, fight, leave
/// view, come back, spawn and change kind.
pub struct World {
    rng: SplitMix64,
    in_view: BTreeMap<UnitId, UnitSample>,
    away: BTreeMap<UnitId, UnitSample>,
    next_id: UnitId,
    reckoner: DeadReckoner,
    tick: u64,
}

impl World {
    pub fn new(seed: u64, units: u64) -> Self {
        let mut w = Self {
            rng: SplitMix64::new(seed),
            in_view: BTreeMap::new(),
            away: BTreeMap::new(),
            next_id: 1,
            reckoner: DeadReckoner::default(),
            tick: 0,
        };
        for _ in 0..units {
            w.spawn();
        }
        w
    }

    fn spawn(&mut self) {
        let r = &mut self.rng;
        let u = UnitSample {
            owner: r.below(4),
            kind: r.below(3) as u8,
            position: WorldPos::new(
                r.below(300_000) as i64 - 150_000,
                r.below(300_000) as i64 - 150_000,
            ),
            velocity: random_velocity(r),
            health: r.below(1000) as f32,
            state: UnitState(r.below(4) as u8),
            target: None,
        };
        self.in_view.insert(self.next_id, u);
        self.next_id += 1 + self.rng.below(3);
    }

    /// Advances one tick and tells `sender` what the client should see.
    pub fn step(&mut self, sender: &mut DeltaSender) {
        self.tick += 1;
        let ids: Vec<UnitId> = self.in_view.keys().copied().collect();
        for id in ids {
            let r = &mut self.rng;
            let mut s = self.in_view[&id];
            // Walk along the velocity (to the nearest cm), sometimes turn,
            // stop, start, jitter or jump.
            let (vx, vy) = s.velocity.cm_per_tick();
            s.position.x += vx.round() as i64;
            s.position.y += vy.round() as i64;
            if r.chance(0.1) {
                s.velocity = random_velocity(r);
            }
            if r.chance(0.3) {
                let step = if r.chance(0.02) { 5_000_000 } else { 8 };
                s.position.x += r.below(step * 2) as i64 - step as i64;
                s.position.y += r.below(step * 2) as i64 - step as i64;
            }
            if r.chance(0.2) {
                s.health = (s.health - r.below(60) as f32 + 20.0).max(0.0);
            }
            if r.chance(0.05) {
                s.state = UnitState(r.below(5) as u8);
            }
            if r.chance(0.05) {
                s.target = if r.chance(0.3) {
                    None
                } else {
                    Some(r.below(self.next_id))
                };
            }
            if r.chance(0.01) {
                s.kind = s.kind.wrapping_add(1);
            }
            if r.chance(0.02) {
                self.in_view.remove(&id);
                self.away.insert(id, s);
            } else {
                self.in_view.insert(id, s);
            }
        }
        let back: Vec<UnitId> = self
            .away
            .keys()
            .copied()
            .filter(|_| self.rng.chance(0.05))
            .collect();
        for id in back {
            let u = self.away.remove(&id).expect("listed");
            self.in_view.insert(id, u);
        }
        if self.rng.chance(0.2) {
            self.spawn();
        }
        for (&id, s) in &self.in_view {
            let track = self.reckoner.observe(id, self.tick, s);
            sender.set_unit_weighted(id, track, 0.5 + (id % 4) as f32);
        }
        for &id in self.away.keys() {
            self.reckoner.forget(id);
            sender.remove_unit(id);
        }
    }
}

fn random_velocity(r: &mut SplitMix64) -> Velocity {
    if r.chance(0.3) {
        Velocity::ZERO
    } else {
        Velocity::new(r.below(1200) as i32 - 600, r.below(1200) as i32 - 600)
    }
}

fn conditions(loss: f64, dup: f64, latency: u64, jitter: u64) -> LinkConditions {
    LinkConditions {
        loss,
        duplicate: dup,
        latency_ticks: latency,
        jitter_ticks: jitter,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random worlds over random bad links: every state the receiver records
    /// equals what the sender sent for that tick, and once the links let the
    /// acks through, the receiver equals the sender exactly.
    #[test]
    fn receiver_never_drifts(
        seed in any::<u64>(),
        units in 1u64..60,
        ticks in 10u64..120,
        loss in 0.0f64..0.5,
        dup in 0.0f64..0.2,
        latency in 0u64..4,
        jitter in 0u64..5,
        ack_loss in 0.0f64..0.5,
        history_cap in 3usize..40,
        window in 3u64..300,
    ) {
        let config = DeltaConfig { history_cap, baseline_window_ticks: window, ..DeltaConfig::default() };
        let mut h = Harness::new(config, conditions(loss, dup, latency, jitter), conditions(ack_loss, dup, latency, jitter), seed);
        let mut world = World::new(seed, units);
        for _ in 0..ticks {
            world.step(&mut h.sender);
            h.step();
        }
        prop_assert!(h.settle(3000), "sender never settled: {} units unacked", h.sender.unsettled_units());
        prop_assert!(h.converged());
        prop_assert!(h.checked > 0);
    }
}

#[test]
fn heals_after_a_burst_of_total_loss() {
    let mut h = Harness::new(
        DeltaConfig::default(),
        LinkConditions::PERFECT,
        LinkConditions::PERFECT,
        1,
    );
    let mut world = World::new(5, 200);
    for t in 0..200 {
        // Ticks 50..90 lose everything in both directions.
        let dead = (50..90).contains(&t);
        h.down.conditions.loss = if dead { 1.0 } else { 0.0 };
        h.up.conditions.loss = if dead { 1.0 } else { 0.0 };
        world.step(&mut h.sender);
        h.step();
    }
    assert!(h.settle(100));
    assert!(h.converged());
    assert!(h.sender.stats().lost_packets > 0 && h.sender.stats().resends > 0);
}

fn unit_at(x: i64, kind: u8) -> QuantizedUnit {
    quantize(&UnitSample {
        owner: 1,
        kind,
        position: WorldPos::new(x, 0),
        velocity: Velocity::ZERO,
        health: 100.0,
        state: UnitState::IDLE,
        target: None,
    })
}

fn only_body(updates: &[UnitUpdate]) -> DeltaBody {
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].updates.len(), 1);
    updates[0].updates[0].body
}

fn perfect(config: DeltaConfig) -> Harness {
    Harness::new(config, LinkConditions::PERFECT, LinkConditions::PERFECT, 3)
}

#[test]
fn new_units_go_whole_then_as_deltas() {
    let mut h = perfect(DeltaConfig::default());
    h.sender.set_unit(7, unit_at(0, 1));
    assert!(matches!(only_body(&h.step()), DeltaBody::Full(_)));
    h.sender.set_unit(7, unit_at(30, 1));
    let body = only_body(&h.step());
    assert!(
        matches!(body, DeltaBody::Changes { changes: c, .. } if c.motion.map(|m| m.position) == Some(PositionChange::Delta(30, 0)) && c.health_delta.is_none())
    );
    // Nothing changed, everything acked: nothing is sent.
    assert!(h.step().is_empty());
    assert!(h.converged());
}

#[test]
fn unit_back_in_view_is_sent_whole() {
    let mut h = perfect(DeltaConfig::default());
    h.sender.set_unit(7, unit_at(0, 1));
    h.step();
    h.sender.remove_unit(7);
    assert_eq!(only_body(&h.step()), DeltaBody::Removed);
    assert!(h.receiver.unit(7).is_none());
    h.step();
    h.sender.set_unit(7, unit_at(5, 1));
    assert!(matches!(only_body(&h.step()), DeltaBody::Full(_)));
    assert!(h.converged());
}

#[test]
fn baseline_older_than_the_window_is_not_used() {
    let config = DeltaConfig {
        baseline_window_ticks: 10,
        history_cap: 1000,
        ..DeltaConfig::default()
    };
    let mut h = perfect(config);
    h.sender.set_unit(1, unit_at(0, 1));
    h.step(); // tick 1, acked at once
    h.up.conditions.loss = 1.0; // acks stop arriving
    let mut bodies = Vec::new();
    for x in 1..=12 {
        h.sender.set_unit(1, unit_at(x, 1));
        bodies.push(only_body(&h.step()));
    }
    // Ticks 2..=11 are within 10 ticks of the baseline at tick 1; ticks 12 and 13 are not.
    assert!(bodies[..10].iter().all(|b| matches!(
        b,
        DeltaBody::Changes {
            baseline_tick: 1,
            ..
        }
    )));
    assert!(bodies[10..].iter().all(|b| matches!(b, DeltaBody::Full(_))));
    h.up.conditions.loss = 0.0;
    assert!(h.settle(50) && h.converged());
}

#[test]
fn too_many_unacked_states_fall_back_to_whole() {
    let config = DeltaConfig {
        history_cap: 4,
        ..DeltaConfig::default()
    };
    let mut h = perfect(config);
    h.sender.set_unit(1, unit_at(0, 1));
    h.step();
    h.up.conditions.loss = 1.0;
    let mut bodies = Vec::new();
    for x in 1..=5 {
        h.sender.set_unit(1, unit_at(x, 1));
        bodies.push(only_body(&h.step()));
    }
    // With 3 states in flight the receiver may have pushed the baseline out.
    assert!(
        bodies[..3]
            .iter()
            .all(|b| matches!(b, DeltaBody::Changes { .. }))
    );
    assert!(bodies[3..].iter().all(|b| matches!(b, DeltaBody::Full(_))));
    h.up.conditions.loss = 0.0;
    assert!(h.settle(50) && h.converged());
}

#[test]
fn kind_change_and_teleport() {
    let mut h = perfect(DeltaConfig::default());
    h.sender.set_unit(1, unit_at(0, 1));
    h.step();
    h.sender.set_unit(1, unit_at(0, 2));
    assert!(matches!(only_body(&h.step()), DeltaBody::Full(_)));
    h.sender.set_unit(1, unit_at(40_000, 2));
    let updates = h.step();
    assert_eq!(
        updates[0].updates[0].changes(),
        POSITION_CHANGED | POSITION_ABSOLUTE
    );
    assert!(h.converged());
}

#[test]
fn duplicated_and_reordered_packets_are_harmless() {
    let mut h = perfect(DeltaConfig::default());
    let mut world = World::new(9, 50);
    let mut all = Vec::new();
    for _ in 0..30 {
        world.step(&mut h.sender);
        all.extend(h.step());
    }
    // Replay every update again, newest first, to a receiver that has them.
    let before: BTreeMap<_, _> = h.receiver.units().map(|(id, u)| (id, *u)).collect();
    for u in all.iter().rev() {
        assert_eq!(h.receiver.receive(u), Ok(ReceiveOutcome::Duplicate));
    }
    let after: BTreeMap<_, _> = h.receiver.units().map(|(id, u)| (id, *u)).collect();
    assert_eq!(before, after);
    assert_eq!(h.receiver.stats().duplicates, all.len() as u64);
}

#[test]
fn forged_baseline_is_refused_whole() {
    let mut r = DeltaReceiver::default();
    let good = UnitDelta::full(1, unit_at(0, 1));
    let bad = UnitDelta {
        unit_id: 2,
        body: DeltaBody::Changes {
            baseline_tick: 3,
            changes: FieldChanges {
                health_delta: Some(1),
                ..FieldChanges::default()
            },
        },
    };
    let u = UnitUpdate {
        sector_id: SectorId::new(0, 0, 0),
        sequence: 0,
        timestamp: 5,
        updates: vec![good, bad],
    };
    assert_eq!(
        r.receive(&u),
        Err(ReceiveError::MissingBaseline { unit: 2, tick: 3 })
    );
    // Nothing of it was applied or acknowledged.
    assert!(r.unit(1).is_none());
    assert!(r.take_acks().is_empty());
    assert_eq!(r.stats().refused, 1);
}

#[test]
fn with_deltas_off_every_change_goes_whole() {
    let config = DeltaConfig {
        deltas: false,
        ..DeltaConfig::default()
    };
    let mut h = perfect(config);
    let mut world = World::new(4, 30);
    let mut bodies = Vec::new();
    for _ in 0..20 {
        world.step(&mut h.sender);
        bodies.extend(
            h.step()
                .into_iter()
                .flat_map(|u| u.updates.into_iter().map(|d| d.body)),
        );
    }
    assert!(h.settle(50) && h.converged());
    assert!(
        bodies
            .iter()
            .all(|b| !matches!(b, DeltaBody::Changes { .. }))
    );
    assert!(
        bodies
            .iter()
            .filter(|b| matches!(b, DeltaBody::Full(_)))
            .count()
            > 100
    );
}

/// With dead reckoning a unit that turns is often the only thing sent for a
/// while. If that lone update is lost, the empty probe after it is acked
/// instead, which shows the loss at once: the turn is sent again within a
/// round trip, not after `resend_after_ticks`.
#[test]
fn a_lost_lone_update_is_found_by_a_probe() {
    let link = LinkConditions {
        latency_ticks: 1,
        ..LinkConditions::PERFECT
    };
    let mut h = Harness::new(DeltaConfig::default(), link, link, 2);
    h.sender.set_unit(1, unit_at(0, 1));
    for _ in 0..6 {
        h.step();
    }
    assert!(h.converged());
    // The unit moves; the update carrying it is lost.
    h.sender.set_unit(1, unit_at(900, 1));
    h.down.conditions.loss = 1.0;
    h.step();
    h.down.conditions.loss = 0.0;
    let mut healed_after = None;
    for t in 1..=DeltaConfig::default().resend_after_ticks {
        h.step();
        if h.converged() {
            healed_after = Some(t);
            break;
        }
    }
    // The probe goes at +1 and arrives at +2; its ack is back at +3 (after
    // that tick's send); the move goes again at +4 and arrives at +5,
    // instead of being resent at +8 when the timeout expires.
    assert_eq!(healed_after, Some(5));
    assert!(h.sender.stats().probes >= 1);
}
