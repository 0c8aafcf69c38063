//! Replays: a recorded game plays again to the same hashes, seeks land on
//! the recorded states, and damaged files give typed errors, never a panic.

use std::collections::BTreeMap;

use galaxy_protocol::fuzz::mutate;
use galaxy_protocol::link_model::SplitMix64;
use galaxy_sim::replay::{Recorder, Replay, ReplayConfig, ReplayPlayer, ReplayWriter};
use galaxy_sim::testbed::Battles;
use galaxy_sim::*;

/// A recorded game of `battles` battles over `ticks` ticks, with units
/// spawned, removed and imported on the way (every kind of input); its
/// file and the hash after every tick.
fn recorded_game(battles: u64, ticks: u64) -> (Vec<u8>, BTreeMap<u64, u64>, World) {
    let mut w = World::new(SimConfig {
        threads: 1,
        ..SimConfig::default()
    });
    // Something exists before the recording starts: it is in the first keyframe.
    w.spawn_base(1, WorldPos::new(-5_000, 0));
    let config = ReplayConfig {
        span_ticks: 20,
        keyframe_spans: 2,
        full_every: 3,
    };
    let (mut rec, header, first) = Recorder::start(&mut w, config);
    let mut writer = ReplayWriter::new(Vec::new(), &header).unwrap();
    writer.write(&first).unwrap();
    let mut armies = Battles::new(&mut w, battles);
    w.spawn_resource(WorldPos::new(3_000, 3_000));
    let mut hashes = BTreeMap::new();
    let mut chunks = Vec::new();
    for t in 0..ticks {
        if t == 90 {
            let gone: Vec<UnitId> = w.units().map(|u| u.0).take(7).collect();
            for id in gone {
                w.remove_unit(id);
            }
            w.insert_unit(900_000, SimUnit::new(9, 1, WorldPos::new(1_000, 1_000)));
        }
        if t == 130 {
            w.remove_where(|p| p.x > 3_000 && p.y < 1_000);
            let records = w.export(|p| p.x < 0);
            let mut moved = records.clone();
            for r in &mut moved {
                r.unit_id += 1_000_000;
            }
            w.import(&moved);
        }
        armies.tick(&mut w);
        hashes.insert(w.tick(), w.state_hash());
        rec.after_step(&mut w, &mut chunks);
        for c in chunks.drain(..) {
            writer.write(&c).unwrap();
        }
    }
    // An input after the last tick is not part of the game.
    w.spawn_unit(5, 0, WorldPos::new(0, 0));
    rec.finish(&mut w, &mut chunks);
    for c in chunks.drain(..) {
        writer.write(&c).unwrap();
    }
    let bytes = writer.bytes_written();
    let out = writer.into_inner();
    assert_eq!(out.len() as u64, bytes);
    (out, hashes, w)
}

#[test]
fn a_replayed_game_matches_every_recorded_hash() {
    let (file, hashes, recorded) = recorded_game(2, 200);
    let replay = Replay::from_bytes(file).unwrap();
    assert_eq!(replay.first_tick(), 0);
    assert_eq!(replay.last_tick(), 200);
    assert_eq!(replay.hash_count(), 10);
    assert_eq!(replay.keyframe_count(), 6, "tick 0, then every 40 ticks");
    let (mut player, mut w) = ReplayPlayer::new(replay, 2).unwrap();
    let mut ticks = 0;
    while player.step(&mut w).unwrap().is_some() {
        ticks += 1;
        assert_eq!(w.state_hash(), hashes[&w.tick()], "tick {}", w.tick());
    }
    assert_eq!(ticks, 200);
    assert_eq!(player.hashes_checked(), 10);
    assert_eq!(player.mismatches(), &[]);
    // The unit spawned after the last tick is not in the replay.
    let mut recorded = recorded.state();
    recorded.units.retain(|u| u.1.owner != 5);
    recorded.next_id -= 1;
    assert_eq!(w.state(), recorded);
}

#[test]
fn seeking_lands_on_the_recorded_state() {
    let (file, hashes, _) = recorded_game(2, 200);
    let (mut player, mut w) = ReplayPlayer::new(Replay::from_bytes(file).unwrap(), 1).unwrap();
    // Backwards, forwards, onto keyframes, between them, past the end.
    for target in [150, 17, 80, 81, 199, 0, 121, 60, 500] {
        player.seek(&mut w, target).unwrap();
        let tick = target.min(200);
        assert_eq!(w.tick(), tick);
        if tick > 0 {
            assert_eq!(w.state_hash(), hashes[&tick], "after a seek to {target}");
        }
    }
    assert_eq!(player.mismatches(), &[]);
    assert!(player.hashes_checked() > 0);
}

#[test]
fn a_replay_of_a_changed_game_reports_the_mismatch() {
    let (file, _, _) = recorded_game(1, 60);
    let (mut player, mut w) = ReplayPlayer::new(Replay::from_bytes(file).unwrap(), 1).unwrap();
    player.step(&mut w).unwrap();
    // Someone moves a unit behind the replay's back.
    let (id, mut u) = w.units().map(|(id, u)| (id, *u)).nth(3).unwrap();
    u.position.x += 1;
    w.insert_unit(id, u);
    while player.step(&mut w).unwrap().is_some() {}
    assert_eq!(player.hashes_checked(), 3);
    assert_eq!(player.mismatches().len(), 3);
    assert_eq!(player.mismatches()[0].tick, 20);
}

#[test]
fn a_file_cut_short_plays_to_its_last_whole_chunk() {
    let (file, hashes, _) = recorded_game(1, 100);
    let cut = file.len() - 10;
    let replay = Replay::from_bytes(file[..cut].to_vec()).unwrap();
    assert!(replay.is_truncated());
    let last = replay.last_tick();
    assert!((60..100).contains(&last), "{last}");
    let (mut player, mut w) = ReplayPlayer::new(replay, 1).unwrap();
    player.seek(&mut w, u64::MAX).unwrap();
    assert_eq!(w.tick(), last);
    assert_eq!(w.state_hash(), hashes[&last]);
    assert_eq!(player.mismatches(), &[]);
}

#[test]
fn files_that_are_not_replays_are_refused() {
    assert!(matches!(
        Replay::from_bytes(b"PNG...".to_vec()),
        Err(replay::ReplayError::NotAReplay)
    ));
    assert!(matches!(
        Replay::from_bytes(replay::MAGIC.to_vec()),
        Err(replay::ReplayError::Empty)
    ));
}

/// Damaged files: every read and every step gives a world or a typed
/// error, never a panic (and allocations are bounded by the inflate limit).
#[test]
fn damaged_replays_never_panic() {
    let (file, _, _) = recorded_game(1, 60);
    let mut rng = SplitMix64::new(7);
    let mut errors = 0;
    for _ in 0..300 {
        let bytes = mutate(&mut rng, file.clone());
        match Replay::from_bytes(bytes) {
            Err(_) => errors += 1,
            Ok(replay) => {
                let Ok((mut player, mut w)) = ReplayPlayer::new(replay, 1) else {
                    errors += 1;
                    continue;
                };
                for _ in 0..80 {
                    match player.step(&mut w) {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
            }
        }
    }
    assert!(errors > 0, "no damage was noticed");
}
