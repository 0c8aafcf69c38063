//! The byte budget, the priority order and dead reckoning never break
//! convergence, the budget holds within one message, and nothing starves.

use std::collections::BTreeMap;

use galaxy_protocol::link_model::LinkConditions;
use galaxy_protocol::sender::DeltaConfig;
use galaxy_protocol::*;
use proptest::prelude::*;

use crate::delta_healing::{Harness, World};

fn lossy(loss: f64, latency: u64, jitter: u64) -> LinkConditions {
    LinkConditions {
        loss,
        duplicate: loss / 5.0,
        latency_ticks: latency,
        jitter_ticks: jitter,
    }
}

fn walker(x: i64, vx: i32, health: f32) -> UnitSample {
    UnitSample {
        owner: 1,
        kind: 0,
        position: WorldPos::new(x, 0),
        velocity: Velocity::new(vx, 0),
        health,
        state: UnitState::MOVING,
        target: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random dead-reckoned worlds over random bad links under random
    /// budgets: every state the receiver records is what the sender meant
    /// for that tick, the bytes never exceed the budget by more than one
    /// message (checked by the harness every tick), and once the world
    /// stands still the receiver holds exactly the sender's units.
    #[test]
    fn budgeted_dead_reckoned_updates_converge(
        seed in any::<u64>(),
        units in 1u64..120,
        ticks in 10u64..150,
        loss in 0.0f64..0.4,
        ack_loss in 0.0f64..0.4,
        latency in 0u64..4,
        jitter in 0u64..4,
        per_tick in 40usize..3000,
    ) {
        let mut h = Harness::new(
            DeltaConfig::default(),
            lossy(loss, latency, jitter),
            lossy(ack_loss, latency, jitter),
            seed,
        )
        .with_budget(ByteBudget::per_tick(per_tick));
        let mut world = World::new(seed, units);
        for _ in 0..ticks {
            world.step(&mut h.sender);
            h.step();
        }
        prop_assert!(h.settle(20_000), "never settled: {} units unacked", h.sender.unsettled_units());
        prop_assert!(h.converged());
        prop_assert!(h.checked > 0);
    }

    /// Every unit changes every tick and the budget takes only a few per
    /// tick: each is still sent within a bounded number of ticks, whatever
    /// its weight (the accumulator lets waiting units catch up).
    #[test]
    fn nothing_starves_under_a_tight_budget(
        n in 5u64..60,
        per_tick in 80usize..400,
        weights in proptest::collection::vec(0.2f32..5.0, 60),
    ) {
        let mut h = Harness::new(
            DeltaConfig::default(),
            LinkConditions::PERFECT,
            LinkConditions::PERFECT,
            1,
        )
        .with_budget(ByteBudget::per_tick(per_tick));
        let mut last_sent: BTreeMap<UnitId, u64> = BTreeMap::new();
        let w = &weights[..n as usize];
        let ratio = w.iter().cloned().fold(0.0f32, f32::max) / w.iter().cloned().fold(f32::MAX, f32::min);
        // At least one message header and one record (< 16 bytes) fit per 16 bytes.
        let per_round = (per_tick / 16).max(1) as f32;
        let bound = ((n as f32 / per_round).ceil() * (ratio + 1.0)).ceil() as u64 + 10;
        for t in 1..=bound * 2 {
            for id in 0..n {
                // A unit standing still whose health drops every tick:
                // always something new (the bound keeps it above 0).
                let s = walker(id as i64 * 100, 0, 30_000.0 - t as f32);
                h.sender.set_unit_weighted(id, quantize(&s), w[id as usize]);
            }
            for u in h.step() {
                for d in u.updates {
                    last_sent.insert(d.unit_id, t);
                }
            }
            if t > bound {
                for id in 0..n {
                    let waited = t - last_sent.get(&id).copied().unwrap_or(0);
                    prop_assert!(waited <= bound, "unit {id} waited {waited} ticks (bound {bound})");
                }
            }
        }
    }
}

#[test]
fn removals_go_first_then_by_weight() {
    let mut h = Harness::new(
        DeltaConfig::default(),
        LinkConditions::PERFECT,
        LinkConditions::PERFECT,
        1,
    );
    for id in 0..40u64 {
        h.sender
            .set_unit(id, quantize(&walker(id as i64 * 10, 0, 100.0)));
    }
    h.step();
    assert!(h.settle(10) && h.converged());
    // Now a tiny budget: ten units change (different weights) and two leave.
    let mut h = h.with_budget(ByteBudget::per_tick(30));
    for id in 0..10u64 {
        let s = walker(id as i64 * 10, 0, 50.0);
        h.sender
            .set_unit_weighted(id, quantize(&s), 1.0 + id as f32);
    }
    h.sender.remove_unit(30);
    h.sender.remove_unit(31);
    let first: Vec<UnitDelta> = h.step().into_iter().flat_map(|u| u.updates).collect();
    let ids: Vec<UnitId> = first.iter().map(|d| d.unit_id).collect();
    assert!(
        ids.contains(&30) && ids.contains(&31),
        "removals first: {ids:?}"
    );
    assert!(ids.len() < 12, "the budget held something back: {ids:?}");
    // Of the changed units, the heaviest went first.
    let changed: Vec<UnitId> = ids.iter().copied().filter(|&id| id < 10).collect();
    assert!(
        changed.iter().all(|&id| id >= 10 - changed.len() as u64),
        "{changed:?}"
    );
    // The rest follow on later ticks, and everything converges.
    assert!(h.settle(50));
    assert!(h.converged());
    assert!(h.sender.stats().deferred > 0);
}

#[test]
fn a_unit_walking_straight_costs_nothing_after_its_first_update() {
    let mut h = Harness::new(
        DeltaConfig::default(),
        LinkConditions {
            latency_ticks: 1,
            ..LinkConditions::PERFECT
        },
        LinkConditions {
            latency_ticks: 1,
            ..LinkConditions::PERFECT
        },
        1,
    );
    let mut reckoner = DeadReckoner::default();
    let mut bytes_after_join = 0;
    for t in 1..=200u64 {
        // 12.5 cm per tick east, rounded to the centimetre by the simulation.
        let x = (t as f64 * 12.5).round() as i64;
        let track = reckoner.observe(1, t, &walker(x, 200, 100.0));
        h.sender.set_unit(1, track);
        let before = h.bytes_down;
        h.step();
        if t > 5 {
            bytes_after_join += h.bytes_down - before;
        }
        // The client, drawing two ticks back, is within 5 cm of the truth.
        if t > 4 {
            let drawn = h.receiver.position_at(1, t - 2).expect("visible");
            let truth = ((t - 2) as f64 * 12.5).round() as i64;
            assert!(
                (drawn.x - truth).abs() <= 5 && drawn.y == 0,
                "tick {t}: {drawn:?}"
            );
        }
    }
    assert_eq!(bytes_after_join, 0);
    assert_eq!(reckoner.stats().anchors, 1);
}
