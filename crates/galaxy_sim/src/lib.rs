//! # galaxy_sim
//!
//! The unit simulation both sides run: the server as the authority, the
//! client to predict its own units. Pure and deterministic: integer
//! centimetres, integer hit points, ordered maps, no clocks, and every unit
//! decides from the world as the tick began, so the same commands on the
//! same world give bit-identical worlds (a big world's tick may use two
//! threads, and its grid catches up on a thread of its own after the tick
//! returns; the result is the same).
//!
//! The world keeps a spatial index of its units (a grid of cells,
//! updated only for units that moved) and a list of what changed, which a
//! replicator takes each tick ([`World::take_changes`]) so that units
//! standing still cost it nothing.
//!
//! One [`World::step`] is one fixed tick (20 Hz by default): orders ->
//! movement -> targeting -> combat -> deaths and captures, returning the
//! design's [`CombatEvent`]s.
//!
//! Because it is deterministic, a game can be recorded as its inputs and
//! played again ([`replay`]).

mod behaviour;
mod geometry;
mod inputs;
mod kinds;
mod portable;
pub mod replay;
mod spatial;
mod state;
mod structures;
mod table;
pub mod testbed;
mod world;

pub use galaxy_protocol::geometry::{distance_cm, step_towards};
pub use geometry::{distance_sq, velocity_towards, within};
pub use inputs::WorldInput;
pub use kinds::{KindSpec, KindStats, Kinds, kind_spec, max_health};
pub use portable::ImportOutcome;
pub use state::WorldState;
pub use structures::{KIND_BASE, KIND_RESOURCE, is_structure};
pub use world::{
    Base, CommandOutcome, FOREIGN_ID_ALLOWANCE, Order, Resource, SimConfig, SimUnit, World,
};

pub use galaxy_protocol::{CombatEvent, CombatEventType, PlayerId, UnitId, WorldPos};
