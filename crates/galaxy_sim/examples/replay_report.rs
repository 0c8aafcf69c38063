//! Replay report: records a game (`galaxy_sim::testbed`'s battles of 1,000
//! units, fighting from the first recorded tick, and armies of 500 that
//! march to a new point every 20 s), then opens the recording and measures
//! what a viewer does with it. `20k_fighting` is the worst case: every
//! unit of the world fights, dies and is replaced all the time.
//!
//! ```text
//! cargo run --release -p galaxy_sim --example replay_report -- --json
//! ```
//!
//! Prints a table, then (with `--json`) one JSON object per scenario.
//!
//! - `bytes_per_minute`: the file's size over the recorded game time.
//! - `full_keyframe_bytes` / `delta_keyframe_bytes`: the mean compressed
//!   keyframe (every 10th is whole, the rest deltas); `span_bytes`: a
//!   second of inputs and its hash.
//! - `record_us_per_tick`: what recording adds to the simulation's thread
//!   per tick (taking the inputs, the hash once a second, a copy of the
//!   state for each keyframe); `write_ms_per_keyframe`: encoding and
//!   compressing one keyframe (on the writer's thread in the game).
//! - `open_ms`: reading and indexing the file; `seek_ms_p50/max`: a seek
//!   from where the last one left to a random tick (seeded);
//!   `play_ticks_per_s`: stepping forward with inputs and hash checks.
//! - `hashes_checked` / `mismatches`: playing the whole file once.

use std::time::Instant;

use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::{CompressedCommand, UnitId, UnitIdList, WorldPos};
use galaxy_sim::World;
use galaxy_sim::replay::{RecordChunk, Recorder, Replay, ReplayConfig, ReplayPlayer, ReplayWriter};
use galaxy_sim::testbed::battle_world;

struct Scenario {
    name: &'static str,
    /// Battles of 1,000 fighting units.
    battles: u64,
    /// Groups of 500 units marching (a new destination every 20 s).
    marching: u64,
    seconds: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let scenarios = [
        Scenario {
            name: "2k_fighting",
            battles: 2,
            marching: 0,
            seconds,
        },
        Scenario {
            name: "20k_2k_fighting",
            battles: 2,
            marching: 36,
            seconds,
        },
        Scenario {
            name: "20k_fighting",
            battles: 20,
            marching: 0,
            seconds,
        },
    ];
    println!(
        "{:<10} {:>7} {:>9} {:>9} {:>8} {:>7} {:>9} {:>8} {:>7} {:>8} {:>8} {:>9} {:>6}",
        "scenario",
        "units",
        "KB/min",
        "full KB",
        "delta KB",
        "span KB",
        "rec us/t",
        "write ms",
        "open ms",
        "seek p50",
        "seek max",
        "play t/s",
        "hashes"
    );
    let mut lines = Vec::new();
    for s in &scenarios {
        let r = run(s);
        println!(
            "{:<10} {:>7} {:>9.1} {:>9.1} {:>8.1} {:>7.2} {:>9.1} {:>8.1} {:>7.1} {:>8.1} {:>8.1} {:>9.0} {:>3}/{:<2}",
            s.name,
            r.units,
            r.bytes_per_minute / 1000.0,
            r.full_keyframe_bytes / 1000.0,
            r.delta_keyframe_bytes / 1000.0,
            r.span_bytes / 1000.0,
            r.record_us_per_tick,
            r.write_ms_per_keyframe,
            r.open_ms,
            r.seek_ms_p50,
            r.seek_ms_max,
            r.play_ticks_per_s,
            r.hashes_checked - r.mismatches,
            r.hashes_checked,
        );
        lines.push(format!(
            "{{\"scenario\":\"{}\",\"units\":{},\"seconds\":{},\"file_bytes\":{},\"bytes_per_minute\":{:.0},\"full_keyframe_bytes\":{:.0},\"delta_keyframe_bytes\":{:.0},\"span_bytes\":{:.0},\"record_us_per_tick\":{:.1},\"write_ms_per_keyframe\":{:.2},\"open_ms\":{:.2},\"seek_ms_p50\":{:.1},\"seek_ms_max\":{:.1},\"play_ticks_per_s\":{:.0},\"hashes_checked\":{},\"mismatches\":{}}}",
            s.name,
            r.units,
            s.seconds,
            r.file_bytes,
            r.bytes_per_minute,
            r.full_keyframe_bytes,
            r.delta_keyframe_bytes,
            r.span_bytes,
            r.record_us_per_tick,
            r.write_ms_per_keyframe,
            r.open_ms,
            r.seek_ms_p50,
            r.seek_ms_max,
            r.play_ticks_per_s,
            r.hashes_checked,
            r.mismatches,
        ));
    }
    if json {
        for l in lines {
            println!("{l}");
        }
    }
}

#[derive(Default)]
struct Report {
    units: usize,
    file_bytes: usize,
    bytes_per_minute: f64,
    full_keyframe_bytes: f64,
    delta_keyframe_bytes: f64,
    span_bytes: f64,
    record_us_per_tick: f64,
    write_ms_per_keyframe: f64,
    open_ms: f64,
    seek_ms_p50: f64,
    seek_ms_max: f64,
    play_ticks_per_s: f64,
    hashes_checked: u64,
    mismatches: u64,
}

fn run(s: &Scenario) -> Report {
    let mut r = Report::default();
    // Fighting from the start: the armies have met.
    let (mut w, mut armies) = battle_world(s.battles, 300, 0);
    let groups: Vec<Vec<UnitId>> = (0..s.marching)
        .map(|g| {
            let base = WorldPos::new(-2_000_000 - g as i64 * 100_000, 0);
            (0..500i64)
                .map(|i| {
                    let at = WorldPos::new(base.x + (i % 25) * 300, base.y + (i / 25) * 300);
                    w.spawn_unit(1000 + g, (i % 3) as u8, at)
                })
                .collect()
        })
        .collect();
    let march = |w: &mut World| {
        let round = (w.tick() / 400) as i64;
        for (g, ids) in groups.iter().enumerate() {
            let to = WorldPos::new(
                -2_000_000 - g as i64 * 100_000,
                if round % 2 == 0 { 30_000 } else { -30_000 },
            );
            if let Ok(units) = UnitIdList::from_ids(ids.iter().copied()) {
                w.apply_command(1000 + g as u64, &CompressedCommand::Move { units, to });
            }
        }
    };
    march(&mut w);
    r.units = w.unit_count();
    let config = ReplayConfig::for_rate(w.config().tick_hz);
    let (mut rec, header, first) = Recorder::start(&mut w, config);
    let mut writer = ReplayWriter::new(Vec::new(), &header).expect("header");
    let (mut full, mut delta, mut spans) = (Vec::new(), Vec::new(), Vec::new());
    let mut write_ms = Vec::new();
    let mut write = |writer: &mut ReplayWriter<Vec<u8>>, c: &RecordChunk| {
        let before = writer.bytes_written();
        let t = Instant::now();
        writer.write(c).expect("write");
        let bytes = (writer.bytes_written() - before) as f64;
        if let RecordChunk::Keyframe(_) = c {
            write_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let n = full.len() + delta.len();
            if (n as u64).is_multiple_of(config.full_every) {
                full.push(bytes);
            } else {
                delta.push(bytes);
            }
        } else {
            spans.push(bytes);
        }
    };
    write(&mut writer, &first);
    let ticks = s.seconds * u64::from(header.sim.tick_hz);
    let mut chunks = Vec::new();
    let mut recording = 0.0;
    for _ in 0..ticks {
        if w.tick() % 400 == 0 {
            march(&mut w);
        }
        armies.tick(&mut w);
        let t = Instant::now();
        rec.after_step(&mut w, &mut chunks);
        recording += t.elapsed().as_secs_f64();
        for c in chunks.drain(..) {
            write(&mut writer, &c);
        }
    }
    rec.finish(&mut w, &mut chunks);
    for c in chunks.drain(..) {
        write(&mut writer, &c);
    }
    let file = writer.into_inner();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    r.file_bytes = file.len();
    r.bytes_per_minute = file.len() as f64 * 60.0 / s.seconds as f64;
    r.full_keyframe_bytes = mean(&full);
    r.delta_keyframe_bytes = mean(&delta);
    r.span_bytes = mean(&spans);
    r.record_us_per_tick = recording * 1e6 / ticks as f64;
    r.write_ms_per_keyframe = mean(&write_ms);

    let t = Instant::now();
    let replay = Replay::from_bytes(file.clone()).expect("open");
    r.open_ms = t.elapsed().as_secs_f64() * 1e3;
    let (mut player, mut world) = ReplayPlayer::new(replay, 0).expect("player");
    let t = Instant::now();
    while player.step(&mut world).expect("step").is_some() {}
    r.play_ticks_per_s = ticks as f64 / t.elapsed().as_secs_f64();
    r.hashes_checked = player.hashes_checked();
    r.mismatches = player.mismatches().len() as u64;

    let mut rng = SplitMix64::new(1);
    let mut seeks = Vec::new();
    for _ in 0..30 {
        let target = player.first_tick() + rng.below(ticks + 1);
        let t = Instant::now();
        player.seek(&mut world, target).expect("seek");
        seeks.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(world.tick(), target);
    }
    seeks.sort_by(f64::total_cmp);
    r.seek_ms_p50 = seeks[seeks.len() / 2];
    r.seek_ms_max = *seeks.last().expect("seeks");
    r.mismatches += player.mismatches().len() as u64 - r.mismatches;
    r
}
