//! ECS components of a replicated unit on the server. The simulation writes
//! them only when a value really changes, so Bevy change detection tells the
//! Tag systems exactly which units need replicating.

use bevy::prelude::Component;
use galaxy_protocol::{PlayerId, UnitId, WorldPos};

/// The unit's universe-wide id (links the entity to the simulation and the wire).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetUnit(pub UnitId);

/// Owning player.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner(pub PlayerId);

/// Position in centimetres.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position(pub WorldPos);

/// Hit points.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health(pub u16);

/// Activity state.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitState(pub galaxy_protocol::UnitState);

/// What it is attacking.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target(pub Option<UnitId>);
