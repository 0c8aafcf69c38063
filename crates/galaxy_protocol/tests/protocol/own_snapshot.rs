//! A game's own snapshot (made with `unit_snapshot!`) goes through the same
//! machinery as `QuantizedUnit`: acked baselines, loss, duplication and
//! reordering, the byte budget, sector grouping. Every state the receiver
//! applies is checked against what the sender meant at that tick.

use galaxy_protocol::link_model::{LinkConditions, SplitMix64};
use galaxy_protocol::sender::DeltaConfig;
use galaxy_protocol::*;
use proptest::prelude::*;

use crate::delta_healing::Harness;

unit_snapshot! {
    /// A ship of some other game: a dead-reckoned track, two gauges, a
    /// mode, a target and a flag of its own.
    pub struct Ship {
        pub motion: Motion,
        pub hull: u16,
        pub shield: u16,
        pub mode: u8,
        pub target: Option<u64>,
        pub cloaked: bool,
    }
}

fn ship(rng: &mut SplitMix64, tick: u64, at: WorldPos) -> Ship {
    let moving = rng.chance(0.7);
    let velocity = if moving {
        Velocity::new(rng.below(800) as i32 - 400, rng.below(800) as i32 - 400)
    } else {
        Velocity::ZERO
    };
    Ship {
        motion: Motion::new(at, velocity, tick),
        hull: rng.below(1000) as u16,
        shield: rng.below(500) as u16,
        mode: rng.below(4) as u8,
        target: rng.chance(0.3).then(|| rng.below(200)),
        cloaked: rng.chance(0.1),
    }
}

/// Changes a few ships each tick, the way a game would.
fn churn(h: &mut Harness<Ship>, rng: &mut SplitMix64, ships: &mut [Ship], tick: u64) {
    for (id, s) in ships.iter_mut().enumerate() {
        match rng.below(10) {
            0 => {
                // A turn: a new track from where the old one put it.
                let at = s.motion.position_at(tick);
                s.motion = ship(rng, tick, at).motion;
            }
            1 => s.shield = s.shield.saturating_sub(rng.below(40) as u16),
            2 => s.hull = s.hull.wrapping_add(rng.below(5) as u16),
            3 => {
                s.mode = rng.below(4) as u8;
                s.target = rng.chance(0.5).then(|| rng.below(200));
            }
            4 => s.cloaked = !s.cloaked,
            _ => {}
        }
        h.sender.set_unit(id as u64, *s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Over a link losing, duplicating and reordering packets both ways,
    /// the receiver converges to exactly the sender's ships.
    #[test]
    fn a_game_snapshot_converges_over_a_bad_link(seed in any::<u64>(), loss in 0.0f64..0.3) {
        let link = LinkConditions {
            loss,
            duplicate: 0.05,
            latency_ticks: 1,
            jitter_ticks: 2,
        };
        let mut h: Harness<Ship> = Harness::new(DeltaConfig::default(), link, link, seed);
        let mut rng = SplitMix64::new(seed);
        let mut ships: Vec<Ship> = (0..120)
            .map(|i| ship(&mut rng, 0, WorldPos::new(i * 40_000, -i * 25_000)))
            .collect();
        for _ in 0..80 {
            let tick = h.tick + 1;
            churn(&mut h, &mut rng, &mut ships, tick);
            h.step();
        }
        // Ships leave and come back.
        for id in (0..120).step_by(7) {
            h.sender.remove_unit(id);
        }
        h.step();
        h.sender.set_unit(14, ships[14]);
        prop_assert!(h.settle(400), "did not settle");
        prop_assert!(h.converged());
        prop_assert!(h.checked > 1000, "only {} states checked", h.checked);
    }
}

/// Changed fields travel as deltas (one flag per field, then only what
/// changed), so a ship whose shield drops costs a few bytes, and a ship
/// on a straight track costs nothing.
#[test]
fn deltas_carry_only_what_changed() {
    let mut h: Harness<Ship> = Harness::new(
        DeltaConfig::default(),
        LinkConditions::PERFECT,
        LinkConditions::PERFECT,
        1,
    );
    let s = Ship {
        motion: Motion::new(WorldPos::new(0, 0), Velocity::new(160, 0), 1),
        hull: 900,
        shield: 300,
        mode: 1,
        target: None,
        cloaked: false,
    };
    h.sender.set_unit(5, s);
    h.step();
    h.step();
    h.step();
    assert!(h.sender.is_settled());
    // Walking its track: nothing to send.
    let before = h.bytes_down;
    for _ in 0..10 {
        h.step();
    }
    assert_eq!(h.bytes_down, before, "a ship on its track cost bytes");
    h.sender.set_unit(5, Ship { shield: 290, ..s });
    let updates = h.step();
    let [update] = updates.as_slice() else {
        panic!("one update expected, got {}", updates.len())
    };
    let delta = update.updates[0];
    assert!(matches!(delta.body, DeltaBody::Changes { .. }));
    assert_eq!(delta.changes(), 1 << 10, "only the shield changed");
    assert!(
        h.bytes_down - before <= 16,
        "{} bytes",
        h.bytes_down - before
    );
    // Grouped by where the track puts the ship: its sector at that tick.
    assert_eq!(update.sector_id, SectorId::at(s.motion.position_at(h.tick)));
    assert!(h.settle(10) && h.converged());
}
