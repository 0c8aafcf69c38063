//! Replays: a recorded game that plays again exactly, and can be seeked.
//!
//! The world is deterministic, so a recording is its state when recording
//! started, then every input made to it (commands, spawns, imports: see
//! [`WorldInput`](crate::WorldInput)) with the tick it came before, plus
//! - a hash of the whole state once per second ([`ReplayConfig::span_ticks`]),
//!   which playing it again must reproduce;
//! - keyframes (the whole state) every few seconds, so a seek restores the
//!   keyframe before the target and steps from there. Most keyframes are
//!   deltas from the one before; every [`ReplayConfig::full_every`]th is
//!   whole, so a seek decodes at most that many.
//!
//! [`Recorder`] turns a world's ticks into [`RecordChunk`]s (cheap, on the
//! simulation's thread: a hash, and a copy of the state for a keyframe);
//! [`ReplayWriter`] encodes and compresses them to a file (on a thread of
//! its own); [`Replay`] indexes a file and [`ReplayPlayer`] plays and seeks
//! it.
//!
//! File layout: [`MAGIC`], then chunks of `kind (u8), length (u32 LE),
//! body`: one header, then keyframes and spans of inputs in tick order. A
//! file cut short (the recording server died) plays up to its last whole
//! chunk.

mod file;
mod keyframe;
mod player;
mod record;

use serde::{Deserialize, Serialize};

pub use file::{Replay, ReplayWriter};
pub use player::{HashMismatch, ReplayPlayer};
pub use record::{RecordChunk, Recorder, Span};

use crate::world::SimConfig;

/// First bytes of a replay file (the last byte is the format's version).
pub const MAGIC: &[u8; 8] = b"GXREPLY1";

/// How a game is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayConfig {
    /// Ticks between state hashes (and between spans of inputs): one
    /// second at the world's rate.
    pub span_ticks: u64,
    /// Spans between keyframes.
    pub keyframe_spans: u64,
    /// Every this-many-th keyframe is whole; the others are deltas.
    pub full_every: u64,
}

impl ReplayConfig {
    /// One hash a second, a keyframe every 3 s, a whole one every 30 s:
    /// a seek steps at most 3 s of game and decodes at most 10 keyframes.
    pub fn for_rate(tick_hz: u32) -> Self {
        Self {
            span_ticks: u64::from(tick_hz.max(1)),
            keyframe_spans: 3,
            full_every: 10,
        }
    }

    /// Ticks between keyframes.
    pub fn keyframe_ticks(&self) -> u64 {
        self.span_ticks.max(1) * self.keyframe_spans.max(1)
    }
}

/// What a replay file starts with: how to build its world and how it was
/// recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayHeader {
    /// The world's rules (its tick rate included).
    pub sim: SimConfig,
    /// The recording's cadence.
    pub replay: ReplayConfig,
    /// The tick of the first keyframe.
    pub start_tick: u64,
}

/// Why a replay could not be read or played.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Reading or writing the file failed.
    #[error("replay file: {0}")]
    Io(#[from] std::io::Error),
    /// Not a replay file (or one of another format version).
    #[error("not a replay file of this version (expected it to start with {MAGIC:?})")]
    NotAReplay,
    /// The file holds no header or no keyframe: nothing was recorded.
    #[error("the replay holds no game (no header or no keyframe)")]
    Empty,
    /// Bytes that do not decode as what they should be.
    #[error("corrupt replay: {0}")]
    Corrupt(&'static str),
    /// A chunk too large to encode (more inputs in one span than a
    /// message holds).
    #[error("a replay chunk of {0} bytes is too large")]
    TooLarge(usize),
}
