//! Bandwidth report: simulates a server's `DeltaSender` and a client's
//! `DeltaReceiver` in process over a modelled link (seeded, deterministic)
//! and measures what the acked-baseline delta encoding costs.
//!
//! ```text
//! cargo run --release -p galaxy_protocol --example bandwidth -- --json
//! ```
//!
//! Prints a table, then (with `--json`) one JSON object per scenario.
//! `bytes_per_moving_unit` = encoded `UnitUpdate` bytes (tag, header and
//! packed deltas; no UDP/renet headers) over the measured ticks, divided by
//! the number of (unit, tick) pairs in which a unit moved. The first
//! `WARMUP_TICKS` (the client's join, when every unit is sent whole) are
//! reported separately as `join_bytes`. `naive_bytes_per_moving_unit` is the
//! design's structs with every field present, full state of every moving
//! unit each tick, serialized plainly with serde (bincode, fixed-size ints).

use std::collections::BTreeMap;
use std::f64::consts::TAU;

use galaxy_protocol::link_model::{LinkConditions, LinkModel, SplitMix64};
use galaxy_protocol::*;
use serde::Serialize;

const WARMUP_TICKS: u64 = 20;

/// The design's full unit state, as a plain serde struct (the naive baseline).
#[derive(Serialize)]
struct NaiveUnit {
    unit_id: u64,
    changes: u32,
    position: (i64, i64),
    health: u16,
    state: u8,
    target: Option<u64>,
}

/// The design's `UnitUpdate` carrying naive full states.
#[derive(Serialize)]
struct NaiveUpdate {
    sector_id: SectorId,
    updates: Vec<NaiveUnit>,
    timestamp: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    March,
    Battle,
    Idle,
}

/// One workload: what the units do, how long, and the link in each direction.
pub struct Scenario {
    pub name: &'static str,
    kind: Kind,
    pub units: usize,
    pub ticks: u64,
    pub hz: u64,
    pub down: LinkConditions,
    pub up: LinkConditions,
}

/// A simulated unit in float metres (the "game"), quantized every tick.
struct SimUnit {
    owner: u64,
    x: f64,
    y: f64,
    heading: f64,
    speed: f64,
    turn: f64,
    health: f32,
    state: UnitState,
    target: Option<UnitId>,
}

struct World {
    rng: SplitMix64,
    units: BTreeMap<UnitId, SimUnit>,
    next_id: UnitId,
    kind: Kind,
}

impl World {
    fn new(kind: Kind, n: usize, seed: u64) -> Self {
        let mut w = Self {
            rng: SplitMix64::new(seed),
            units: BTreeMap::new(),
            next_id: 1,
            kind,
        };
        for _ in 0..n {
            w.spawn();
        }
        w
    }

    fn spawn(&mut self) {
        let r = &mut self.rng;
        let owner = r.below(2);
        let (x, y, heading, speed, turn) = match self.kind {
            // Columns spread over 4 km x 4 km, marching in one of 8 directions.
            Kind::March => (
                r.next_f64() * 4000.0,
                r.next_f64() * 4000.0,
                (r.below(8) as f64) * TAU / 8.0,
                5.0,
                0.0,
            ),
            // Two armies in a 1.5 km field; most units move on curving paths.
            Kind::Battle => {
                let moving = r.chance(0.8);
                (
                    r.next_f64() * 1500.0 + owner as f64 * 200.0,
                    r.next_f64() * 1500.0,
                    r.next_f64() * TAU,
                    if moving {
                        2.0 + r.next_f64() * 6.0
                    } else {
                        0.0
                    },
                    (r.next_f64() - 0.5) * 0.6,
                )
            }
            Kind::Idle => (
                r.next_f64() * 20_000.0,
                r.next_f64() * 20_000.0,
                0.0,
                0.0,
                0.0,
            ),
        };
        let u = SimUnit {
            owner,
            x,
            y,
            heading,
            speed,
            turn,
            health: 1000.0,
            state: if speed > 0.0 {
                UnitState::MOVING
            } else {
                UnitState::IDLE
            },
            target: None,
        };
        self.units.insert(self.next_id, u);
        self.next_id += 1;
    }

    /// Advances one tick; returns the ids of units that died.
    fn step(&mut self, dt: f64) -> Vec<UnitId> {
        let mut dead = Vec::new();
        let ids: Vec<UnitId> = if self.kind == Kind::Battle {
            self.units.keys().copied().collect()
        } else {
            Vec::new()
        };
        for (&id, u) in self.units.iter_mut() {
            u.heading += u.turn * dt;
            u.x += u.heading.cos() * u.speed * dt;
            u.y += u.heading.sin() * u.speed * dt;
            if self.kind != Kind::Battle {
                continue;
            }
            let r = &mut self.rng;
            if r.chance(0.02) {
                u.turn = (r.next_f64() - 0.5) * 0.6;
            }
            if r.chance(0.01) {
                u.state = UnitState(r.below(4) as u8);
            }
            if r.chance(0.02) {
                u.target = Some(ids[r.below(ids.len() as u64) as usize]);
            }
            if r.chance(0.1) {
                u.health -= 5.0 + r.next_f64() as f32 * 20.0;
                if u.health <= 0.0 {
                    dead.push(id);
                }
            }
        }
        for id in &dead {
            self.units.remove(id);
            self.spawn();
        }
        dead
    }

    fn quantized(&self, id: UnitId) -> QuantizedUnit {
        let u = &self.units[&id];
        quantize(&UnitSample {
            owner: u.owner,
            kind: 1,
            position: WorldPos::from_metres(u.x, u.y),
            health: u.health,
            state: u.state,
            target: u.target,
        })
    }
}

/// What one scenario measured.
#[derive(Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub units: usize,
    pub moving: usize,
    pub hz: u64,
    pub ticks: u64,
    pub loss: f64,
    pub bytes_per_moving_unit: Option<f64>,
    pub kbps: f64,
    pub naive_bytes_per_moving_unit: Option<f64>,
    pub naive_kbps: f64,
    pub join_bytes: usize,
    pub messages: u64,
    pub resends: u64,
    pub settle_ticks: u64,
    pub converged: bool,
}

fn naive_bytes(world: &World, moved: &[UnitId], tick: u64) -> usize {
    let mut by_sector: BTreeMap<SectorId, Vec<NaiveUnit>> = BTreeMap::new();
    for &id in moved {
        let q = world.quantized(id);
        by_sector
            .entry(SectorId::at(q.position()))
            .or_default()
            .push(NaiveUnit {
                unit_id: id,
                changes: POSITION_CHANGED | HEALTH_CHANGED | STATE_CHANGED | TARGET_CHANGED,
                position: (q.position().x, q.position().y),
                health: q.health(),
                state: q.state().0,
                target: q.target(),
            });
    }
    by_sector
        .into_iter()
        .map(|(sector_id, updates)| {
            let msg = NaiveUpdate {
                sector_id,
                updates,
                timestamp: tick,
            };
            bincode::serde::encode_to_vec(&msg, bincode::config::legacy()).map_or(0, |v| v.len())
        })
        .sum()
}

/// Runs one scenario with a seed; equal seeds give equal reports.
pub fn run(s: &Scenario, seed: u64) -> Report {
    let mut world = World::new(s.kind, s.units, seed);
    let mut sender = DeltaSender::default();
    let mut receiver = DeltaReceiver::default();
    let mut down: LinkModel<Vec<u8>> = LinkModel::new(s.down, seed ^ 1);
    let mut up: LinkModel<Vec<u8>> = LinkModel::new(s.up, seed ^ 2);
    let dt = 1.0 / s.hz as f64;
    let (mut bytes, mut join_bytes, mut naive, mut moving_pairs) = (0usize, 0usize, 0usize, 0u64);
    let mut last: BTreeMap<UnitId, WorldPos> = BTreeMap::new();
    let mut tick = 0u64;
    let mut exchange =
        |tick: u64, sender: &mut DeltaSender, receiver: &mut DeltaReceiver| -> usize {
            let mut sent = 0;
            for u in sender.write_updates(tick) {
                let b = encode(&NetworkMessage::UnitUpdate(u)).expect("encodes");
                sent += b.len();
                down.send(tick, b);
            }
            for b in down.deliver(tick) {
                if let Ok(NetworkMessage::UnitUpdate(u)) = decode(&b) {
                    receiver
                        .receive(&u)
                        .expect("a correct sender's update applies");
                }
            }
            for ack in receiver.take_acks() {
                up.send(
                    tick,
                    encode(&NetworkMessage::UpdateAck(ack)).expect("encodes"),
                );
            }
            for b in up.deliver(tick) {
                if let Ok(NetworkMessage::UpdateAck(a)) = decode(&b) {
                    sender.receive_ack(&a);
                }
            }
            sent
        };
    for _ in 0..s.ticks + WARMUP_TICKS {
        tick += 1;
        for id in world.step(dt) {
            sender.remove_unit(id);
            last.remove(&id);
        }
        let mut moved = Vec::new();
        for &id in world.units.keys() {
            let q = world.quantized(id);
            if last
                .insert(id, q.position())
                .is_some_and(|p| p != q.position())
            {
                moved.push(id);
            }
            sender.set_unit(id, q);
        }
        let sent = exchange(tick, &mut sender, &mut receiver);
        if tick <= WARMUP_TICKS {
            join_bytes += sent;
        } else {
            bytes += sent;
            naive += naive_bytes(&world, &moved, tick);
            moving_pairs += moved.len() as u64;
        }
    }
    // Let the link deliver what is outstanding, with the world frozen.
    let mut settle_ticks = 0;
    while !sender.is_settled() && settle_ticks < 2000 {
        tick += 1;
        settle_ticks += 1;
        exchange(tick, &mut sender, &mut receiver);
    }
    let want: BTreeMap<_, _> = sender.visible_units().collect();
    let got: BTreeMap<_, _> = receiver.units().collect();
    let seconds = s.ticks as f64 / s.hz as f64;
    let per = |b: usize| (moving_pairs > 0).then(|| b as f64 / moving_pairs as f64);
    Report {
        scenario: s.name,
        units: s.units,
        moving: (moving_pairs as f64 / s.ticks as f64).round() as usize,
        hz: s.hz,
        ticks: s.ticks,
        loss: s.down.loss,
        bytes_per_moving_unit: per(bytes),
        kbps: bytes as f64 * 8.0 / seconds / 1000.0,
        naive_bytes_per_moving_unit: per(naive),
        naive_kbps: naive as f64 * 8.0 / seconds / 1000.0,
        join_bytes,
        messages: sender.stats().messages,
        resends: sender.stats().resends,
        settle_ticks,
        converged: sender.is_settled() && want == got,
    }
}

/// The report's scenarios: march, battle, idle and lossy.
pub fn standard_scenarios() -> [Scenario; 4] {
    // Client-to-server and back one tick each: acks arrive ~100 ms after the update at 20 Hz.
    let clean = LinkConditions {
        latency_ticks: 1,
        ..LinkConditions::PERFECT
    };
    let bad = LinkConditions {
        loss: 0.10,
        duplicate: 0.02,
        latency_ticks: 1,
        jitter_ticks: 2,
    };
    [
        Scenario {
            name: "march",
            kind: Kind::March,
            units: 1000,
            ticks: 600,
            hz: 20,
            down: clean,
            up: clean,
        },
        Scenario {
            name: "battle",
            kind: Kind::Battle,
            units: 1000,
            ticks: 600,
            hz: 20,
            down: clean,
            up: clean,
        },
        Scenario {
            name: "idle",
            kind: Kind::Idle,
            units: 10_000,
            ticks: 200,
            hz: 20,
            down: clean,
            up: clean,
        },
        Scenario {
            name: "lossy",
            kind: Kind::Battle,
            units: 1000,
            ticks: 600,
            hz: 20,
            down: bad,
            up: bad,
        },
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: bandwidth [--json] [--scenario march|battle|idle|lossy] [--seed N]");
        return;
    }
    let json = args.iter().any(|a| a == "--json");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = value("--scenario");
    let seed = value("--seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(42u64);
    let scenarios = standard_scenarios();
    let mut reports = Vec::new();
    for s in scenarios
        .iter()
        .filter(|s| only.as_deref().is_none_or(|o| o == s.name))
    {
        eprintln!(
            "running {} ({} units, {} ticks)...",
            s.name, s.units, s.ticks
        );
        reports.push(run(s, seed));
    }
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    println!(
        "{:<8} {:>6} {:>6} {:>3} {:>5} {:>5} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9}",
        "scenario",
        "units",
        "moving",
        "hz",
        "ticks",
        "loss",
        "B/moving",
        "kbps",
        "naive B",
        "naive kbps",
        "join KB",
        "converged"
    );
    for r in &reports {
        println!(
            "{:<8} {:>6} {:>6} {:>3} {:>5} {:>5.2} {:>9} {:>9.1} {:>9} {:>10.1} {:>9.1} {:>9}",
            r.scenario,
            r.units,
            r.moving,
            r.hz,
            r.ticks,
            r.loss,
            opt(r.bytes_per_moving_unit),
            r.kbps,
            opt(r.naive_bytes_per_moving_unit),
            r.naive_kbps,
            r.join_bytes as f64 / 1024.0,
            r.converged
        );
    }
    if json {
        for r in &reports {
            println!("{}", serde_json::to_string(r).expect("report serializes"));
        }
    }
}
