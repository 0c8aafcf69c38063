//! `CombatEvent`: the critical, reliable events of a battle.

use serde::{Deserialize, Serialize};

use crate::sector::SectorId;
use crate::unit::UnitId;

/// Most participants one event may list.
pub const MAX_EVENT_PARTICIPANTS: usize = 65_536;

/// What happened (the design's event types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CombatEventType {
    /// A unit was destroyed; participants: `[victim, killer...]`.
    UnitDestroyed,
    /// Many units are fighting in one sector; participants: the units involved.
    MassiveBattle,
    /// A resource changed hands; participants: `[resource, capturing units...]`.
    ResourceCapture,
    /// A base was destroyed; participants: `[base, attackers...]`.
    BaseDestroyed,
}

impl CombatEventType {
    /// Delivery rank among events: higher goes first when the budget is short.
    pub fn urgency(self) -> u8 {
        match self {
            Self::BaseDestroyed => 3,
            Self::MassiveBattle => 2,
            Self::ResourceCapture => 1,
            Self::UnitDestroyed => 0,
        }
    }
}

/// A battle event, sent reliably and ahead of unit updates to every client
/// that sees `sector_id` (the design's `CombatEvent`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CombatEvent {
    /// Where it happened.
    pub sector_id: SectorId,
    /// What happened.
    pub event_type: CombatEventType,
    /// Units (or entities) involved; meaning depends on `event_type`.
    #[serde(deserialize_with = "crate::codec::bounded::vec::<_, _, MAX_EVENT_PARTICIPANTS>")]
    pub participants: Vec<UnitId>,
    /// Server tick at which it happened.
    pub timestamp: u64,
}
