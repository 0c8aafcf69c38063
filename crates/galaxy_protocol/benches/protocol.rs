//! Criterion benches: encoding and decoding a 1,000-unit update (per unit)
//! and sector lookups.
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
                    codec::encode_into(&NetworkMessage::UnitUpdate(m), &mut out).unwrap();
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
        .map(|m| encode(&NetworkMessage::UnitUpdate(m)).unwrap())
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
                black_box(decode(black_box(p)).unwrap());
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
                    if let Ok(NetworkMessage::UnitUpdate(u)) = decode(p) {
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

criterion_group!(benches, encode_decode, sectors);
criterion_main!(benches);
