//! Interpolation and prediction driven through the real delta sender and
//! receiver, over a seeded lossy link, at 60 frames per second.

use std::collections::BTreeMap;

use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::{
    DeadReckoner, DeltaConfig, DeltaReceiver, DeltaSender, QuantizedUnit, UnitEvent, UnitSample,
    UnitState, Velocity, WorldPos, distance_cm,
};

use super::*;

const FRAME: f64 = 1.0 / 60.0;
const TICK: f64 = 1.0 / 20.0;

/// A unit of the test server: where it is, the straight leg it walks
/// (start, goal, ticks walked) and how fast, as a simulation walks it:
/// along the exact line, rounded to the centimetre each tick.
struct Walker {
    at: WorldPos,
    leg: Option<(WorldPos, WorldPos, u64)>,
    /// Centimetres per tick.
    speed: u64,
}

impl Walker {
    /// One tick along the leg.
    fn step(&mut self) {
        let Some((from, to, ticks)) = self.leg.as_mut() else {
            return;
        };
        *ticks += 1;
        let length = distance_cm(*from, *to);
        let walked = *ticks * self.speed;
        if walked >= length {
            self.at = *to;
            self.leg = None;
            return;
        }
        let along =
            |a: i64, b: i64| a + ((b - a) as f64 * walked as f64 / length as f64).round() as i64;
        self.at = WorldPos::new(along(from.x, to.x), along(from.y, to.y));
    }

    /// Its velocity: the leg's direction at its speed, or the exact rest
    /// of the way when that is shorter than a step.
    fn velocity(&self) -> Velocity {
        let Some((from, to, _)) = self.leg else {
            return Velocity::ZERO;
        };
        let left = distance_cm(self.at, to);
        if left < self.speed {
            return Velocity::from_cm_per_tick(
                (to.x - self.at.x) as f64,
                (to.y - self.at.y) as f64,
            );
        }
        let d = distance_cm(from, to).max(1) as f64;
        let s = self.speed as f64;
        Velocity::from_cm_per_tick(
            (to.x - from.x) as f64 / d * s,
            (to.y - from.y) as f64 / d * s,
        )
    }
}

/// A server of walkers (replicated through a dead reckoner, as a server
/// does), a client receiver and a smoother joined by a link that drops
/// `loss` of the updates and delivers the rest after 40-80 ms.
struct Rig {
    walkers: BTreeMap<UnitId, Walker>,
    tick: u64,
    reckoner: DeadReckoner,
    sender: DeltaSender,
    receiver: DeltaReceiver,
    smoothing: Smoothing<QuantizedUnit>,
    rng: SplitMix64,
    loss: f64,
    in_flight: Vec<(f64, galaxy_protocol::UnitUpdate)>,
    /// Orders the client gave, arriving at the server at the given time.
    orders: Vec<(f64, Vec<UnitId>, WorldPos)>,
    now: f64,
    next_tick: f64,
}

impl Rig {
    fn new(loss: f64, seed: u64) -> Self {
        let mut smoothing = Smoothing::new(SmoothingConfig::default());
        smoothing.set_rtt(0.12);
        Self {
            walkers: BTreeMap::new(),
            tick: 0,
            reckoner: DeadReckoner::default(),
            sender: DeltaSender::new(DeltaConfig::default()),
            receiver: DeltaReceiver::default(),
            smoothing,
            rng: SplitMix64::new(seed),
            loss,
            in_flight: Vec::new(),
            orders: Vec::new(),
            now: 0.0,
            next_tick: 0.0,
        }
    }

    fn spawn(&mut self, id: UnitId, at: WorldPos, speed: u64) -> UnitId {
        self.walkers.insert(
            id,
            Walker {
                at,
                leg: None,
                speed,
            },
        );
        id
    }

    /// The server's sample of a walker.
    fn sample(w: &Walker) -> UnitSample {
        let velocity = w.velocity();
        UnitSample {
            owner: 1,
            kind: 0,
            position: w.at,
            velocity,
            health: 100.0,
            state: if velocity.is_zero() {
                UnitState::IDLE
            } else {
                UnitState::MOVING
            },
            target: None,
        }
    }

    /// Runs one 60 Hz frame: server ticks that are due, deliveries, then
    /// the smoother's advance.
    fn frame(&mut self) {
        self.now += FRAME;
        while self.next_tick <= self.now {
            self.next_tick += TICK;
            let server_now = self.tick as f64 * TICK;
            let due: Vec<_> = self
                .orders
                .iter()
                .filter(|o| o.0 <= server_now)
                .cloned()
                .collect();
            self.orders.retain(|o| o.0 > server_now);
            for (_, units, to) in due {
                for id in units {
                    self.order(id, to);
                }
            }
            self.tick += 1;
            for w in self.walkers.values_mut() {
                w.step();
            }
            let tick = self.tick;
            for (&id, w) in &self.walkers {
                let track = self.reckoner.observe(id, tick, &Self::sample(w));
                self.sender.set_unit(id, track);
            }
            for update in self.sender.write_updates(tick) {
                if !self.rng.chance(self.loss) {
                    let delay = 0.04 + self.rng.next_f64() * 0.04;
                    self.in_flight.push((self.now + delay, update));
                }
            }
        }
        let now = self.now;
        let mut arrived: Vec<_> = Vec::new();
        self.in_flight.retain(|(at, u)| {
            let due = *at <= now;
            if due {
                arrived.push(u.clone());
            }
            !due
        });
        for u in arrived {
            if self.receiver.receive(&u).is_ok() {
                // What the client's receive system does with an applied update.
                self.smoothing.observe_clock(now, u.timestamp);
                let events: Vec<UnitEvent> = self.receiver.drain_events().collect();
                for e in events {
                    match e {
                        UnitEvent::Spawned(id) | UnitEvent::Changed(id) => {
                            let state = *self.receiver.unit(id).unwrap();
                            self.smoothing.observe(id, state, u.timestamp, now);
                        }
                        UnitEvent::Despawned(id) => self.smoothing.forget(id),
                    }
                }
            }
            for ack in self.receiver.take_acks() {
                self.sender.receive_ack(&ack);
            }
        }
        self.smoothing.advance(now, FRAME);
    }

    /// Orders unit `id` to move to `to` (on the server).
    fn order(&mut self, id: UnitId, to: WorldPos) {
        let w = self.walkers.get_mut(&id).expect("a walker");
        w.leg = (w.at != to).then_some((w.at, to, 0));
    }

    fn drawn(&self, id: UnitId) -> (f64, f64) {
        self.smoothing.drawn_unit(id).expect("unit drawn").position
    }

    fn truth(&self, id: UnitId) -> (f64, f64) {
        let p = self.walkers[&id].at;
        (p.x as f64, p.y as f64)
    }
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// A remote scout (12 m/s, 20 cm per frame) walking and turning at 10%
/// loss: no frame moves it more than a little over its own speed, and it
/// stays within about the interpolation delay of the truth.
#[test]
fn remote_units_move_without_snapping_at_ten_percent_loss() {
    for seed in 0..8 {
        let mut rig = Rig::new(0.10, seed);
        let id = rig.spawn(7, WorldPos::new(0, 0), 60);
        let waypoints = [
            WorldPos::new(6_000, 0),
            WorldPos::new(6_000, 6_000),
            WorldPos::new(-3_000, 2_000),
        ];
        let mut worst_step: f64 = 0.0;
        let mut worst_lag: f64 = 0.0;
        let mut last: Option<(f64, f64)> = None;
        for (k, to) in waypoints.iter().enumerate() {
            rig.order(id, *to);
            for f in 0..150 {
                rig.frame();
                if k == 0 && f < 30 {
                    continue; // let the clock settle
                }
                let p = rig.drawn(id);
                if let Some(q) = last {
                    worst_step = worst_step.max(dist(p, q));
                }
                last = Some(p);
                worst_lag = worst_lag.max(dist(p, rig.truth(id)));
            }
        }
        // 60 cm per tick is 20 cm per frame; allow the clock's drift.
        assert!(
            worst_step < 45.0,
            "seed {seed}: a frame jumped {worst_step:.1} cm"
        );
        // 0.1 s delay plus up to 80 ms transit at 12 m/s is ~216 cm; a lost
        // update at a corner adds a little.
        assert!(
            worst_lag < 400.0,
            "seed {seed}: drawn {worst_lag:.0} cm behind"
        );
    }
}

/// A unit that stops is drawn where it stopped: no extrapolation past it.
#[test]
fn stopped_units_are_not_extrapolated() {
    let mut rig = Rig::new(0.0, 3);
    let id = rig.spawn(4, WorldPos::new(0, 0), 60);
    rig.order(id, WorldPos::new(3_000, 0));
    for _ in 0..240 {
        rig.frame();
    }
    let p = rig.drawn(id);
    assert!(dist(p, (3_000.0, 0.0)) < 0.5, "drawn at {p:?}");
}

/// The player's own unit starts moving in the frame after the order (before
/// the server has heard of it), is reconciled with the server by smoothing
/// (no frame moves it by much more than its speed), and ends exactly where
/// the server put it.
#[test]
fn own_units_are_predicted_and_reconciled_without_jumps() {
    for seed in 0..8 {
        let mut rig = Rig::new(0.10, 100 + seed);
        let id = rig.spawn(9, WorldPos::new(0, 0), 25);
        for _ in 0..60 {
            rig.frame();
        }
        let before = rig.drawn(id);
        let to = WorldPos::new(4_000, 1_000);
        rig.smoothing.predict_move(&[(id, 25.0)], to, rig.now);
        // The server hears of it about 60 ms later.
        let server_now = rig.tick as f64 * TICK;
        rig.orders.push((server_now + 0.06, vec![id], to));
        rig.frame();
        let first = rig.drawn(id);
        assert!(
            dist(first, (4_000.0, 1_000.0)) < dist(before, (4_000.0, 1_000.0)) - 5.0,
            "seed {seed}: did not respond in the first frame ({before:?} -> {first:?})"
        );
        assert!(rig.smoothing.drawn_unit(id).unwrap().predicted);
        let mut last = first;
        let mut worst: f64 = 0.0;
        for _ in 0..600 {
            rig.frame();
            let p = rig.drawn(id);
            worst = worst.max(dist(p, last));
            last = p;
        }
        // 25 cm per tick is 8.3 cm per frame; the reconciler adds at most
        // 25 cm per frame.
        assert!(
            worst <= 8.4 + 25.0,
            "seed {seed}: a frame jumped {worst:.1} cm"
        );
        assert!(
            dist(last, rig.truth(id)) < 0.5,
            "seed {seed}: ended at {last:?}"
        );
        assert!(!rig.smoothing.drawn_unit(id).unwrap().predicted);
    }
}

/// Only units with a velocity are extrapolated past their newest sample.
#[test]
fn moving_states_are_the_extrapolated_ones() {
    let w = |to: Option<WorldPos>| Walker {
        at: WorldPos::new(0, 0),
        leg: to.map(|to| (WorldPos::new(0, 0), to, 0)),
        speed: 25,
    };
    let walking = galaxy_protocol::quantize_at(&Rig::sample(&w(Some(WorldPos::new(900, 0)))), 3);
    let standing = galaxy_protocol::quantize_at(&Rig::sample(&w(None)), 3);
    assert!(is_moving(&walking));
    assert!(!is_moving(&standing));
}

/// A unit that leaves the view is forgotten; the others are still drawn.
#[test]
fn forgotten_units_are_no_longer_drawn() {
    let mut rig = Rig::new(0.0, 4);
    let ids: Vec<UnitId> = (0..5)
        .map(|i| rig.spawn(i + 1, WorldPos::new(i as i64 * 1_000, 0), 25))
        .collect();
    rig.order(ids[0], WorldPos::new(0, 5_000));
    for _ in 0..60 {
        rig.frame();
    }
    assert_eq!(rig.smoothing.len(), 5);
    rig.walkers.remove(&ids[1]);
    rig.sender.remove_unit(ids[1]);
    for _ in 0..30 {
        rig.frame();
    }
    let mut drawn: Vec<UnitId> = rig.smoothing.drawn().map(|(id, _)| id).collect();
    drawn.sort();
    assert_eq!(drawn, vec![ids[0], ids[2], ids[3], ids[4]]);
}
