//! Resources and bases as replicated entities: they travel through the same
//! sector deltas as units, told apart by reserved kinds, so clients draw
//! them without a second message type.

use galaxy_protocol::{UnitId, UnitSample, UnitState, Velocity};

use crate::world::{Base, Resource, World};

/// Kind carried by a resource point on the wire. Its owner is the holder
/// (0: nobody) and its health the capture progress in ticks.
pub const KIND_RESOURCE: u8 = 200;
/// Kind carried by a base on the wire; health is its hit points.
pub const KIND_BASE: u8 = 201;

/// Whether `kind` is a structure (not an orderable unit).
pub fn is_structure(kind: u8) -> bool {
    kind == KIND_RESOURCE || kind == KIND_BASE
}

impl World {
    /// Every resource and base as the sample replicated for it.
    pub fn structures(&self) -> impl Iterator<Item = (UnitId, UnitSample)> + '_ {
        let resources = self.resources().map(|(id, r)| (id, resource_sample(r)));
        let bases = self.bases().map(|(id, b)| (id, base_sample(b)));
        resources.chain(bases)
    }

    /// The replicated sample of a unit, resource or base.
    pub fn sample(&self, id: UnitId) -> Option<UnitSample> {
        if let Some(u) = self.unit(id) {
            return Some(u.sample());
        }
        if let Some(r) = self.resource(id) {
            return Some(resource_sample(r));
        }
        self.base(id).map(base_sample)
    }

    /// [`World::sample`] of each of `ids` (increasing), found in one
    /// galloping pass over the unit ids rather than a lookup each: what a
    /// replicator calls with the ids [`World::take_changes`] gave it.
    pub fn samples_of(&self, ids: &[UnitId], mut f: impl FnMut(UnitId, Option<UnitSample>)) {
        self.units.each_of(ids, |id, unit| match unit {
            Some(u) => f(id, Some(u.sample())),
            None => f(
                id,
                self.resource(id)
                    .map(resource_sample)
                    .or_else(|| self.base(id).map(base_sample)),
            ),
        });
    }
}

fn resource_sample(r: &Resource) -> UnitSample {
    UnitSample {
        owner: r.owner.unwrap_or(0),
        kind: KIND_RESOURCE,
        position: r.position,
        velocity: Velocity::ZERO,
        health: r.capture.map_or(0.0, |(_, ticks)| ticks as f32),
        state: UnitState::IDLE,
        target: None,
    }
}

fn base_sample(b: &Base) -> UnitSample {
    UnitSample {
        owner: b.owner,
        kind: KIND_BASE,
        position: b.position,
        velocity: Velocity::ZERO,
        health: b.health as f32,
        state: UnitState::IDLE,
        target: None,
    }
}
