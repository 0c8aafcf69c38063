//! The replay file: [`ReplayWriter`] encodes and compresses a recording's
//! chunks as they come, [`Replay`] reads a file back into an index of its
//! keyframes and spans (hashes included), decoding a chunk only when it
//! is asked for.

use std::io::Write;

use galaxy_protocol::codec::{decode_value, encode_value};
use miniz_oxide::deflate::compress_to_vec;
use miniz_oxide::inflate::decompress_to_vec_with_limit;

use super::keyframe::{Reader, decode_state, encode_state, put};
use super::record::{RecordChunk, Span};
use super::{MAGIC, ReplayError, ReplayHeader};
use crate::inputs::WorldInput;
use crate::kinds::Kinds;
use crate::state::WorldState;

const HEADER: u8 = 1;
const KEYFRAME: u8 = 2;
const SPAN: u8 = 3;

/// Most bytes a chunk may inflate to (a keyframe of 100,000 units takes
/// ~6 MB before compression): a corrupt or hostile file cannot make a
/// reader allocate more.
const MAX_INFLATED_BYTES: usize = 256 << 20;

/// Most bytes one chunk may take in the file.
const MAX_CHUNK_BYTES: usize = 64 << 20;

/// Deflate level: 6 packs the columns within a few percent of 9, at a
/// fraction of its time.
const LEVEL: u8 = 6;

/// Writes a recording's chunks to `out` as they come.
pub struct ReplayWriter<W: Write> {
    out: W,
    full_every: u64,
    kinds: Kinds,
    /// Keyframes written.
    keyframes: u64,
    /// The last keyframe, the base of the next delta.
    last: Option<WorldState>,
    written: u64,
    scratch: Vec<u8>,
}

impl<W: Write> ReplayWriter<W> {
    /// Starts a file: the magic bytes and `header`.
    pub fn new(mut out: W, header: &ReplayHeader) -> Result<Self, ReplayError> {
        let mut body = Vec::new();
        encode_value(0, header, &mut body).map_err(|_| ReplayError::TooLarge(0))?;
        out.write_all(MAGIC)?;
        let mut w = Self {
            out,
            full_every: header.replay.full_every.max(1),
            kinds: Kinds::at(header.sim.tick_hz),
            keyframes: 0,
            last: None,
            written: MAGIC.len() as u64,
            scratch: Vec::new(),
        };
        w.chunk(HEADER, &body)?;
        Ok(w)
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Appends one chunk of the recording.
    pub fn write(&mut self, chunk: &RecordChunk) -> Result<(), ReplayError> {
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        match chunk {
            RecordChunk::Keyframe(state) => {
                let full = self.keyframes.is_multiple_of(self.full_every);
                let base = if full { None } else { self.last.as_ref() };
                let mut raw = Vec::new();
                encode_state(state, base, &self.kinds, &mut raw);
                put_varint(&mut body, state.tick);
                body.push(u8::from(full));
                body.extend_from_slice(&compress_to_vec(&raw, LEVEL));
                self.chunk(KEYFRAME, &body)?;
                self.keyframes += 1;
                self.last = Some(state.clone());
            }
            RecordChunk::Span(span) => {
                let mut raw = Vec::new();
                encode_value(0, &span.entries, &mut raw)
                    .map_err(|_| ReplayError::TooLarge(raw.len()))?;
                put_varint(&mut body, span.first_tick);
                put_varint(&mut body, span.last_tick);
                match span.hash {
                    Some(h) => {
                        body.push(1);
                        body.extend_from_slice(&h.to_le_bytes());
                    }
                    None => body.push(0),
                }
                body.extend_from_slice(&compress_to_vec(&raw, LEVEL));
                self.chunk(SPAN, &body)?;
            }
        }
        self.scratch = body;
        Ok(())
    }

    /// The output, once everything is written.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Flushes what was written to the file.
    pub fn flush(&mut self) -> Result<(), ReplayError> {
        self.out.flush()?;
        Ok(())
    }

    fn chunk(&mut self, kind: u8, body: &[u8]) -> Result<(), ReplayError> {
        let len = u32::try_from(body.len())
            .ok()
            .filter(|&l| l as usize <= MAX_CHUNK_BYTES)
            .ok_or(ReplayError::TooLarge(body.len()))?;
        self.out.write_all(&[kind])?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(body)?;
        self.written += 5 + u64::from(len);
        Ok(())
    }
}

/// A tick or length, as the keyframe columns write values.
fn put_varint(out: &mut Vec<u8>, v: u64) {
    put(out, v as i64, 0);
}

/// Where a keyframe is in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyframeAt {
    pub(crate) tick: u64,
    pub(crate) full: bool,
    /// Its compressed body.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Where a span is in the file, and its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpanAt {
    pub(crate) first_tick: u64,
    pub(crate) last_tick: u64,
    pub(crate) hash: Option<u64>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A replay file in memory, indexed.
#[derive(Debug)]
pub struct Replay {
    bytes: Vec<u8>,
    header: ReplayHeader,
    pub(crate) keyframes: Vec<KeyframeAt>,
    pub(crate) spans: Vec<SpanAt>,
    truncated: bool,
}

impl Replay {
    /// Reads and indexes the file at `path`.
    pub fn open(path: &std::path::Path) -> Result<Self, ReplayError> {
        Self::from_bytes(std::fs::read(path)?)
    }

    /// Indexes a replay held in memory. Chunks are checked for order and
    /// framing here; their contents when they are decoded.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ReplayError> {
        if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(ReplayError::NotAReplay);
        }
        let mut at = MAGIC.len();
        let mut header = None;
        let mut keyframes: Vec<KeyframeAt> = Vec::new();
        let mut spans: Vec<SpanAt> = Vec::new();
        let mut truncated = false;
        while at < bytes.len() {
            let Some(frame) = bytes.get(at..at + 5) else {
                truncated = true;
                break;
            };
            let kind = frame[0];
            let len = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
            let start = at + 5;
            let Some(end) = start.checked_add(len).filter(|&e| e <= bytes.len()) else {
                truncated = true;
                break;
            };
            let body = &bytes[start..end];
            match kind {
                HEADER if header.is_none() => {
                    header = Some(match body.split_first() {
                        Some((0, b)) => decode_value::<ReplayHeader>(b)
                            .map_err(|_| ReplayError::Corrupt("the header"))?,
                        _ => return Err(ReplayError::Corrupt("the header")),
                    });
                }
                KEYFRAME if header.is_some() => {
                    let mut r = Reader::new(body);
                    let tick = r.diff()? as u64;
                    let full = match r.take(1)? {
                        [0] => false,
                        [1] => true,
                        _ => return Err(ReplayError::Corrupt("a keyframe's kind")),
                    };
                    if keyframes.is_empty() && !full {
                        return Err(ReplayError::Corrupt("the first keyframe is a delta"));
                    }
                    if keyframes.last().is_some_and(|k| k.tick >= tick) {
                        return Err(ReplayError::Corrupt("keyframes out of order"));
                    }
                    let offset = r.position();
                    keyframes.push(KeyframeAt {
                        tick,
                        full,
                        start: start + offset,
                        end,
                    });
                }
                SPAN if !keyframes.is_empty() => {
                    let mut r = Reader::new(body);
                    let first_tick = r.diff()? as u64;
                    let last_tick = r.diff()? as u64;
                    let hash = match r.take(1)? {
                        [0] => None,
                        [1] => {
                            let b = r.take(8)?;
                            Some(u64::from_le_bytes(b.try_into().expect("8 bytes")))
                        }
                        _ => return Err(ReplayError::Corrupt("a span's hash flag")),
                    };
                    let expected = spans
                        .last()
                        .map_or(keyframes[0].tick + 1, |s| s.last_tick + 1);
                    // A span starts after the last, or at its tick when that
                    // tick's inputs were split.
                    if (first_tick != expected && first_tick + 1 != expected)
                        || last_tick < first_tick
                    {
                        return Err(ReplayError::Corrupt("spans out of order"));
                    }
                    let offset = r.position();
                    spans.push(SpanAt {
                        first_tick,
                        last_tick,
                        hash,
                        start: start + offset,
                        end,
                    });
                }
                HEADER | KEYFRAME | SPAN => {
                    return Err(ReplayError::Corrupt("a chunk out of place"));
                }
                // Chunks of a later minor version: skipped.
                _ => {}
            }
            at = end;
        }
        let header = header.ok_or(ReplayError::Empty)?;
        if keyframes.is_empty() {
            return Err(ReplayError::Empty);
        }
        Ok(Self {
            bytes,
            header,
            keyframes,
            spans,
            truncated,
        })
    }

    /// How the game was recorded, and its rules.
    pub fn header(&self) -> &ReplayHeader {
        &self.header
    }

    /// The first tick the replay shows.
    pub fn first_tick(&self) -> u64 {
        self.keyframes[0].tick
    }

    /// The last tick the replay can reach.
    pub fn last_tick(&self) -> u64 {
        self.spans.last().map_or(self.first_tick(), |s| s.last_tick)
    }

    /// Hashes recorded (one a second).
    pub fn hash_count(&self) -> usize {
        self.spans.iter().filter(|s| s.hash.is_some()).count()
    }

    /// Keyframes in the file.
    pub fn keyframe_count(&self) -> usize {
        self.keyframes.len()
    }

    /// The file ended inside a chunk (the recording stopped abruptly); the
    /// replay ends at the last whole one.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Size of the file.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Decodes keyframe `i` on top of the state of keyframe `i - 1` (for a
    /// delta).
    pub(crate) fn keyframe(
        &self,
        i: usize,
        base: Option<&WorldState>,
    ) -> Result<WorldState, ReplayError> {
        let k = self.keyframes[i];
        let raw = inflate(&self.bytes[k.start..k.end])?;
        let base = if k.full { None } else { base };
        if !k.full && base.is_none() {
            return Err(ReplayError::Corrupt("a delta keyframe without its base"));
        }
        let state = decode_state(&raw, base, &Kinds::at(self.header.sim.tick_hz))?;
        if state.tick != k.tick {
            return Err(ReplayError::Corrupt("a keyframe's tick"));
        }
        Ok(state)
    }

    /// Decodes span `i`'s inputs.
    pub(crate) fn span(&self, i: usize) -> Result<Span, ReplayError> {
        let s = self.spans[i];
        let raw = inflate(&self.bytes[s.start..s.end])?;
        let entries: Vec<(u64, Vec<WorldInput>)> = match raw.split_first() {
            Some((0, body)) => {
                decode_value(body).map_err(|_| ReplayError::Corrupt("a span's inputs"))?
            }
            _ => return Err(ReplayError::Corrupt("a span's inputs")),
        };
        if entries
            .iter()
            .any(|e| e.0 < s.first_tick || e.0 > s.last_tick)
        {
            return Err(ReplayError::Corrupt("an input outside its span"));
        }
        Ok(Span {
            first_tick: s.first_tick,
            last_tick: s.last_tick,
            hash: s.hash,
            entries,
        })
    }
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>, ReplayError> {
    decompress_to_vec_with_limit(bytes, MAX_INFLATED_BYTES)
        .map_err(|_| ReplayError::Corrupt("a chunk does not inflate"))
}
