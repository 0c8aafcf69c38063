//! The authoritative tick: apply the commands received, step the
//! simulation, and mirror every unit into the ECS with its replicated
//! (dead-reckoned) state.

use std::collections::HashMap;

use bevy::prelude::*;
use bevy_renet::renet::ClientId;
use galaxy_protocol::{CombatEvent, CompressedCommand, DeadReckoner, UnitId};

use super::{RemoteUnits, Sessions, SimWorld};
use crate::components::{NetUnit, Position, Replicated};
use crate::stats::NetworkStats;

/// Commands received this frame, applied at the next simulation tick.
#[derive(Resource, Default)]
pub(crate) struct CommandQueue(pub(crate) Vec<(ClientId, CompressedCommand)>);

/// Events from simulation ticks not yet sent.
#[derive(Resource, Default)]
pub(crate) struct PendingEvents(pub(crate) Vec<CombatEvent>);

/// The replicated track of every unit this server shows (one for all
/// clients; see [`DeadReckoner`]). Its threshold is
/// `NetworkConfig::reckoning_threshold_cm`.
#[derive(Resource, Default)]
pub struct Reckoner(pub DeadReckoner);

/// Unit id -> entity, and units that died since the last replication.
#[derive(Resource, Default)]
pub(crate) struct UnitEntities {
    /// The entity and the last tick the unit was seen.
    pub(crate) entities: HashMap<UnitId, (Entity, u64)>,
    pub(crate) departed: Vec<UnitId>,
    /// Departed units that moved to another server ([`RemoteUnits`]): not
    /// removed from clients, who keep their last state until they follow.
    pub(crate) moved_away: Vec<UnitId>,
}

pub(crate) fn apply_commands(
    mut sim: ResMut<SimWorld>,
    mut queue: ResMut<CommandQueue>,
    mut sessions: ResMut<Sessions>,
    mut stats: ResMut<NetworkStats>,
    mut remote: ResMut<RemoteUnits>,
) {
    for (client, cmd) in queue.0.drain(..) {
        let before = remote.forwarded.len();
        let local = remote.split(client, cmd);
        stats.commands_forwarded += (remote.forwarded.len() - before) as u64;
        let Some(cmd) = local else {
            continue;
        };
        stats.commands_applied += 1;
        let out = sim.0.apply_command(client, &cmd);
        let reasons = [
            ("not_owned", out.not_owned),
            ("unknown_unit", out.unknown),
            ("invalid_target", u64::from(out.invalid_target)),
        ];
        for (reason, n) in reasons.into_iter().filter(|r| r.1 > 0) {
            stats.reject(reason, n);
            if let Some(s) = sessions.0.get_mut(&client) {
                s.log_once(reason);
            }
        }
    }
}

pub(crate) fn step_simulation(mut sim: ResMut<SimWorld>, mut events: ResMut<PendingEvents>) {
    let new = sim.0.step();
    events.0.extend(new);
}

/// Writes the simulation (units, then resources and bases, then ghosts)
/// into ECS components, touching only what changed: the true position,
/// and the replicated state the [`Reckoner`] keeps for clients.
pub(crate) fn mirror_units(
    mut commands: Commands,
    sim: Res<SimWorld>,
    remote: Res<RemoteUnits>,
    mut reckoner: ResMut<Reckoner>,
    mut entities: ResMut<UnitEntities>,
    mut units: Query<(&mut Position, &mut Replicated)>,
) {
    let tick = sim.0.tick();
    let ghosts = remote
        .ghosts
        .iter()
        .filter(|(id, _)| sim.0.sample(**id).is_none())
        .map(|(&id, q)| (id, q.to_sample()));
    let samples = sim
        .0
        .units()
        .map(|(id, u)| (id, u.sample()))
        .chain(sim.0.structures())
        .chain(ghosts);
    let entities = &mut *entities;
    for (id, sample) in samples {
        let track = reckoner.0.observe(id, tick, &sample);
        let known = entities.entities.get_mut(&id).and_then(|(e, seen)| {
            *seen = tick;
            units.get_mut(*e).ok()
        });
        match known {
            Some((mut p, mut r)) => {
                p.set_if_neq(Position(sample.position));
                r.set_if_neq(Replicated(track));
            }
            None => {
                let e = commands
                    .spawn((NetUnit(id), Position(sample.position), Replicated(track)))
                    .id();
                entities.entities.insert(id, (e, tick));
            }
        }
    }
    let departed = &mut entities.departed;
    entities.entities.retain(|&id, &mut (e, seen)| {
        let alive = seen == tick;
        if !alive {
            commands.entity(e).despawn();
            departed.push(id);
        }
        alive
    });
}
