//! Bytes <-> messages: the only module that knows bincode.
//!
//! Layout: one tag byte naming the variant, then the variant's struct in
//! bincode 2 (`standard` config: little-endian varints). `UnitUpdate` is the
//! exception on the hot path: a bincode header with the record count, then
//! the bit-packed deltas of [`crate::delta`] to the end of the message.
//!
//! Each direction has its own decoder: a server decodes [`ClientMessage`]s
//! only ([`decode_client`]), a client [`ServerMessage`]s only
//! ([`decode_server`]); a tag of the other direction is refused before its
//! body is read. Other crates (the cluster's server-to-server messages)
//! frame their own serde types with [`encode_value`] / [`decode_value`],
//! under the same limits.
//!
//! Decoding is total: any byte string yields a message or a typed
//! [`DecodeError`], never a panic, and allocations stay proportional to the
//! input (length prefixes are checked against the bytes that are really there).

use serde::{Deserialize, Serialize};

use crate::bits::BitWriter;
use crate::delta::{PayloadError, read_deltas, write_deltas};
use crate::message::{ClientMessage, ServerMessage, UnitUpdate};
use crate::sector::SectorId;
use crate::snapshot::UnitSnapshot;

/// Largest message [`decode_client`] and [`decode_server`] accept (snapshots between servers are the big ones).
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Largest message a client may send ([`decode_client`] refuses longer ones
/// before reading anything): a client's batches are split to fit, and a
/// server's per-client byte limit is of the same order.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest `UnitUpdate` the sender produces: fits one UDP datagram with headroom.
pub const MAX_UNIT_UPDATE_BYTES: usize = 1200;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_MESSAGE_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>()
}

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty message")]
    Empty,
    /// Longer than [`MAX_MESSAGE_BYTES`].
    #[error("message of {len} bytes exceeds {max}")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The first byte names no message.
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    /// The first byte names a message of the other direction (or between
    /// servers): refused before its body is read.
    #[error("message tag {0} is not for this side")]
    WrongDirection(u8),
    /// The bytes ended inside a field.
    #[error("message truncated")]
    Truncated,
    /// A field held an impossible value (bad varint, enum tag, UTF-8, bounds...).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The packed unit deltas were malformed.
    #[error("unit update payload: {0}")]
    Payload(#[from] PayloadError),
    /// A sector outside the world or above the maximum scale.
    #[error("invalid sector {0}")]
    InvalidSector(SectorId),
    /// A view rectangle with `min` past `max`.
    #[error("view rectangle is inside out")]
    InvalidRect,
    /// Bytes left over after the message.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

impl DecodeError {
    /// A stable short name per variant, for stats counters and rate-limited logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLarge { .. } => "too_large",
            Self::UnknownTag(_) => "unknown_tag",
            Self::WrongDirection(_) => "wrong_direction",
            Self::Truncated => "truncated",
            Self::Malformed(_) => "malformed",
            Self::Payload(_) => "payload",
            Self::InvalidSector(_) => "invalid_sector",
            Self::InvalidRect => "invalid_rect",
            Self::TrailingBytes(_) => "trailing_bytes",
        }
    }
}

impl From<bincode::error::DecodeError> for DecodeError {
    fn from(e: bincode::error::DecodeError) -> Self {
        match e {
            bincode::error::DecodeError::UnexpectedEnd { .. } => Self::Truncated,
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The deltas were out of order or had an impossible baseline.
    #[error("unit update payload: {0}")]
    Payload(#[from] PayloadError),
    /// More than `u16::MAX` deltas in one `UnitUpdate`.
    #[error("too many deltas in one unit update")]
    TooManyDeltas,
    /// Serialization failed (only for values that cannot be represented).
    #[error("serialize: {0}")]
    Serialize(String),
    /// The message would be longer than [`MAX_MESSAGE_BYTES`]: no decoder
    /// would take it.
    #[error("message of {len} bytes exceeds {max}")]
    TooLarge {
        /// Bytes it would take.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The fixed part of a `UnitUpdate` on the wire; the packed deltas follow it.
#[derive(Serialize, Deserialize)]
struct UnitUpdateHeader {
    sector_id: SectorId,
    sequence: u16,
    timestamp: u64,
    count: u16,
}

mod tag {
    pub const CONNECT: u8 = 0;
    pub const UNIT_UPDATE: u8 = 1;
    pub const UPDATE_ACK: u8 = 2;
    pub const VIEW_UPDATE: u8 = 3;
    pub const BATCH_COMMAND: u8 = 4;
    pub const COMBAT_EVENT: u8 = 5;
    pub const REDIRECT: u8 = 9;
    pub const STATE_DIGEST: u8 = 10;
    pub const ARMY_CONTROL: u8 = 11;
    /// Tags of server-to-client messages.
    pub const SERVER: [u8; 4] = [UNIT_UPDATE, COMBAT_EVENT, REDIRECT, ARMY_CONTROL];
    /// Tags of client-to-server messages.
    pub const CLIENT: [u8; 5] = [
        CONNECT,
        UPDATE_ACK,
        VIEW_UPDATE,
        BATCH_COMMAND,
        STATE_DIGEST,
    ];
}

/// First tag free for other crates' envelopes ([`encode_value`]); tags 6, 7
/// and 8 are the cluster's (they were its messages' before the split), 9
/// to 11 this crate's again (`Redirect`, `StateDigest`, `ArmyControl`).
pub const FIRST_FOREIGN_TAG: u8 = 6;

fn put<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    bincode::serde::encode_into_std_write(value, out, config())
        .map(|_| ())
        .map_err(|e| EncodeError::Serialize(e.to_string()))
}

/// Appends the encoding of a client's message to `out` (on error `out`
/// may hold a partial message).
pub fn encode_client_into(msg: &ClientMessage, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match msg {
        ClientMessage::Connect(m) => encode_value(tag::CONNECT, m, out),
        ClientMessage::UpdateAck(m) => encode_value(tag::UPDATE_ACK, m, out),
        ClientMessage::ViewUpdate(m) => encode_value(tag::VIEW_UPDATE, m, out),
        ClientMessage::BatchCommand(m) => encode_value(tag::BATCH_COMMAND, m, out),
        ClientMessage::StateDigest(m) => encode_value(tag::STATE_DIGEST, m, out),
    }
}

/// Encodes a client's message into a new buffer.
pub fn encode_client(msg: &ClientMessage) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_client_into(msg, &mut out)?;
    Ok(out)
}

/// Appends the encoding of a server's message to `out` (on error `out`
/// may hold a partial message).
pub fn encode_server_into<S: UnitSnapshot>(
    msg: &ServerMessage<S>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    match msg {
        ServerMessage::UnitUpdate(u) => {
            let mut w = BitWriter::new();
            write_deltas(&mut w, u.timestamp, &u.updates)?;
            out.push(tag::UNIT_UPDATE);
            put(out, &unit_update_header(u)?)?;
            out.extend_from_slice(w.as_bytes());
            Ok(())
        }
        ServerMessage::CombatEvent(m) => encode_value(tag::COMBAT_EVENT, m, out),
        ServerMessage::Redirect(m) => encode_value(tag::REDIRECT, m, out),
        ServerMessage::ArmyControl(m) => encode_value(tag::ARMY_CONTROL, m, out),
    }
}

/// Encodes a server's message into a new buffer.
pub fn encode_server<S: UnitSnapshot>(msg: &ServerMessage<S>) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_server_into(msg, &mut out)?;
    Ok(out)
}

/// Appends `tag` and then `value` in bincode: the envelope of every
/// serde message, for crates that define their own (e.g. between servers,
/// with tags from [`FIRST_FOREIGN_TAG`] up).
pub fn encode_value<T: Serialize>(
    tag: u8,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.push(tag);
    put(out, value)?;
    let len = out.len() - start;
    if len > MAX_MESSAGE_BYTES {
        out.truncate(start);
        return Err(EncodeError::TooLarge {
            len,
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}

fn unit_update_header<S: UnitSnapshot>(u: &UnitUpdate<S>) -> Result<UnitUpdateHeader, EncodeError> {
    Ok(UnitUpdateHeader {
        sector_id: u.sector_id,
        sequence: u.sequence,
        timestamp: u.timestamp,
        count: u16::try_from(u.updates.len()).map_err(|_| EncodeError::TooManyDeltas)?,
    })
}

/// Bytes of a `UnitUpdate`'s tag and header, for the largest record count:
/// what a sender must leave free besides the packed deltas.
pub fn unit_update_overhead(sector_id: SectorId, sequence: u16, timestamp: u64) -> usize {
    unit_update_header_len(sector_id, sequence, timestamp, usize::from(u16::MAX))
}

/// Exact bytes of a `UnitUpdate`'s tag and header with `count` records
/// (computed, not encoded: the sender asks for every message).
pub fn unit_update_header_len(
    sector_id: SectorId,
    sequence: u16,
    timestamp: u64,
    count: usize,
) -> usize {
    // bincode `standard()` varints: 1 byte up to 250, then a marker and 2, 4 or 8 bytes.
    fn varint_len(v: u64) -> usize {
        match v {
            0..=250 => 1,
            251..=0xFFFF => 3,
            0x1_0000..=0xFFFF_FFFF => 5,
            _ => 9,
        }
    }
    let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
    1 + varint_len(zigzag(sector_id.x))
        + varint_len(zigzag(sector_id.y))
        + 1
        + varint_len(u64::from(sequence))
        + varint_len(timestamp)
        + varint_len(count as u64)
}

/// Appends a `UnitUpdate` whose `count` records are already packed in
/// `payload` (the sender's fast path: the records are packed once, to
/// measure them, and the same bits go on the wire).
pub fn encode_packed_unit_update(
    sector_id: SectorId,
    sequence: u16,
    timestamp: u64,
    count: usize,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let header = UnitUpdateHeader {
        sector_id,
        sequence,
        timestamp,
        count: u16::try_from(count).map_err(|_| EncodeError::TooManyDeltas)?,
    };
    out.push(tag::UNIT_UPDATE);
    put(out, &header)?;
    out.extend_from_slice(payload);
    Ok(())
}

/// Splits a message into its tag and body after the size check.
fn split(bytes: &[u8], max: usize) -> Result<(u8, &[u8]), DecodeError> {
    let (&tag, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok((tag, body))
}

/// The error for a tag that is not one of `mine`.
fn foreign(tag: u8, mine: &[u8]) -> DecodeError {
    let known = tag::SERVER.contains(&tag)
        || tag::CLIENT.contains(&tag)
        || (FIRST_FOREIGN_TAG..tag::REDIRECT).contains(&tag);
    if known && !mine.contains(&tag) {
        DecodeError::WrongDirection(tag)
    } else {
        DecodeError::UnknownTag(tag)
    }
}

/// Decodes one whole message a client sent; every byte must be used.
/// Longer than [`MAX_CLIENT_MESSAGE_BYTES`], or a server-to-client or
/// server-to-server tag, is refused before the body is read.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMessage, DecodeError> {
    let (tag, body) = split(bytes, MAX_CLIENT_MESSAGE_BYTES)?;
    let msg = match tag {
        tag::CONNECT => ClientMessage::Connect(decode_value(body)?),
        tag::UPDATE_ACK => ClientMessage::UpdateAck(decode_value(body)?),
        tag::VIEW_UPDATE => ClientMessage::ViewUpdate(decode_value(body)?),
        tag::BATCH_COMMAND => ClientMessage::BatchCommand(decode_value(body)?),
        tag::STATE_DIGEST => ClientMessage::StateDigest(decode_value(body)?),
        other => return Err(foreign(other, &tag::CLIENT)),
    };
    match &msg {
        ClientMessage::BatchCommand(b) => check_sector(&b.sector_id)?,
        ClientMessage::ViewUpdate(v) if !v.view.is_well_formed() => {
            return Err(DecodeError::InvalidRect);
        }
        _ => {}
    }
    Ok(msg)
}

/// Decodes one whole message a server sent, whose unit updates carry
/// snapshots of type `S`; every byte must be used. Client-to-server and
/// server-to-server tags are refused before their body is read.
pub fn decode_server<S: UnitSnapshot>(bytes: &[u8]) -> Result<ServerMessage<S>, DecodeError> {
    let (tag, body) = split(bytes, MAX_MESSAGE_BYTES)?;
    match tag {
        tag::UNIT_UPDATE => {
            let (h, used): (UnitUpdateHeader, usize) =
                bincode::serde::borrow_decode_from_slice(body, config())?;
            check_sector(&h.sector_id)?;
            let updates = read_deltas(&body[used..], usize::from(h.count), h.timestamp)?;
            Ok(ServerMessage::UnitUpdate(UnitUpdate {
                sector_id: h.sector_id,
                sequence: h.sequence,
                timestamp: h.timestamp,
                updates,
            }))
        }
        tag::COMBAT_EVENT => {
            let e: crate::CombatEvent = decode_value(body)?;
            check_sector(&e.sector_id)?;
            Ok(ServerMessage::CombatEvent(e))
        }
        tag::REDIRECT => Ok(ServerMessage::Redirect(decode_value(body)?)),
        tag::ARMY_CONTROL => Ok(ServerMessage::ArmyControl(decode_value(body)?)),
        other => Err(foreign(other, &tag::SERVER)),
    }
}

/// Decodes a message body written by [`encode_value`] (after its tag):
/// the whole body must be used, and collections are bounded by their
/// `deserialize_with` helpers ([`bounded`]).
pub fn decode_value<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, DecodeError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge {
            len: body.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let (value, used) = bincode::serde::borrow_decode_from_slice(body, config())?;
    match body.len() - used {
        0 => Ok(value),
        n => Err(DecodeError::TrailingBytes(n)),
    }
}

/// Refuses a sector outside the world or above the maximum scale.
pub fn check_sector(s: &SectorId) -> Result<(), DecodeError> {
    if s.is_valid() {
        Ok(())
    } else {
        Err(DecodeError::InvalidSector(*s))
    }
}

/// Serde helpers that refuse over-long collections before allocating for
/// them; use them as `#[serde(deserialize_with = ...)]` on every collection
/// a peer can send.
pub mod bounded {
    use std::collections::BTreeMap;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};

    /// A `Vec<T>` of at most `MAX` elements; capacity grows only with elements
    /// actually decoded, so a forged length cannot reserve memory.
    pub fn vec<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        struct V<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for V<T, MAX> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a sequence of at most {MAX} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let hint = seq.size_hint().unwrap_or(0);
                if hint > MAX {
                    return Err(A::Error::custom(format_args!(
                        "{hint} elements, at most {MAX} allowed"
                    )));
                }
                let mut out = Vec::with_capacity(hint.min(16));
                while let Some(x) = seq.next_element()? {
                    if out.len() == MAX {
                        return Err(A::Error::custom(format_args!("more than {MAX} elements")));
                    }
                    out.push(x);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V::<T, MAX>(PhantomData))
    }

    /// A `BTreeMap` of at most `MAX` entries (a map never pre-allocates).
    pub fn map<'de, D, K, V, const MAX: usize>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        struct M<K, V, const MAX: usize>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, const MAX: usize> Visitor<'de>
            for M<K, V, MAX>
        {
            type Value = BTreeMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a map of at most {MAX} entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BTreeMap<K, V>, A::Error> {
                if map.size_hint().is_some_and(|n| n > MAX) {
                    return Err(A::Error::custom(format_args!("more than {MAX} entries")));
                }
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry()? {
                    if out.len() == MAX {
                        return Err(A::Error::custom(format_args!("more than {MAX} entries")));
                    }
                    out.insert(k, v);
                }
                Ok(out)
            }
        }
        d.deserialize_map(M::<K, V, MAX>(PhantomData))
    }

    /// A `String` of at most `MAX` bytes, borrowed from the input while checked.
    pub fn string<'de, D, const MAX: usize>(d: D) -> Result<String, D::Error>
    where
        D: Deserializer<'de>,
    {
        struct V<const MAX: usize>;
        impl<const MAX: usize> Visitor<'_> for V<MAX> {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of at most {MAX} bytes")
            }
            fn visit_str<E: Error>(self, s: &str) -> Result<String, E> {
                if s.len() > MAX {
                    return Err(E::custom(format_args!(
                        "string of {} bytes, at most {MAX} allowed",
                        s.len()
                    )));
                }
                Ok(s.to_owned())
            }
        }
        d.deserialize_str(V::<MAX>)
    }
}
