//! Recording: a world's ticks as [`RecordChunk`]s, cut on the simulation's
//! thread (a hash once a second, a copy of the state for a keyframe) and
//! encoded elsewhere ([`super::ReplayWriter`]).

use crate::inputs::WorldInput;
use crate::state::WorldState;
use crate::world::World;

use super::{ReplayConfig, ReplayHeader};

/// Most inputs one span holds: a tick with more (a whole army spawned at
/// once) is split over several spans, which keeps every chunk well within
/// what one message encodes.
pub const MAX_SPAN_INPUTS: usize = 20_000;

/// Inputs of ticks `first_tick..=last_tick`, and the state's hash after
/// `last_tick` when the span ends a second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// First tick covered.
    pub first_tick: u64,
    /// Last tick covered (the next span starts after it, or at it when a
    /// tick's inputs were split).
    pub last_tick: u64,
    /// [`World::state_hash`] after `last_tick`, at each second's end.
    pub hash: Option<u64>,
    /// The inputs, each with the tick it came before (in order).
    pub entries: Vec<(u64, Vec<WorldInput>)>,
}

/// One piece of a recording, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordChunk {
    /// The whole state after a tick.
    Keyframe(WorldState),
    /// Inputs (and maybe a hash).
    Span(Span),
}

/// Cuts a recording out of a world's ticks; call [`Recorder::after_step`]
/// right after each [`World::step`], before anything else changes the world.
#[derive(Debug)]
pub struct Recorder {
    config: ReplayConfig,
    first_tick: u64,
    entries: Vec<(u64, Vec<WorldInput>)>,
    inputs: usize,
}

impl Recorder {
    /// Starts recording `world` from now: it notes its inputs from here
    /// on. Returns the recorder, the file's header and the first keyframe.
    pub fn start(world: &mut World, config: ReplayConfig) -> (Self, ReplayHeader, RecordChunk) {
        world.record_inputs(true);
        let header = ReplayHeader {
            sim: *world.config(),
            replay: config,
            start_tick: world.tick(),
        };
        let recorder = Self {
            config,
            first_tick: world.tick() + 1,
            entries: Vec::new(),
            inputs: 0,
        };
        (recorder, header, RecordChunk::Keyframe(world.state()))
    }

    /// Takes the inputs that came before the tick just stepped, and cuts
    /// a span (with a hash) at each second's end and a keyframe at each
    /// keyframe's tick, into `out`.
    pub fn after_step(&mut self, world: &mut World, out: &mut Vec<RecordChunk>) {
        let tick = world.tick();
        let mut inputs = world.take_inputs();
        while inputs.len() + self.inputs > MAX_SPAN_INPUTS {
            let room = MAX_SPAN_INPUTS - self.inputs;
            let rest = inputs.split_off(room);
            if !inputs.is_empty() {
                self.entries.push((tick, inputs));
            }
            self.cut(tick, None, out);
            self.first_tick = tick;
            inputs = rest;
        }
        if !inputs.is_empty() {
            self.inputs += inputs.len();
            self.entries.push((tick, inputs));
        }
        if tick.is_multiple_of(self.config.span_ticks.max(1)) {
            self.cut(tick, Some(world.state_hash()), out);
        }
        if tick.is_multiple_of(self.config.keyframe_ticks()) {
            out.push(RecordChunk::Keyframe(world.state()));
        }
    }

    /// Ends the recording after the last tick stepped: the last span, with
    /// a hash. Inputs made since that tick are dropped (no tick followed).
    pub fn finish(&mut self, world: &mut World, out: &mut Vec<RecordChunk>) {
        let tick = world.tick();
        world.record_inputs(false);
        if tick >= self.first_tick {
            self.cut(tick, Some(world.state_hash()), out);
        }
    }

    fn cut(&mut self, last_tick: u64, hash: Option<u64>, out: &mut Vec<RecordChunk>) {
        out.push(RecordChunk::Span(Span {
            first_tick: self.first_tick,
            last_tick,
            hash,
            entries: std::mem::take(&mut self.entries),
        }));
        self.inputs = 0;
        self.first_tick = last_tick + 1;
    }
}
