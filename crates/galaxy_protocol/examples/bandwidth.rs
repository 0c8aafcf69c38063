//! Bandwidth report: simulates a server's `DeadReckoner` and `DeltaSender`
//! and a client's `DeltaReceiver` in process over a modelled link (seeded,
//! deterministic) and measures what the acked-baseline delta encoding
//! costs and how far what the client draws is from the truth.
//!
//! ```text
//! cargo run --release -p galaxy_protocol --example bandwidth -- --json
//! ```
//!
//! Prints a table, then (with `--json`) one JSON object per scenario.
//!
//! - `bytes_per_moving_unit`: encoded `UnitUpdate` bytes (tag, header and
//!   packed deltas; no UDP/renet headers) over the measured ticks, divided
//!   by the number of (unit, tick) pairs in which a unit moved. The first
//!   `WARMUP_TICKS` (the client's join, when every unit is sent whole; under
//!   a budget, until the client holds every unit) are reported separately
//!   as `join_bytes` and `join_ticks`.
//! - `naive_bytes_per_moving_unit`: the design's structs with every field
//!   present, full state of every moving unit each tick, serialized
//!   plainly with serde (bincode, fixed-size ints).
//! - `error_cm_max` / `error_cm_p99`: every tick, for every unit the client
//!   knows, the distance between where the client draws it (its received
//!   track at the render tick, `RENDER_DELAY_TICKS` = 0.1 s back, as the
//!   client's interpolation does) and where the simulation had it then.
//! - `max_stale_ticks`: the longest a newer state of a unit waited on the
//!   server before the client had it (ticks since the first change after
//!   the state the client holds), from one second after the join on.
//! - `budget_overshoot_bytes`: with a byte budget, the most the bytes sent
//!   since the start ever exceeded the budget's rate (the sender promises
//!   at most one message); `max_second_kbps` is the busiest 1 s window.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::f64::consts::TAU;

use galaxy_protocol::link_model::{LinkConditions, LinkModel, SplitMix64};
use galaxy_protocol::*;
use serde::Serialize;

const WARMUP_TICKS: u64 = 20;
/// Longest the join may take before measuring starts anyway.
const MAX_JOIN_TICKS: u64 = 600;
/// How far back the client draws (its interpolation delay): 0.1 s at 20 Hz.
const RENDER_DELAY_TICKS: u64 = 2;

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
    /// Columns marching straight.
    March,
    /// Two armies milling about on curving paths, fighting hard.
    Battle,
    /// Nothing moves.
    Idle,
    /// Two armies advancing on each other in straight lines (turning now
    /// and then) and exchanging fire.
    Advance,
}

/// One workload: what the units do, how long, the link in each direction,
/// and how the server replicates.
pub struct Scenario {
    pub name: &'static str,
    kind: Kind,
    pub units: usize,
    /// Side of the square field the units start in, metres.
    field_m: f64,
    pub ticks: u64,
    pub hz: u64,
    pub down: LinkConditions,
    pub up: LinkConditions,
    /// Tracks from a `DeadReckoner` (else every unit as a still picture each tick).
    pub dead_reckoning: bool,
    /// The client's byte budget, if any.
    pub budget_kbps: Option<f64>,
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
    field_m: f64,
    dt: f64,
}

impl World {
    fn new(s: &Scenario, seed: u64) -> Self {
        let mut w = Self {
            rng: SplitMix64::new(seed),
            units: BTreeMap::new(),
            next_id: 1,
            kind: s.kind,
            field_m: s.field_m,
            dt: 1.0 / s.hz as f64,
        };
        for _ in 0..s.units {
            w.spawn();
        }
        w
    }

    fn spawn(&mut self) {
        let r = &mut self.rng;
        let owner = r.below(2);
        let f = self.field_m;
        let (x, y, heading, speed, turn) = match self.kind {
            // Columns marching in one of 8 directions.
            Kind::March => (
                r.next_f64() * f,
                r.next_f64() * f,
                (r.below(8) as f64) * TAU / 8.0,
                5.0,
                0.0,
            ),
            // Two armies in one field; most units move on curving paths.
            Kind::Battle => {
                let moving = r.chance(0.8);
                (
                    r.next_f64() * f + owner as f64 * 200.0,
                    r.next_f64() * f,
                    r.next_f64() * TAU,
                    if moving {
                        2.0 + r.next_f64() * 6.0
                    } else {
                        0.0
                    },
                    (r.next_f64() - 0.5) * 0.6,
                )
            }
            Kind::Idle => (r.next_f64() * f, r.next_f64() * f, 0.0, 0.0, 0.0),
            Kind::Advance => (
                r.next_f64() * f,
                r.next_f64() * f,
                owner as f64 * TAU / 2.0 + (r.next_f64() - 0.5),
                2.0 + r.next_f64() * 4.0,
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
    fn step(&mut self) -> Vec<UnitId> {
        let dt = self.dt;
        let mut dead = Vec::new();
        let fighting = matches!(self.kind, Kind::Battle | Kind::Advance);
        let ids: Vec<UnitId> = if fighting {
            self.units.keys().copied().collect()
        } else {
            Vec::new()
        };
        // (chance per tick) of: a new turn rate or heading, a new state, a
        // new target, being hit.
        let (turn, state, target, hit) = match self.kind {
            Kind::Battle => (0.02, 0.01, 0.02, 0.1),
            Kind::Advance => (0.005, 0.005, 0.02, 0.2),
            Kind::March | Kind::Idle => (0.0, 0.0, 0.0, 0.0),
        };
        for (&id, u) in self.units.iter_mut() {
            u.heading += u.turn * dt;
            u.x += u.heading.cos() * u.speed * dt;
            u.y += u.heading.sin() * u.speed * dt;
            if !fighting {
                continue;
            }
            let r = &mut self.rng;
            if r.chance(turn) {
                if self.kind == Kind::Battle {
                    u.turn = (r.next_f64() - 0.5) * 0.6;
                } else {
                    u.heading += r.next_f64() - 0.5;
                }
            }
            if r.chance(state) {
                u.state = UnitState(r.below(4) as u8);
            }
            if r.chance(target) {
                u.target = Some(ids[r.below(ids.len() as u64) as usize]);
            }
            if r.chance(hit) {
                // A battle's close combat hits hard; an advance's long-range fire lightly.
                u.health -= match self.kind {
                    Kind::Advance => 1.0 + r.next_f64() as f32 * 4.0,
                    _ => 5.0 + r.next_f64() as f32 * 20.0,
                };
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

    /// The unit as the server's simulation hands it to replication: its
    /// position to the centimetre and its velocity for the next tick.
    fn sample(&self, id: UnitId) -> UnitSample {
        let u = &self.units[&id];
        let dt = self.dt;
        let heading = u.heading + u.turn * dt;
        let cm = u.speed * dt * 100.0;
        UnitSample {
            owner: u.owner,
            kind: 1,
            position: WorldPos::from_metres(u.x, u.y),
            velocity: Velocity::from_cm_per_tick(heading.cos() * cm, heading.sin() * cm),
            health: u.health,
            state: u.state,
            target: u.target,
        }
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
    pub dead_reckoning: bool,
    pub budget_kbps: Option<f64>,
    pub bytes_per_moving_unit: Option<f64>,
    pub kbps: f64,
    pub naive_bytes_per_moving_unit: Option<f64>,
    pub naive_kbps: f64,
    pub join_bytes: usize,
    pub join_ticks: u64,
    pub messages: u64,
    pub resends: u64,
    pub deferred: u64,
    pub records_per_tick: f64,
    pub bytes_per_record: Option<f64>,
    pub anchors_per_tick: f64,
    pub error_cm_max: f64,
    pub error_cm_p99: f64,
    pub max_stale_ticks: u64,
    pub budget_overshoot_bytes: i64,
    pub max_second_kbps: f64,
    pub settle_ticks: u64,
    pub converged: bool,
}

fn naive_bytes(world: &World, moved: &[UnitId], tick: u64) -> usize {
    let mut by_sector: BTreeMap<SectorId, Vec<NaiveUnit>> = BTreeMap::new();
    for &id in moved {
        let q = quantize(&world.sample(id));
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

/// The server and client halves joined by two modelled links.
struct Link {
    sender: DeltaSender,
    receiver: DeltaReceiver,
    budget: Option<ByteBudget>,
    down: LinkModel<Vec<u8>>,
    up: LinkModel<Vec<u8>>,
}

impl Link {
    /// One tick of sending, delivering and acknowledging; returns bytes sent.
    fn exchange(&mut self, tick: u64) -> usize {
        let updates = match self.budget.as_mut() {
            Some(b) => {
                b.refill();
                self.sender.write_updates_within(tick, b)
            }
            None => self.sender.write_updates(tick),
        };
        let mut sent = 0;
        for u in updates {
            let b = encode_server(&ServerMessage::UnitUpdate(u)).expect("encodes");
            sent += b.len();
            self.down.send(tick, b);
        }
        for b in self.down.deliver(tick) {
            if let Ok(ServerMessage::UnitUpdate(u)) = decode_server(&b) {
                self.receiver
                    .receive(&u)
                    .expect("a correct sender's update applies");
            }
        }
        for ack in self.receiver.take_acks() {
            self.up.send(
                tick,
                encode_client(&ClientMessage::UpdateAck(ack)).expect("encodes"),
            );
        }
        for b in self.up.deliver(tick) {
            if let Ok(ClientMessage::UpdateAck(a)) = decode_client(&b) {
                self.sender.receive_ack(&a);
            }
        }
        sent
    }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Runs one scenario with a seed; equal seeds give equal reports.
pub fn run(s: &Scenario, seed: u64) -> Report {
    let mut world = World::new(s, seed);
    let mut reckoner = DeadReckoner::default();
    let mut link = Link {
        sender: DeltaSender::default(),
        receiver: DeltaReceiver::default(),
        budget: s.budget_kbps.map(|k| ByteBudget::from_kbps(k, s.hz as f64)),
        down: LinkModel::new(s.down, seed ^ 1),
        up: LinkModel::new(s.up, seed ^ 2),
    };
    let (mut bytes, mut join_bytes, mut naive, mut moving_pairs) = (0usize, 0usize, 0usize, 0u64);
    let mut last: BTreeMap<UnitId, WorldPos> = BTreeMap::new();
    // True positions of the last few ticks, for the error at the render tick.
    let mut truth: VecDeque<HashMap<UnitId, WorldPos>> = VecDeque::new();
    let mut errors: Vec<f64> = Vec::new();
    let mut error_max = 0.0f64;
    let mut max_stale = 0u64;
    let mut changed_at: HashMap<UnitId, VecDeque<u64>> = HashMap::new();
    let (mut cum_bytes, mut overshoot) = (0i64, i64::MIN);
    let mut window: VecDeque<usize> = VecDeque::new();
    let mut max_window = 0usize;
    let per_tick = link.budget.map_or(0, |b| b.bytes_per_tick()) as i64;
    // The join: at least WARMUP_TICKS, and until the client holds every unit
    // (under a budget the whole units take longer to arrive).
    let mut tick = 0u64;
    while tick < WARMUP_TICKS
        || (tick < MAX_JOIN_TICKS && link.receiver.visible_count() < world.units.len())
    {
        tick += 1;
        tick_world(
            &mut world,
            &mut reckoner,
            &mut link,
            s,
            tick,
            &mut last,
            &mut truth,
            &mut changed_at,
        );
        let sent = link.exchange(tick);
        join_bytes += sent;
        cum_bytes += sent as i64;
    }
    let join_ticks = tick;
    let anchors_before_measure = reckoner.stats().anchors;
    let records = |l: &Link| {
        let st = l.sender.stats();
        st.full_units + st.delta_units + st.removals
    };
    let records_before_measure = records(&link);
    for _ in 0..s.ticks {
        tick += 1;
        let moved = tick_world(
            &mut world,
            &mut reckoner,
            &mut link,
            s,
            tick,
            &mut last,
            &mut truth,
            &mut changed_at,
        );
        let sent = link.exchange(tick);
        bytes += sent;
        naive += naive_bytes(&world, &moved, tick);
        moving_pairs += moved.len() as u64;
        cum_bytes += sent as i64;
        overshoot = overshoot.max(cum_bytes - per_tick * tick as i64);
        debug_assert!(tick > join_ticks);
        window.push_back(sent);
        if window.len() > s.hz as usize {
            window.pop_front();
        }
        max_window = max_window.max(window.iter().sum());
        // What the client draws at the render tick, against the truth then.
        let render = tick - RENDER_DELAY_TICKS;
        if let Some(then) = truth
            .front()
            .filter(|_| truth.len() > RENDER_DELAY_TICKS as usize)
        {
            for (&id, &p) in then {
                if let Some(d) = link.receiver.position_at(id, render) {
                    let e = ((d.x - p.x) as f64).hypot((d.y - p.y) as f64);
                    error_max = error_max.max(e);
                    errors.push(e);
                }
            }
        }
        // How long units have been waiting for news: since the first change
        // of their server state after the state the client holds.
        for (id, changes) in &mut changed_at {
            if link.receiver.unit(*id) == link.sender.unit(*id) {
                changes.clear(); // the client has it (perhaps a change that was undone)
                continue;
            }
            let heard = link.receiver.updated_at(*id).unwrap_or(0);
            while changes.front().is_some_and(|&t| t <= heard) {
                changes.pop_front();
            }
            if let Some(&first) = changes.front().filter(|_| tick > join_ticks + s.hz) {
                max_stale = max_stale.max(tick - first);
            }
        }
    }
    let anchors = reckoner.stats().anchors - anchors_before_measure;
    let measured_records = records(&link) - records_before_measure;
    // Let the link deliver what is outstanding, with the world frozen.
    let mut settle_ticks = 0;
    while !link.sender.is_settled() && settle_ticks < 5000 {
        tick += 1;
        settle_ticks += 1;
        link.exchange(tick);
    }
    let want: BTreeMap<_, _> = link.sender.visible_units().collect();
    let got: BTreeMap<_, _> = link.receiver.units().collect();
    let seconds = s.ticks as f64 / s.hz as f64;
    let per = |b: usize| (moving_pairs > 0).then(|| b as f64 / moving_pairs as f64);
    let round = |v: f64| (v * 100.0).round() / 100.0;
    Report {
        scenario: s.name,
        units: s.units,
        moving: (moving_pairs as f64 / s.ticks as f64).round() as usize,
        hz: s.hz,
        ticks: s.ticks,
        loss: s.down.loss,
        dead_reckoning: s.dead_reckoning,
        budget_kbps: s.budget_kbps,
        bytes_per_moving_unit: per(bytes).map(round),
        kbps: round(bytes as f64 * 8.0 / seconds / 1000.0),
        naive_bytes_per_moving_unit: per(naive).map(round),
        naive_kbps: round(naive as f64 * 8.0 / seconds / 1000.0),
        join_bytes,
        join_ticks,
        messages: link.sender.stats().messages,
        resends: link.sender.stats().resends,
        deferred: link.sender.stats().deferred,
        records_per_tick: round(measured_records as f64 / s.ticks as f64),
        bytes_per_record: (measured_records > 0)
            .then(|| round(bytes as f64 / measured_records as f64)),
        anchors_per_tick: round(anchors as f64 / s.ticks as f64),
        error_cm_max: round(error_max),
        error_cm_p99: round(quantile(&mut errors, 0.99)),
        max_stale_ticks: max_stale,
        budget_overshoot_bytes: if per_tick > 0 { overshoot } else { 0 },
        max_second_kbps: round(max_window as f64 * 8.0 / 1000.0),
        settle_ticks,
        converged: link.sender.is_settled() && want == got,
    }
}

/// Steps the world one tick and hands every unit to the sender; returns
/// the units whose position changed. Records the true positions (`truth`)
/// and the ticks at which each unit's replicated state changed (`changed_at`).
#[allow(clippy::too_many_arguments)] // the report's state, passed explicitly
fn tick_world(
    world: &mut World,
    reckoner: &mut DeadReckoner,
    link: &mut Link,
    s: &Scenario,
    tick: u64,
    last: &mut BTreeMap<UnitId, WorldPos>,
    truth: &mut VecDeque<HashMap<UnitId, WorldPos>>,
    changed_at: &mut HashMap<UnitId, VecDeque<u64>>,
) -> Vec<UnitId> {
    for id in world.step() {
        link.sender.remove_unit(id);
        reckoner.forget(id);
        last.remove(&id);
        changed_at.remove(&id);
    }
    let mut moved = Vec::new();
    let mut now = HashMap::with_capacity(world.units.len());
    for &id in world.units.keys() {
        let sample = world.sample(id);
        let q = if s.dead_reckoning {
            reckoner.observe(id, tick, &sample)
        } else {
            quantize(&sample)
        };
        if last
            .insert(id, sample.position)
            .is_some_and(|p| p != sample.position)
        {
            moved.push(id);
        }
        now.insert(id, sample.position);
        if link.sender.unit(id) != Some(&q) {
            changed_at.entry(id).or_default().push_back(tick);
        }
        link.sender.set_unit(id, q);
    }
    truth.push_back(now);
    while truth.len() > RENDER_DELAY_TICKS as usize + 1 {
        truth.pop_front();
    }
    moved
}

/// The report's scenarios: march, battle, idle, lossy, battle without dead
/// reckoning; advance (5,000 units) without a budget, the same under a
/// 256 kbps budget (`budget`), and the 5,000-unit battle under that budget
/// (`budget-battle`: far more change than fits, to show how it degrades).
pub fn standard_scenarios() -> Vec<Scenario> {
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
    let base = |name, kind, units, field_m, ticks| Scenario {
        name,
        kind,
        units,
        field_m,
        ticks,
        hz: 20,
        down: clean,
        up: clean,
        dead_reckoning: true,
        budget_kbps: None,
    };
    vec![
        base("march", Kind::March, 1000, 4000.0, 600),
        base("battle", Kind::Battle, 1000, 1500.0, 600),
        base("idle", Kind::Idle, 10_000, 20_000.0, 200),
        Scenario {
            down: bad,
            up: bad,
            ..base("lossy", Kind::Battle, 1000, 1500.0, 600)
        },
        Scenario {
            dead_reckoning: false,
            ..base("battle-nodr", Kind::Battle, 1000, 1500.0, 600)
        },
        base("advance", Kind::Advance, 5000, 3000.0, 600),
        Scenario {
            budget_kbps: Some(256.0),
            ..base("budget", Kind::Advance, 5000, 3000.0, 600)
        },
        Scenario {
            budget_kbps: Some(256.0),
            ..base("budget-battle", Kind::Battle, 5000, 3000.0, 600)
        },
        // A phone on the mobile profile watching a battle: its budget and
        // rate (the report's ticks are its updates, so 10 ticks = 1 s).
        Scenario {
            hz: u64::from(LinkProfile::MOBILE_HZ),
            budget_kbps: Some(f64::from(LinkProfile::MOBILE_KBPS)),
            ..base("mobile", Kind::Battle, MOBILE_UNITS, 1500.0, 300)
        },
    ]
}

/// Units in view of the `mobile` scenario's phone.
const MOBILE_UNITS: usize = 400;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: bandwidth [--json] [--scenario march|battle|idle|lossy|battle-nodr|advance|budget|budget-battle|mobile] [--seed N]"
        );
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
        "{:<13} {:>6} {:>6} {:>5} {:>5} {:>7} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} {:>7} {:>6} {:>9}",
        "scenario",
        "units",
        "moving",
        "loss",
        "DR",
        "budget",
        "B/moving",
        "kbps",
        "naive B",
        "naive kbps",
        "join KB",
        "err max",
        "err p99",
        "stale",
        "converged"
    );
    for r in &reports {
        println!(
            "{:<13} {:>6} {:>6} {:>5.2} {:>5} {:>7} {:>9} {:>8.1} {:>8} {:>9.1} {:>8.1} {:>7.1} {:>7.1} {:>6} {:>9}",
            r.scenario,
            r.units,
            r.moving,
            r.loss,
            r.dead_reckoning,
            r.budget_kbps.map_or("-".into(), |b| format!("{b:.0}")),
            opt(r.bytes_per_moving_unit),
            r.kbps,
            opt(r.naive_bytes_per_moving_unit),
            r.naive_kbps,
            r.join_bytes as f64 / 1024.0,
            r.error_cm_max,
            r.error_cm_p99,
            r.max_stale_ticks,
            r.converged
        );
    }
    if json {
        for r in &reports {
            println!("{}", serde_json::to_string(r).expect("report serializes"));
        }
    }
}
