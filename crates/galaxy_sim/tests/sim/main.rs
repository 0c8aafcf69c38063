//! Behaviour of the shared simulation: orders, combat, events, authority, determinism.

mod command_fuzz;
mod replay;

use galaxy_protocol::{CompressedCommand, UnitIdList, UnitState, quantize};
use galaxy_sim::*;
use proptest::prelude::*;

fn ids(v: &[UnitId]) -> UnitIdList {
    UnitIdList::from_ids(v.iter().copied()).unwrap()
}

fn mv(units: &[UnitId], x: i64, y: i64) -> CompressedCommand {
    CompressedCommand::Move {
        units: ids(units),
        to: WorldPos::new(x, y),
    }
}

#[test]
fn move_orders_arrive_at_speed() {
    let mut w = World::default();
    let a = w.spawn_unit(1, 0, WorldPos::new(0, 0));
    assert_eq!(w.apply_command(1, &mv(&[a], 1_000, 0)).applied, 1);
    let mut prev = w.unit(a).unwrap().position;
    let mut ticks = 0;
    while w.unit(a).unwrap().order != Order::Idle {
        w.step();
        let p = w.unit(a).unwrap().position;
        assert!(distance_cm(prev, p) <= w.kinds().get(0).speed_cm_per_tick);
        prev = p;
        ticks += 1;
        assert!(ticks < 100);
    }
    assert_eq!(prev, WorldPos::new(1_000, 0));
    assert_eq!(ticks, 40); // 10 m at 25 cm per tick
    assert_eq!(w.unit(a).unwrap().state, UnitState::IDLE);
}

/// A unit walking a long straight order reports the velocity it keeps, so a
/// dead-reckoning track needs only a few anchors; it reports zero once it
/// arrives.
#[test]
fn walking_units_report_the_velocity_they_keep() {
    let mut w = World::default();
    let a = w.spawn_unit(1, 0, WorldPos::new(0, 0));
    w.apply_command(1, &mv(&[a], 70_000, 31_000));
    let mut reckoner = galaxy_protocol::DeadReckoner::default();
    let mut ticks = 0;
    while w.unit(a).unwrap().order != Order::Idle {
        w.step();
        reckoner.observe(a, w.tick(), &w.unit(a).unwrap().sample());
        ticks += 1;
    }
    assert!(ticks > 3000, "a long walk ({ticks} ticks)");
    // The first anchor, about one per 12 s as the 1/16 cm-per-tick velocity
    // drifts 5 cm from the exact line, and the stop.
    let anchors = reckoner.stats().anchors;
    assert!(anchors <= 16, "{anchors} anchors for a {ticks}-tick walk");
    assert_eq!(w.unit(a).unwrap().velocity, galaxy_protocol::Velocity::ZERO);
    assert_eq!(
        reckoner.track(a).unwrap().position_at(w.tick() + 100),
        WorldPos::new(70_000, 31_000)
    );
}

#[test]
fn commands_for_other_players_units_are_refused() {
    let mut w = World::default();
    let mine = w.spawn_unit(1, 0, WorldPos::new(0, 0));
    let theirs = w.spawn_unit(2, 0, WorldPos::new(100, 0));
    let out = w.apply_command(1, &mv(&[mine, theirs, 999], 500, 500));
    assert_eq!(
        out,
        CommandOutcome {
            applied: 1,
            not_owned: 1,
            unknown: 1,
            invalid_target: false,
            cut_short: false,
        }
    );
    assert_eq!(w.unit(theirs).unwrap().order, Order::Idle);
    // Attacking one's own unit is refused as a whole.
    let atk = CompressedCommand::Attack {
        units: ids(&[mine]),
        target: mine,
    };
    let out = w.apply_command(1, &atk);
    assert!(out.invalid_target && out.applied == 0);
}

/// A command naming 65,536 ids that are not the player's cost 65,536
/// lookups (82 ms a second of them against a 100k-unit world); it is cut
/// short after the allowance, while a player's own big selection is
/// applied whole (issue 19, item 4).
#[test]
fn a_command_of_other_ids_is_cut_short() {
    let mut w = World::default();
    let mine: Vec<UnitId> = (0..300)
        .map(|i| w.spawn_unit(1, 0, WorldPos::new(i * 200, 0)))
        .collect();
    let theirs: Vec<UnitId> = (0..300)
        .map(|i| w.spawn_unit(2, 0, WorldPos::new(i * 200, 900)))
        .collect();
    let junk = CompressedCommand::Stop {
        units: UnitIdList::from_ids(1_000_000..1_065_536).unwrap(),
    };
    let out = w.apply_command(1, &junk);
    assert!(out.cut_short);
    assert_eq!(out.unknown, FOREIGN_ID_ALLOWANCE + 1, "ids looked at");
    let out = w.apply_command(1, &mv(&theirs, 0, 0));
    assert!(out.cut_short && out.not_owned == FOREIGN_ID_ALLOWANCE + 1 && out.applied == 0);
    // Own units with a few dead among them: all applied.
    let mut list = mine.clone();
    list.extend(1_000_000..1_000_010);
    let out = w.apply_command(1, &mv(&list, 5_000, 5_000));
    assert_eq!((out.applied, out.unknown, out.cut_short), (300, 10, false));
}

#[test]
fn a_duel_ends_in_a_unit_destroyed_event() {
    let mut w = World::default();
    let tank = w.spawn_unit(1, 1, WorldPos::new(0, 0));
    let inf = w.spawn_unit(2, 0, WorldPos::new(3_000, 0));
    w.apply_command(
        1,
        &CompressedCommand::Attack {
            units: ids(&[tank]),
            target: inf,
        },
    );
    let mut events = Vec::new();
    for _ in 0..200 {
        events.extend(w.step());
        if w.unit(inf).is_none() {
            break;
        }
    }
    assert!(w.unit(inf).is_none(), "infantry survived");
    let e = events
        .iter()
        .find(|e| e.event_type == CombatEventType::UnitDestroyed)
        .unwrap();
    assert_eq!(e.participants[0], inf);
    assert!(e.participants.contains(&tank));
    assert_eq!(
        e.sector_id,
        galaxy_protocol::SectorId::at(WorldPos::new(3_000, 0))
    );
    // The tank went back to idle once its target was gone.
    w.step();
    assert_eq!(w.unit(tank).unwrap().order, Order::Idle);
}

#[test]
fn attack_move_engages_on_the_way() {
    let mut w = World::default();
    let a = w.spawn_unit(1, 1, WorldPos::new(0, 0));
    let b = w.spawn_unit(2, 0, WorldPos::new(20_000, 3_000));
    w.apply_command(
        1,
        &CompressedCommand::AttackMove {
            units: ids(&[a]),
            to: WorldPos::new(40_000, 0),
        },
    );
    let mut attacked = false;
    // Tanks move 20 cm per tick: 40 m to the fight, 400 m in all.
    for _ in 0..2_400 {
        w.step();
        if w.unit(a).is_some_and(|u| u.target == Some(b)) {
            attacked = true;
        }
    }
    assert!(attacked && w.unit(b).is_none());
    assert_eq!(w.unit(a).unwrap().position, WorldPos::new(40_000, 0));
}

#[test]
fn bases_are_destroyed_and_resources_captured() {
    let config = SimConfig {
        capture_ticks: 10,
        base_health: 100,
        ..SimConfig::default()
    };
    let mut w = World::new(config);
    let base = w.spawn_base(2, WorldPos::new(1_000, 0));
    let res = w.spawn_resource(WorldPos::new(0, 500));
    let u = w.spawn_unit(1, 1, WorldPos::new(0, 0));
    w.apply_command(
        1,
        &CompressedCommand::Attack {
            units: ids(&[u]),
            target: base,
        },
    );
    let mut kinds = Vec::new();
    for _ in 0..200 {
        kinds.extend(
            w.step()
                .into_iter()
                .map(|e| (e.event_type, e.participants[0])),
        );
    }
    assert!(kinds.contains(&(CombatEventType::BaseDestroyed, base)));
    assert!(kinds.contains(&(CombatEventType::ResourceCapture, res)));
    assert_eq!(w.resources().next().unwrap().1.owner, Some(1));
    assert_eq!(w.bases().count(), 0);
}

#[test]
fn a_big_fight_is_a_massive_battle() {
    let config = SimConfig {
        massive_battle_units: 20,
        ..SimConfig::default()
    };
    let mut w = World::new(config);
    for i in 0..15 {
        w.spawn_unit(1, 0, WorldPos::new(i * 100, 0));
        w.spawn_unit(2, 0, WorldPos::new(i * 100, 1_000));
    }
    let mut battles = 0;
    for _ in 0..20 {
        battles += w
            .step()
            .iter()
            .filter(|e| e.event_type == CombatEventType::MassiveBattle)
            .count();
    }
    // One event per sector per interval, not one per tick.
    assert_eq!(battles, 1);
}

fn scripted_world(seed: u64) -> (World, Vec<(u64, PlayerId, CompressedCommand)>) {
    let mut w = World::default();
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    let mut all = Vec::new();
    for i in 0..60 {
        let owner = i % 3;
        all.push(w.spawn_unit(
            owner,
            (i % 3) as u8,
            WorldPos::new((next() % 30_000) as i64, (next() % 30_000) as i64),
        ));
    }
    let mut script = Vec::new();
    for t in 0..100u64 {
        if t % 5 == 0 {
            let who = next() % 3;
            let units: Vec<UnitId> = all.iter().copied().filter(|_| next() % 3 == 0).collect();
            let to = WorldPos::new((next() % 30_000) as i64, (next() % 30_000) as i64);
            script.push((
                t,
                who,
                CompressedCommand::AttackMove {
                    units: ids(&units),
                    to,
                },
            ));
        }
    }
    (w, script)
}

proptest! {
    /// The same commands on the same world give identical worlds and events.
    #[test]
    fn deterministic(seed in any::<u64>()) {
        let run = || {
            let (mut w, script) = scripted_world(seed);
            let mut events = Vec::new();
            for t in 0..100u64 {
                for (_, who, cmd) in script.iter().filter(|(at, _, _)| *at == t) {
                    w.apply_command(*who, cmd);
                }
                events.extend(w.step());
            }
            let snapshot: Vec<_> = w.units().map(|(id, u)| (id, quantize(&u.sample()))).collect();
            (w, events, snapshot)
        };
        let (a, ea, sa) = run();
        let (b, eb, sb) = run();
        prop_assert_eq!(a, b);
        prop_assert_eq!(ea, eb);
        prop_assert_eq!(sa, sb);
    }
}
