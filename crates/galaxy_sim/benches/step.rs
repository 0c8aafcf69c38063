//! Criterion bench of one simulation tick for a world laid out like the
//! load test: battles of 1,000 units (two armies 60 m apart, one battle
//! every 8 km). Every two seconds a third of one army in each battle is sent
//! into the other and the dead are replaced (as the load test's players and
//! respawns do), so after the warm-up most units walk, chase or shoot.
//!
//! `cargo bench -p galaxy_sim --bench step`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use galaxy_protocol::{CompressedCommand, UnitId, UnitIdList, WorldPos};
use galaxy_sim::{SimConfig, World};

const ROW: i64 = 23;

fn slot(b: u64, side: u64, i: i64) -> WorldPos {
    let base = WorldPos::new((b % 16) as i64 * 800_000, (b / 16) as i64 * 800_000);
    let oy = base.y + side as i64 * (ROW * 200 + 6_000);
    WorldPos::new(base.x + (i % ROW) * 200, oy + (i / ROW) * 200)
}

/// The battles' armies: (battle, side, unit ids by slot).
struct Battles(Vec<(u64, u64, Vec<UnitId>)>);

impl Battles {
    fn new(w: &mut World, battles: u64) -> Self {
        let mut armies = Vec::new();
        for b in 0..battles {
            for side in 0..2u64 {
                let ids = (0..500i64)
                    .map(|i| w.spawn_unit(b * 2 + side + 1, (i % 3) as u8, slot(b, side, i)))
                    .collect();
                armies.push((b, side, ids));
            }
        }
        Self(armies)
    }

    /// Replaces the dead and sends a third of each army 0 into army 1.
    fn orders(&mut self, w: &mut World, round: u64) {
        for (b, side, ids) in self.0.iter_mut() {
            for (i, id) in ids.iter_mut().enumerate() {
                if w.unit(*id).is_none() {
                    *id =
                        w.spawn_unit(*b * 2 + *side + 1, (i % 3) as u8, slot(*b, *side, i as i64));
                }
            }
            if *side == 0 {
                let movers: Vec<UnitId> = ids
                    .iter()
                    .copied()
                    .filter(|id| (id + round).is_multiple_of(3))
                    .collect();
                let to = slot(*b, 1, ((round * 7) % 400) as i64);
                let units = UnitIdList::from_ids(movers).expect("ids");
                w.apply_command(*b * 2 + 1, &CompressedCommand::AttackMove { units, to });
            }
        }
    }
}

/// A world of `battles` battles after `warm` ticks of fighting.
fn world(battles: u64, warm: u64) -> World {
    let threads = std::env::var("SIM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let mut w = World::new(SimConfig {
        threads,
        ..SimConfig::default()
    });
    let mut armies = Battles::new(&mut w, battles);
    let mut changes = Vec::new();
    for t in 0..warm {
        if t % 40 == 0 {
            armies.orders(&mut w, t / 40);
        }
        w.step();
        let _ = w.take_changes(&mut changes);
    }
    w
}

fn step(c: &mut Criterion) {
    let mut g = c.benchmark_group("world_step");
    g.sample_size(10);
    for battles in [10u64, 100] {
        let units = battles * 1000;
        g.throughput(Throughput::Elements(units));
        let warmed = world(battles, 300);
        let mut changes = Vec::new();
        // A tick, and what a replicator then asks: what changed.
        g.bench_function(format!("{units}_units_per_unit"), |b| {
            b.iter_batched_ref(
                || warmed.clone(),
                |w| {
                    w.step();
                    let _ = w.take_changes(&mut changes);
                },
                BatchSize::LargeInput,
            )
        });
        // What a replicator then reads: the samples of a tick's changes.
        let mut stepped = warmed.clone();
        stepped.step();
        let _ = stepped.take_changes(&mut changes);
        g.bench_function(format!("{units}_units_samples_of_changes"), |b| {
            b.iter(|| {
                let mut sum = 0i64;
                stepped.samples_of(&changes, |_, s| sum += s.map_or(0, |s| s.position.x));
                sum
            })
        });
    }
    g.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
