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
//! - [`message`]: every message as one [`NetworkMessage`] enum; [`codec`] turns them into bytes.
//! - [`delta`]: [`UnitDelta`] and its bit-packed form.
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
pub mod hash;
pub mod link_model;
pub mod message;
pub mod position;
pub mod priority;
pub mod receiver;
pub mod reckoning;
pub mod sector;
pub mod sender;
pub mod unit;

pub use ack::{Sequence, UpdateAck};
pub use budget::ByteBudget;
pub use codec::{DecodeError, EncodeError, MAX_UNIT_UPDATE_BYTES, decode, encode};
pub use combat::{CombatEvent, CombatEventType};
pub use command::{BatchCommand, CompressedCommand, UnitIdList};
pub use delta::{
    DeltaBody, FULL_STATE, FieldChanges, HEALTH_CHANGED, MAX_VELOCITY_DELTA, MotionChange,
    POSITION_ABSOLUTE, POSITION_CHANGED, PositionChange, REMOVED, STATE_CHANGED, TARGET_CHANGED,
    UnitDelta, VELOCITY_CHANGED, VelocityChange,
};
pub use hash::{ChurnRoom, IdHashMap, IdHashSet};
pub use message::{
    Connect, LoadBalance, MAX_CONNECT_TOKEN_BYTES, MAX_SERVER_ADDR_BYTES, NetworkMessage,
    PROTOCOL_VERSION, Redirect, SectorSnapshot, SectorTransfer, ServerSync, UnitUpdate, ViewUpdate,
};
pub use position::{VELOCITY_SCALE, Velocity, WorldPos, WorldRect};
pub use priority::{PriorityAccumulator, PriorityClass};
pub use receiver::{DeltaReceiver, ReceiveError, ReceiveOutcome, ReceiverStats, UnitEvent};
pub use reckoning::{DeadReckoner, ReckonConfig, ReckonerStats};
pub use sector::{MAX_SCALE, SECTOR_SIZE_CM, SectorId};
pub use sender::{DeltaConfig, DeltaSender, SenderStats};
pub use unit::{
    CompressedUnit, MAX_HEALTH, Motion, PlayerId, QuantizedUnit, UnitId, UnitSample, UnitState,
    quantize, quantize_at,
};
