//! Criterion bench of one simulation tick for a world laid out like the
//! load test: `galaxy_sim::testbed`'s battles of 1,000 units, after a
//! warm-up in which most units come to walk, chase or shoot.
//!
//! `cargo bench -p galaxy_sim --bench step`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use galaxy_sim::World;
use galaxy_sim::testbed::battle_world;

/// A world of `battles` battles after `warm` ticks of fighting.
fn world(battles: u64, warm: u64) -> World {
    let threads = std::env::var("SIM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    battle_world(battles, warm, threads).0
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
