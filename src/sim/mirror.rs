//! Once per frame, what the simulation changed becomes components of the
//! units' entities: the simulation's own change journal names the units a
//! tick touched (and the cluster's ghosts are looked at every frame), so
//! units standing still cost nothing. Each entity written is put in
//! `galaxy_net`'s [`ChangeJournal`], so the replication looks at those only.

use bevy::ecs::query::QueryItem;
use bevy::prelude::*;
use galaxy_net::{ChangeJournal, NetUnit};
use galaxy_protocol::{ChurnRoom, IdHashMap, UnitId, UnitSample};

use super::units::{
    UnitActivity, UnitHealth, UnitKind, UnitOwner, UnitPosition, UnitTarget, UnitVelocity,
    health_of, unit_bundle,
};
use super::{RemoteUnits, SimWorld};

/// The entity of every unit the server shows (its own, its structures and
/// its neighbours' ghosts).
#[derive(Resource, Default)]
pub struct SimEntities {
    entities: IdHashMap<UnitId, Entity>,
    /// Room in `entities` for units dying and spawning (see [`ChurnRoom`]).
    room: ChurnRoom,
    /// Units that left for another server ([`RemoteUnits::units`]): their
    /// entities stay, frozen, so clients keep them until they follow.
    moved_away: Vec<UnitId>,
    /// Ids shown as ghosts last frame.
    ghosts: Vec<UnitId>,
    /// Ids to look at this frame (kept for its allocation).
    todo: Vec<UnitId>,
}

impl SimEntities {
    /// The entity of unit `id`, if the server shows it.
    pub fn get(&self, id: UnitId) -> Option<Entity> {
        self.entities.get(&id).copied()
    }

    /// Units shown.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// True when no unit is shown.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }
}

/// The components the mirror writes.
type UnitComponents = (
    &'static mut UnitOwner,
    &'static mut UnitKind,
    &'static mut UnitPosition,
    &'static mut UnitVelocity,
    &'static mut UnitHealth,
    &'static mut UnitActivity,
    &'static mut UnitTarget,
);

/// Writes what the simulation changed (units, resources, bases) and the
/// neighbours' ghosts into the entities: new units get an entity, changed
/// ones have the components that differ written, gone ones are despawned
/// (their clients are told by `galaxy_net`), except units that moved to
/// another server, which stay until their forwarding expires.
pub(crate) fn mirror_units(
    mut commands: Commands,
    mut sim: ResMut<SimWorld>,
    remote: Res<RemoteUnits>,
    mut mirror: ResMut<SimEntities>,
    mut journal: ResMut<ChangeJournal>,
    mut units: Query<UnitComponents>,
) {
    let m = &mut *mirror;
    let mut todo = std::mem::take(&mut m.todo);
    if sim.0.take_changes(&mut todo).is_none() {
        // The change list was dropped: look at everything.
        todo.extend(m.entities.keys().copied());
        todo.extend(sim.0.units().map(|(id, _)| id));
        todo.extend(sim.0.structures().map(|(id, _)| id));
    }
    // Ghosts are refreshed every frame (there are few); last frame's too,
    // to drop those that are no longer sent.
    let ghosts: Vec<UnitId> = remote
        .ghosts
        .keys()
        .copied()
        .filter(|&id| sim.0.sample(id).is_none())
        .collect();
    todo.extend(std::mem::replace(&mut m.ghosts, ghosts.clone()));
    todo.extend(ghosts);
    // Units that moved away are dropped once their forwarding expired.
    let moved = std::mem::take(&mut m.moved_away);
    todo.extend(moved.iter().copied());
    // Sorted already but for the ghosts: the stable sort merges runs in O(n).
    todo.sort();
    todo.dedup();
    sim.0.samples_of(&todo, |id, sample| {
        let sample = sample.or_else(|| remote.ghosts.get(&id).map(|g| g.to_sample()));
        match (m.entities.get(&id).copied(), sample) {
            (Some(e), Some(s)) => {
                if let Ok(c) = units.get_mut(e) {
                    write(c, &s);
                }
                journal.push(e);
            }
            (None, Some(s)) => {
                let e = commands.spawn((NetUnit(id), unit_bundle(&s))).id();
                m.entities.insert(id, e);
                m.room.make_room(&mut m.entities);
                journal.push(e);
            }
            (Some(_), None) if remote.units.contains_key(&id) => {
                // Simulated elsewhere now: clients keep its last state.
                m.moved_away.push(id);
            }
            (Some(e), None) => {
                commands.entity(e).despawn();
                m.entities.remove(&id);
            }
            (None, None) => {}
        }
    });
    m.todo = todo;
}

/// Writes the components that differ from the sample.
fn write(
    (mut owner, mut kind, mut position, mut velocity, mut health, mut activity, mut target): QueryItem<
        '_,
        '_,
        UnitComponents,
    >,
    s: &UnitSample,
) {
    owner.set_if_neq(UnitOwner(s.owner));
    kind.set_if_neq(UnitKind(s.kind));
    position.set_if_neq(UnitPosition(s.position));
    velocity.set_if_neq(UnitVelocity(s.velocity));
    health.set_if_neq(UnitHealth(health_of(s.health)));
    activity.set_if_neq(UnitActivity(s.state));
    target.set_if_neq(UnitTarget(s.target));
}
