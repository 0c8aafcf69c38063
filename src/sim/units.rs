//! The RTS unit as ECS components, and how it is replicated: its
//! components make a [`QuantizedUnit`] snapshot (a dead-reckoned track with
//! owner, kind, health, activity and target) on the server, and a client's
//! entity gets the same components back.

use bevy::ecs::query::Or;
use bevy::prelude::*;
use galaxy_net::{SnapshotContext, UnitReplication};
use galaxy_protocol::{
    PlayerId, QuantizedUnit, ReckonConfig, UnitId, UnitSample, UnitState, Velocity, WorldPos,
};

/// The player a unit belongs to (0: nobody, e.g. an uncaptured resource).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitOwner(pub PlayerId);

/// The unit's kind (`galaxy_sim::Kinds`; resources and bases are kinds too).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitKind(pub u8);

/// Where the unit is, in centimetres (server: exactly; client: at the
/// tick of its newest update; drawing uses `galaxy_net::DrawnPosition`).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitPosition(pub WorldPos);

/// Where it is heading per tick (zero at rest): what its track extrapolates.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitVelocity(pub Velocity);

/// Hit points (for a resource, capture progress).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitHealth(pub u16);

/// What it is doing.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitActivity(pub UnitState);

/// The unit it attacks, if any.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitTarget(pub Option<UnitId>);

/// Every component of an RTS unit, from a simulation sample.
pub fn unit_bundle(
    s: &UnitSample,
) -> (
    UnitOwner,
    UnitKind,
    UnitPosition,
    UnitVelocity,
    UnitHealth,
    UnitActivity,
    UnitTarget,
) {
    (
        UnitOwner(s.owner),
        UnitKind(s.kind),
        UnitPosition(s.position),
        UnitVelocity(s.velocity),
        UnitHealth(health_of(s.health)),
        UnitActivity(s.state),
        UnitTarget(s.target),
    )
}

/// A sample's health as the components hold it (what quantization does).
pub fn health_of(health: f32) -> u16 {
    (health.round() as i64).clamp(0, i64::from(galaxy_protocol::MAX_HEALTH)) as u16
}

/// How RTS units are replicated (register with `app.replicate_unit::<RtsUnits>()`).
pub struct RtsUnits;

impl UnitReplication for RtsUnits {
    type Snapshot = QuantizedUnit;
    type Components = (
        &'static UnitOwner,
        &'static UnitKind,
        &'static UnitPosition,
        &'static UnitVelocity,
        &'static UnitHealth,
        &'static UnitActivity,
        &'static UnitTarget,
    );
    type Changed = Or<(
        Changed<UnitOwner>,
        Changed<UnitKind>,
        Changed<UnitPosition>,
        Changed<UnitVelocity>,
        Changed<UnitHealth>,
        Changed<UnitActivity>,
        Changed<UnitTarget>,
    )>;

    /// The unit's dead-reckoning track: the previous one while the unit
    /// keeps to it (within `ctx.reckoning_threshold_cm`), else a new one
    /// anchored at this tick.
    fn snapshot(
        (owner, kind, position, velocity, health, activity, target): (
            &UnitOwner,
            &UnitKind,
            &UnitPosition,
            &UnitVelocity,
            &UnitHealth,
            &UnitActivity,
            &UnitTarget,
        ),
        previous: Option<&QuantizedUnit>,
        ctx: &SnapshotContext,
    ) -> QuantizedUnit {
        let sample = UnitSample {
            owner: owner.0,
            kind: kind.0,
            position: position.0,
            velocity: velocity.0,
            health: f32::from(health.0),
            state: activity.0,
            target: target.0,
        };
        let reckoning = ReckonConfig {
            threshold_cm: ctx.reckoning_threshold_cm,
        };
        reckoning.next_track(previous, ctx.tick, &sample).0
    }

    fn components(s: &QuantizedUnit, tick: u64) -> impl Bundle {
        (
            UnitOwner(s.owner()),
            UnitKind(s.kind()),
            UnitPosition(s.position_at(tick)),
            UnitVelocity(s.velocity()),
            UnitHealth(s.health()),
            UnitActivity(s.state()),
            UnitTarget(s.target()),
        )
    }
}
