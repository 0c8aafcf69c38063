//! Criterion benches: encoding and decoding a 1,000-unit update (per unit),
//! the server's per-client replicate step (per changed unit per client), one
//! tick of a client whose whole view is backlog, state verification, and
//! sector lookups.
//!
//! `cargo bench -p galaxy_protocol --bench protocol`

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use galaxy_protocol::*;

const UNITS: u64 = 1000;

fn unit(i: u64, tick: u64) -> QuantizedUnit {
    // 1,000 units in one sector walking at ~5 m/s (25 cm per tick).
    let x = (i % 40) as i64 * 2_000 + tick as i64 * 25;
    let y = (i / 40) as i64 * 2_000 + tick as i64 * 18;
    quantize(&UnitSample {
        owner: i % 4,
        kind: 1,
        position: WorldPos::new(x, y),
        velocity: Velocity::ZERO,
        health: 1000.0 - (tick % 50) as f32,
        state: UnitState::MOVING,
        target: None,
    })
}

/// A sender whose client acknowledged tick 1, ready to encode tick 4.
fn warmed_sender() -> DeltaSender {
    let mut s = DeltaSender::default();
    for i in 0..UNITS {
        s.set_unit(i, unit(i, 1));
    }
    for u in s.write_updates(1) {
        s.receive_ack(&UpdateAck {
            latest: u.sequence,
            mask: 0,
        });
    }
    s
}

fn encode_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("unit_update_1000");
    g.throughput(Throughput::Elements(UNITS));
    g.bench_function("sender_encode_per_unit", |b| {
        b.iter_batched(
            || {
                let mut s = warmed_sender();
                for i in 0..UNITS {
                    s.set_unit(i, unit(i, 4));
                }
                s
            },
            |mut s| {
                let msgs = s.write_updates(4);
                let mut out = Vec::with_capacity(8 * 1200);
                for m in msgs {
                    codec::encode_server_into(&ServerMessage::UnitUpdate(m), &mut out).unwrap();
                }
                out
            },
            BatchSize::SmallInput,
        )
    });
    // The bytes of tick 4 against the tick-1 baseline, and a receiver that has tick 1.
    let mut s = warmed_sender();
    let mut base = DeltaReceiver::default();
    let mut s0 = DeltaSender::default();
    for i in 0..UNITS {
        s0.set_unit(i, unit(i, 1));
    }
    for u in s0.write_updates(1) {
        base.receive(&u).unwrap();
    }
    for i in 0..UNITS {
        s.set_unit(i, unit(i, 4));
    }
    let packets: Vec<Vec<u8>> = s
        .write_updates(4)
        .into_iter()
        .map(|m| encode_server(&ServerMessage::UnitUpdate(m)).unwrap())
        .collect();
    let total: usize = packets.iter().map(Vec::len).sum();
    eprintln!(
        "1,000 moving units at tick 4: {} packets, {} bytes ({:.2} B/unit)",
        packets.len(),
        total,
        total as f64 / UNITS as f64
    );
    g.bench_function("codec_decode_per_unit", |b| {
        b.iter(|| {
            for p in &packets {
                black_box(decode_server::<QuantizedUnit>(black_box(p)).unwrap());
            }
        })
    });
    g.bench_function("decode_and_apply_per_unit", |b| {
        b.iter_batched(
            || {
                let mut r = DeltaReceiver::default();
                for u in s0_updates() {
                    r.receive(&u).unwrap();
                }
                r
            },
            |mut r| {
                for p in &packets {
                    if let Ok(ServerMessage::UnitUpdate(u)) = decode_server(p) {
                        r.receive(&u).unwrap();
                    }
                }
                r
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn s0_updates() -> Vec<UnitUpdate> {
    let mut s = DeltaSender::default();
    for i in 0..UNITS {
        s.set_unit(i, unit(i, 1));
    }
    s.write_updates(1)
}

/// One client's replicate state: a sender watching `VISIBLE` dead-reckoned
/// units, its 256 kbps budget, and the acks that come back two ticks later.
struct ReplicatedClient {
    sender: DeltaSender,
    budget: ByteBudget,
    outbox: Vec<Vec<u8>>,
    in_flight: std::collections::VecDeque<Option<UpdateAck>>,
}

const VISIBLE: u64 = 1000;

/// The dead-reckoned track of unit `i` as last turned at `tick`: walking at
/// one of a few headings, anchored where it turned.
fn track(i: u64, tick: u64) -> QuantizedUnit {
    let heading = (i + tick) % 8;
    let (vx, vy) = [
        (4, 0),
        (3, 3),
        (0, 4),
        (-3, 3),
        (-4, 0),
        (-3, -3),
        (0, -4),
        (3, -3),
    ][heading as usize];
    quantize_at(
        &UnitSample {
            owner: i % 4,
            kind: 1,
            position: WorldPos::new(
                (i % 40) as i64 * 2_000 + tick as i64 * 7,
                (i / 40) as i64 * 2_000,
            ),
            velocity: Velocity::new(vx * 100, vy * 100),
            health: 1000.0 - (tick % 97) as f32,
            state: UnitState::MOVING,
            target: None,
        },
        tick,
    )
}

impl ReplicatedClient {
    fn new() -> Self {
        let mut c = Self {
            sender: DeltaSender::default(),
            budget: ByteBudget::from_kbps(256.0, 20.0),
            outbox: Vec::new(),
            in_flight: std::collections::VecDeque::new(),
        };
        for i in 0..VISIBLE {
            c.sender.set_unit(i, track(i, 0));
        }
        // Settle: send everything and acknowledge it, so the bench starts
        // from the steady state of a battle in view.
        for tick in 1..=200 {
            c.step(tick, 0);
        }
        c
    }

    /// One server tick for this client: `changed` units turned, then the
    /// budgeted write; acks arrive two ticks after their message.
    fn step(&mut self, tick: u64, changed: u64) {
        for k in 0..changed {
            let i = (tick * changed + k) % VISIBLE;
            self.sender.set_unit_weighted(i, track(i, tick), 1.0);
        }
        self.budget.refill();
        self.outbox.clear();
        self.sender
            .write_messages_within(tick, &mut self.budget, &mut self.outbox);
        // Sequences count up from 0, one per message, so the last one sent
        // is `messages - 1`; the client acks everything (no loss here).
        let sent = self.sender.stats().messages;
        let acks = if self.outbox.is_empty() {
            None
        } else {
            Some(UpdateAck {
                latest: (sent - 1) as Sequence,
                mask: u64::MAX,
            })
        };
        self.in_flight.push_back(acks);
        if self.in_flight.len() > 2
            && let Some(ack) = self.in_flight.pop_front().flatten()
        {
            self.sender.receive_ack(&ack);
        }
    }
}

fn replicate_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("replicate_step");
    for (clients, changed) in [(1u64, 10u64), (1, 100), (1, 1000), (10, 100)] {
        let mut all: Vec<ReplicatedClient> =
            (0..clients).map(|_| ReplicatedClient::new()).collect();
        let mut tick = 200;
        g.throughput(Throughput::Elements(clients * changed));
        g.bench_function(
            format!("clients_{clients}_changed_{changed}_of_{VISIBLE}"),
            |b| {
                b.iter(|| {
                    tick += 1;
                    for client in &mut all {
                        client.step(tick, changed);
                    }
                    all.iter().map(|c| c.outbox.len()).sum::<usize>()
                })
            },
        );
    }
    g.finish();
}

/// Units in view of a client that never acknowledges (a view change into a
/// crowded region, or a hostile client): the whole view stays in the backlog.
const BACKLOG: u64 = 20_000;

/// One budgeted tick of a sender whose backlog is the whole view: what one
/// client costs the server per tick when nothing it is sent is ever acked.
fn replicate_backlog(c: &mut Criterion) {
    let mut g = c.benchmark_group("replicate_backlog");
    let mut sender = DeltaSender::default();
    let mut budget = ByteBudget::from_kbps(256.0, 20.0);
    let mut outbox = Vec::new();
    let mut tick = 0;
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("never_acked_{BACKLOG}_moving"), |b| {
        b.iter(|| {
            tick += 1;
            for i in 0..BACKLOG {
                sender.set_unit(i, track(i, tick));
            }
            budget.refill();
            outbox.clear();
            sender.write_messages_within(tick, &mut budget, &mut outbox);
            outbox.len()
        })
    });
    // A hostile client's pattern: its view hops to another 1,000-unit
    // battle every 7 ticks (under the server's view rate limit), it never
    // acks, and every unit in view changes every tick.
    let mut sender = DeltaSender::default();
    let mut tick = 0;
    g.bench_function("never_acked_view_hopping", |b| {
        b.iter(|| {
            tick += 1;
            let battle = (tick / 7) % 50;
            if tick % 7 == 0 && battle > 0 {
                for i in (battle - 1) * 1000..battle * 1000 {
                    sender.remove_unit(i);
                }
            }
            for i in battle * 1000..(battle + 1) * 1000 {
                sender.set_unit(i, track(i, tick));
            }
            budget.refill();
            outbox.clear();
            sender.write_messages_within(tick, &mut budget, &mut outbox);
            outbox.len()
        })
    });
    g.finish();
}

/// State verification: what one check of a client's 1,000-unit replica
/// digest costs the server (`DeltaSender::verify`), once a second per client.
fn verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    let (mut tx, mut rx) = (DeltaSender::default(), DeltaReceiver::default());
    for i in 0..UNITS {
        tx.set_unit(i, unit(i, 1));
    }
    for u in tx.write_updates(1) {
        rx.receive(&u).unwrap();
    }
    for ack in rx.take_acks() {
        tx.receive_ack(&ack);
    }
    let digest = rx.digest().unwrap();
    assert_eq!(tx.verify(&digest), Verification::Match);
    g.throughput(Throughput::Elements(UNITS));
    g.bench_function("client_digest_1000", |b| b.iter(|| rx.digest()));
    g.bench_function("server_check_1000", |b| {
        b.iter(|| tx.verify(black_box(&digest)))
    });
    g.finish();
}

fn sectors(c: &mut Criterion) {
    let mut g = c.benchmark_group("sector");
    let positions: Vec<WorldPos> = (0..1024i64)
        .map(|i| {
            WorldPos::new(
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15u64 as i64),
                i * -7_919_000_003,
            )
        })
        .collect();
    g.throughput(Throughput::Elements(positions.len() as u64));
    g.bench_function("containing_scale0", |b| {
        b.iter(|| {
            positions
                .iter()
                .map(|&p| SectorId::at(black_box(p)).x)
                .fold(0i64, i64::wrapping_add)
        })
    });
    g.bench_function("containing_scale5", |b| {
        b.iter(|| {
            positions
                .iter()
                .filter_map(|&p| SectorId::containing(black_box(p), 5))
                .map(|s| s.x)
                .fold(0i64, i64::wrapping_add)
        })
    });
    g.bench_function("neighbours", |b| {
        b.iter(|| {
            positions
                .iter()
                .map(|&p| SectorId::at(p).neighbours().count())
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("covering_view_10x10km", |b| {
        let view = WorldRect::around(WorldPos::new(123_456_789, -987_654_321), 500_000);
        b.iter(|| SectorId::covering(black_box(view), 0).unwrap().count())
    });
    g.finish();
}

criterion_group!(
    benches,
    encode_decode,
    replicate_step,
    replicate_backlog,
    verify,
    sectors
);
criterion_main!(benches);
