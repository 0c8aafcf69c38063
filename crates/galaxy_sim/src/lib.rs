//! # galaxy_sim
//!
//! The unit simulation both sides run: the server as the authority, the
//! client to predict its own units. Pure and deterministic: integer
//! centimetres, integer hit points, ordered maps, no clocks and no threads,
//! so the same commands on the same world give bit-identical worlds.
//!
//! One [`World::step`] is one fixed tick (20 Hz by default): orders ->
//! movement -> targeting -> combat -> deaths and captures, returning the
//! design's [`CombatEvent`]s.

mod geometry;
mod kinds;
mod portable;
mod structures;
mod world;

pub use geometry::{distance_cm, distance_sq, step_towards, velocity_towards, within};
pub use kinds::{KindStats, kind_stats};
pub use portable::ImportOutcome;
pub use structures::{KIND_BASE, KIND_RESOURCE, is_structure};
pub use world::{Base, CommandOutcome, Order, Resource, SimConfig, SimUnit, World};

pub use galaxy_protocol::{CombatEvent, CombatEventType, PlayerId, UnitId, WorldPos};
