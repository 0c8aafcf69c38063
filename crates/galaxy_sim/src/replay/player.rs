//! Playing a replay: [`ReplayPlayer`] steps a world through the recorded
//! inputs, checks each recorded hash as it passes it, and seeks by
//! restoring the keyframe before the target and stepping from there.

use galaxy_protocol::CombatEvent;

use super::file::Replay;
use super::record::Span;
use super::{ReplayError, ReplayHeader};
use crate::world::World;

/// A recorded hash the replayed world did not reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashMismatch {
    /// After this tick.
    pub tick: u64,
    /// What the recording holds.
    pub recorded: u64,
    /// What the replayed world hashed to.
    pub replayed: u64,
}

/// Plays a [`Replay`] into a world the caller owns (a Bevy resource, say).
#[derive(Debug)]
pub struct ReplayPlayer {
    replay: Replay,
    /// The span holding the next inputs.
    span: usize,
    /// That span, decoded (index, inputs).
    decoded: Option<(usize, Span)>,
    /// The next entry of `decoded`.
    entry: usize,
    checked: u64,
    mismatches: Vec<HashMismatch>,
}

/// Mismatches kept for inspection (all are counted).
const KEPT_MISMATCHES: usize = 64;

impl ReplayPlayer {
    /// The player, and the world at the replay's first tick. `threads` is
    /// the world's [`crate::SimConfig::threads`] here (the world is the
    /// same whatever the number).
    pub fn new(replay: Replay, threads: usize) -> Result<(Self, World), ReplayError> {
        let mut player = Self {
            replay,
            span: 0,
            decoded: None,
            entry: 0,
            checked: 0,
            mismatches: Vec::new(),
        };
        let mut config = player.replay.header().sim;
        config.threads = threads;
        let mut world = World::new(config);
        player.restore(&mut world, 0)?;
        Ok((player, world))
    }

    /// The replay played.
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// Its header.
    pub fn header(&self) -> &ReplayHeader {
        self.replay.header()
    }

    /// First tick shown.
    pub fn first_tick(&self) -> u64 {
        self.replay.first_tick()
    }

    /// Last tick reachable.
    pub fn last_tick(&self) -> u64 {
        self.replay.last_tick()
    }

    /// Recorded hashes checked so far.
    pub fn hashes_checked(&self) -> u64 {
        self.checked
    }

    /// Recorded hashes the world did not reproduce (the first
    /// [`KEPT_MISMATCHES`] of them).
    pub fn mismatches(&self) -> &[HashMismatch] {
        &self.mismatches
    }

    /// Steps `world` one recorded tick: the inputs made before it, then
    /// the tick; checks the tick's hash if one was recorded. `None` at the
    /// end of the replay.
    pub fn step(&mut self, world: &mut World) -> Result<Option<Vec<CombatEvent>>, ReplayError> {
        let next = world.tick() + 1;
        if next > self.last_tick() {
            return Ok(None);
        }
        let mut hash = None;
        while let Some(at) = self.replay.spans.get(self.span).copied() {
            if at.first_tick > next {
                break;
            }
            if at.last_tick >= next {
                if self.decoded.as_ref().is_none_or(|d| d.0 != self.span) {
                    self.decoded = Some((self.span, self.replay.span(self.span)?));
                    self.entry = 0;
                }
                let Some((_, span)) = &self.decoded else {
                    unreachable!("decoded above")
                };
                while let Some((tick, inputs)) = span.entries.get(self.entry) {
                    if *tick > next {
                        break;
                    }
                    if *tick == next {
                        for input in inputs {
                            world.apply_input(input);
                        }
                    }
                    self.entry += 1;
                }
                if at.last_tick > next {
                    break;
                }
                hash = at.hash.or(hash);
            }
            // Done with this span (the next may hold more of this tick).
            self.span += 1;
            self.entry = 0;
        }
        let events = world.step();
        if let Some(recorded) = hash {
            self.checked += 1;
            let replayed = world.state_hash();
            if replayed != recorded && self.mismatches.len() < KEPT_MISMATCHES {
                self.mismatches.push(HashMismatch {
                    tick: next,
                    recorded,
                    replayed,
                });
            }
        }
        Ok(Some(events))
    }

    /// Brings `world` to `tick` (clamped to the replay): steps forward
    /// when that is no longer than from the keyframe before `tick`, else
    /// restores that keyframe and steps from it.
    pub fn seek(&mut self, world: &mut World, tick: u64) -> Result<(), ReplayError> {
        let tick = tick.clamp(self.first_tick(), self.last_tick());
        let k = self
            .replay
            .keyframes
            .partition_point(|k| k.tick <= tick)
            .saturating_sub(1);
        let from = self.replay.keyframes[k].tick;
        if !(world.tick() <= tick && world.tick() >= from) {
            self.restore(world, k)?;
        }
        while world.tick() < tick {
            if self.step(world)?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// Replaces `world` with keyframe `k` (decoded from the whole one
    /// before it) and points the inputs after it.
    fn restore(&mut self, world: &mut World, k: usize) -> Result<(), ReplayError> {
        let full = self.replay.keyframes[..=k]
            .iter()
            .rposition(|f| f.full)
            .ok_or(ReplayError::Corrupt("no whole keyframe before a delta"))?;
        let mut state = self.replay.keyframe(full, None)?;
        for i in full + 1..=k {
            state = self.replay.keyframe(i, Some(&state))?;
        }
        let mut config = self.replay.header().sim;
        config.threads = world.config().threads;
        *world = World::from_state(config, &state);
        // The span holding the tick after the keyframe.
        self.span = self
            .replay
            .spans
            .partition_point(|s| s.last_tick <= state.tick);
        self.entry = 0;
        if self.decoded.as_ref().is_some_and(|d| d.0 != self.span) {
            self.decoded = None;
        }
        Ok(())
    }
}
