//! ECS components of a replicated unit on the server. The simulation writes
//! them only when a value really changes, so Bevy change detection tells the
//! Tag systems exactly which units moved between sectors and which need
//! replicating; a unit walking straight inside one sector writes nothing.

use bevy::prelude::Component;
use galaxy_protocol::{QuantizedUnit, SectorId, UnitId};

/// The unit's universe-wide id (links the entity to the simulation and the wire).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetUnit(pub UnitId);

/// The scale-0 sector the unit is in (the sector index follows it).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sector(pub SectorId);

/// What clients are told: owner, kind, health, state, target and the
/// dead-reckoning track of the unit's motion. It changes only when the unit
/// turns, stops or drifts past the threshold, or another field changes, so
/// a unit walking straight is not replicated at all.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replicated(pub QuantizedUnit);
