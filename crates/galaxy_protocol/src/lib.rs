//! # galaxy_protocol
//!
//! The sans-IO wire protocol of Galaxy RTS: pure data in, bytes out. No
//! Bevy, no sockets, no clocks; every function is deterministic, so it is
//! trivially testable and fuzzable, and the Bevy plugin only moves data
//! between the ECS and this crate.
//!
//! - [`sector`]: the hierarchical [`SectorId`] grid (scale 0 = 1 km).
//! - [`unit`](mod@unit): [`QuantizedUnit`] and [`quantize`] / [`quantize_at`], the only ways
//!   state enters a baseline; a moving unit is a dead-reckoning track.
//! - [`reckoning`]: [`DeadReckoner`], which re-anchors a unit's track only
//!   when the unit drifts more than a few centimetres from it.
//! - [`snapshot`]: the [`UnitSnapshot`] trait every replicated unit state
//!   implements; [`QuantizedUnit`] is the RTS's ([`unit_delta`]), and
//!   [`unit_snapshot!`] makes one for a game's own fields ([`field`]).
//! - [`message`]: [`ClientMessage`] and [`ServerMessage`], one enum per
//!   direction; [`codec`] turns them into bytes.
//! - [`delta`]: [`UnitDelta`] and the record framing of its bit-packed form.
//! - [`DeltaSender`] / [`DeltaReceiver`]: per-client delta compression against
//!   acknowledged baselines (the Quake 3 / Glenn Fiedler model), healing
//!   after loss, duplication and reordering without resending packets.
//! - [`priority`]: a priority accumulator; [`budget`]: the per-client
//!   [`ByteBudget`] it fills.
//!
//! The wire format is specified byte by byte in `docs/protocol.md`.

pub mod ack;
pub mod bits;
pub mod budget;
pub mod codec;
pub mod combat;
pub mod command;
pub mod delta;
pub mod field;
pub mod fuzz;
pub mod geometry;
pub mod hash;
pub mod link_model;
pub mod message;
pub mod position;
pub mod priority;
pub mod receiver;
pub mod reckoning;
pub mod sector;
pub mod sender;
pub mod shared;
pub mod snapshot;
pub mod unit;
pub mod unit_delta;
pub mod verify;

pub use ack::{Sequence, UpdateAck};
pub use budget::ByteBudget;
pub use codec::{
    DecodeError, EncodeError, MAX_CLIENT_MESSAGE_BYTES, MAX_UNIT_UPDATE_BYTES, decode_client,
    decode_server, encode_client, encode_server,
};
pub use combat::{CombatEvent, CombatEventType};
pub use command::{BatchCommand, CompressedCommand, UnitIdList};
pub use delta::{DeltaBody, DeltaError, FULL_STATE, PayloadError, REMOVED, UnitDelta};
pub use field::SnapshotField;
pub use geometry::{distance_cm, step_towards};
pub use hash::{ChurnRoom, IdHashMap, IdHashSet};
pub use message::{
    ArmyControl, ClientMessage, Connect, LinkProfile, MAX_CONNECT_TOKEN_BYTES,
    MAX_SERVER_ADDR_BYTES, PROTOCOL_VERSION, Redirect, ServerMessage, UnitUpdate, ViewUpdate,
};
pub use position::{VELOCITY_SCALE, Velocity, WorldPos, WorldRect};
pub use priority::{PriorityAccumulator, PriorityClass};
pub use receiver::{
    DeltaReceiver, MAX_TICK, MAX_TOMBSTONES, ReceiveError, ReceiveOutcome, ReceiverStats, UnitEvent,
};
pub use reckoning::{DeadReckoner, ReckonConfig, ReckonerStats};
pub use sector::{MAX_SCALE, SECTOR_SIZE_CM, SectorId};
pub use sender::{DeltaConfig, DeltaSender, SenderStats};
pub use shared::AckJoin;
pub use snapshot::{RecordContext, UnitSnapshot};
pub use unit::{
    CompressedUnit, MAX_HEALTH, Motion, PlayerId, QuantizedUnit, UnitId, UnitSample, UnitState,
    quantize, quantize_at,
};
pub use unit_delta::{
    FieldChanges, HEALTH_CHANGED, MAX_VELOCITY_DELTA, MotionChange, POSITION_ABSOLUTE,
    POSITION_CHANGED, PositionChange, STATE_CHANGED, TARGET_CHANGED, VELOCITY_CHANGED,
    VelocityChange,
};
pub use verify::{DIGEST_BUCKETS, StateDigest, Verification};
