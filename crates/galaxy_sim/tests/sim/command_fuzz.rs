//! A bounded fuzz run of the server's command handling (issue 19): 100,000
//! random and mutated client messages through `decode_client`, every
//! `BatchCommand` that decodes applied for the connection's player as the
//! server does, in a test build (overflow checks on). Whatever arrives, the
//! other players' units keep their orders, an outcome never counts more ids
//! than the command named, and a command of ids that are not the player's
//! stops after `FOREIGN_ID_ALLOWANCE` of them.

use galaxy_protocol::fuzz::{mutate, random_message};
use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::{
    BatchCommand, ClientMessage, CompressedCommand, SectorId, UnitIdList, decode_client,
    encode_client,
};
use galaxy_sim::*;

const CASES: usize = 100_000;
/// The attacking connection's player; players 2 and 3 are its victims.
const ATTACKER: PlayerId = 1;

/// A valid batch of 1-4 commands naming the attacker's units, its
/// victims', ids that never existed, and wide ranges, mixed.
fn batch(rng: &mut SplitMix64, own: &[UnitId], others: &[UnitId]) -> Vec<u8> {
    let commands = (0..=rng.below(3))
        .map(|_| {
            let ids: Vec<UnitId> = match rng.below(4) {
                0 => own.iter().copied().filter(|_| rng.chance(0.5)).collect(),
                1 => others.iter().copied().filter(|_| rng.chance(0.3)).collect(),
                2 => (0..rng.below(50)).map(|_| rng.next_u64() >> 20).collect(),
                _ => {
                    let start = rng.below(1_000);
                    (start..start + rng.below(65_536)).collect()
                }
            };
            let units = UnitIdList::from_ids(ids).expect("ids fit a list");
            let to = WorldPos::new(rng.below(100_000) as i64, rng.below(100_000) as i64);
            match rng.below(4) {
                0 => CompressedCommand::Move { units, to },
                1 => CompressedCommand::AttackMove { units, to },
                2 => CompressedCommand::Stop { units },
                _ => CompressedCommand::Attack {
                    units,
                    target: rng.below(400),
                },
            }
        })
        .collect();
    encode_client(&ClientMessage::BatchCommand(BatchCommand {
        sector_id: SectorId::new(0, 0, 0),
        commands,
        player_id: rng.below(4),
    }))
    .expect("a valid batch encodes")
}

/// The orders of every unit that is not the attacker's.
fn victims_orders(w: &World) -> Vec<(UnitId, Order, Option<UnitId>)> {
    w.units()
        .filter(|(_, u)| u.owner != ATTACKER)
        .map(|(id, u)| (id, u.order, u.target))
        .collect()
}

#[test]
fn a_hundred_thousand_client_messages_through_command_handling() {
    let mut rng = SplitMix64::new(0xc0_11a2d);
    let mut world = World::default();
    let mut own = Vec::new();
    let mut others = Vec::new();
    for i in 0..150i64 {
        let owner = 1 + (i % 3) as PlayerId;
        let id = world.spawn_unit(owner, (i % 4) as u8, WorldPos::new(i * 700, (i % 7) * 900));
        if owner == ATTACKER {
            own.push(id);
        } else {
            others.push(id);
        }
    }
    let (mut batches, mut commands, mut applied, mut cut_short) = (0u64, 0u64, 0u64, 0u64);
    for case in 0..CASES {
        let input = match case % 3 {
            0 => {
                let len = 1 + rng.below(300) as usize;
                let mut bytes = random_message(&mut rng, len, 5);
                if rng.chance(0.7) {
                    bytes[0] = 4; // BatchCommand's tag: reach the body
                }
                bytes
            }
            _ => {
                let valid = batch(&mut rng, &own, &others);
                if case % 3 == 1 {
                    mutate(&mut rng, valid)
                } else {
                    valid
                }
            }
        };
        let Ok(ClientMessage::BatchCommand(b)) = decode_client(&input) else {
            continue;
        };
        batches += 1;
        let before = victims_orders(&world);
        for cmd in &b.commands {
            commands += 1;
            // As the server does: the connection's player, not the claim.
            let out = world.apply_command(ATTACKER, cmd);
            let named = cmd.units().len();
            assert!(
                out.applied + out.not_owned + out.unknown <= named,
                "{out:?} of {named}"
            );
            assert!(
                out.unknown + out.not_owned <= out.applied + FOREIGN_ID_ALLOWANCE + 1,
                "{out:?}"
            );
            assert!(!out.invalid_target || out.applied == 0, "{out:?}");
            applied += out.applied;
            cut_short += u64::from(out.cut_short);
        }
        assert_eq!(
            victims_orders(&world),
            before,
            "another player's orders changed"
        );
        if batches % 50 == 0 {
            world.step();
        }
    }
    assert!(batches > 30_000, "{batches} batches decoded");
    assert!(
        commands > 60_000 && applied > 100_000,
        "{commands} commands, {applied} orders"
    );
    assert!(cut_short > 10_000, "{cut_short} cut short");
}
