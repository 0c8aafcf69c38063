//! The RTS on the server: [`SimPlugin`] runs `galaxy_sim` in
//! `NetSet::Simulate` (the players' commands, then one tick), sets the
//! server tick from it, announces its combat events, and each frame writes
//! what the simulation changed into the units' entities ([`SimEntities`]),
//! which `galaxy_net` replicates ([`RtsUnits`]).
//!
//! The simulation keeps its own dense tables for speed (100,000 units);
//! the entities are what the rest of the server and the network see.

mod mirror;
pub mod record;
mod remote;
#[cfg(test)]
mod tests;
mod units;

use std::collections::HashSet;

use bevy::prelude::*;
use galaxy_net::{
    AppReplicationExt, ChangeJournal, NetSet, NetworkStats, OutgoingEvents, ReceivedCommands,
    ServerTick, TickPhase, TickRate, mark_phase,
};
use galaxy_protocol::PlayerId;
use galaxy_sim::{SimConfig, World};

pub use mirror::SimEntities;
pub use remote::RemoteUnits;
pub use units::{
    RtsUnits, UnitActivity, UnitHealth, UnitKind, UnitOwner, UnitPosition, UnitTarget,
    UnitVelocity, health_of, unit_bundle,
};

/// The authoritative simulation.
#[derive(Resource, Default)]
pub struct SimWorld(pub World);

/// What the simulation did with the players' commands.
#[derive(Resource, Default, Debug, Clone, PartialEq, Eq)]
pub struct SimStats {
    /// Client commands applied to the local simulation.
    pub commands_applied: u64,
    /// Client commands (or parts of them) handed to [`RemoteUnits`] for
    /// the server that simulates their units.
    pub commands_forwarded: u64,
}

/// The RTS simulation and its replication. Add it after
/// `GalaxyServerPlugin { tick: TickPolicy::Manual }`: the simulation's
/// tick is the server tick (it may pause, e.g. a cluster member whose
/// lease lapsed). The world's tick rate is the [`TickRate`].
#[derive(Default)]
pub struct SimPlugin {
    /// Rules of the world (its `tick_hz` is taken from the [`TickRate`]).
    pub config: SimConfig,
    /// Something else steps the world and sets the server tick (a replay:
    /// `crate::server::replay`); the players' commands are then not applied.
    pub stepped_elsewhere: bool,
}

impl Plugin for SimPlugin {
    fn build(&self, app: &mut App) {
        let rate = app.world().resource::<TickRate>().0;
        let config = SimConfig {
            tick_hz: rate.round().max(1.0) as u32,
            ..self.config
        };
        app.insert_resource(SimWorld(World::new(config)))
            .init_resource::<SimEntities>()
            .init_resource::<RemoteUnits>()
            .init_resource::<SimStats>()
            .init_resource::<Refusals>()
            .insert_resource(ChangeJournal::enabled())
            .replicate_unit::<RtsUnits>()
            .add_systems(
                PostUpdate,
                (
                    mark_phase(TickPhase::Other),
                    mirror::mirror_units,
                    mark_phase(TickPhase::Mirror),
                )
                    .chain()
                    .before(NetSet::Tag),
            );
        if self.stepped_elsewhere {
            return;
        }
        app.add_systems(
            FixedUpdate,
            (
                mark_phase(TickPhase::Other),
                apply_commands,
                mark_phase(TickPhase::Commands),
                step_simulation,
                mark_phase(TickPhase::Step),
            )
                .chain()
                .in_set(NetSet::Simulate),
        );
    }
}

/// Players and reasons already logged (each refusal is logged once).
#[derive(Resource, Default)]
struct Refusals(HashSet<(PlayerId, &'static str)>);

/// Applies the commands received to the simulation: authority is the
/// simulation's (only the sender's own units obey; the rest is refused
/// and counted), and commands for units another server simulates are
/// split off for it.
fn apply_commands(
    mut sim: ResMut<SimWorld>,
    mut received: ResMut<ReceivedCommands>,
    mut remote: ResMut<RemoteUnits>,
    mut stats: ResMut<NetworkStats>,
    mut sim_stats: ResMut<SimStats>,
    mut logged: ResMut<Refusals>,
) {
    for (player, cmd) in received.0.drain(..) {
        let before = remote.forwarded.len();
        let local = remote.split(player, cmd);
        sim_stats.commands_forwarded += (remote.forwarded.len() - before) as u64;
        let Some(cmd) = local else {
            continue;
        };
        sim_stats.commands_applied += 1;
        let out = sim.0.apply_command(player, &cmd);
        let reasons = [
            ("not_owned", out.not_owned),
            ("unknown_unit", out.unknown),
            ("invalid_target", u64::from(out.invalid_target)),
            ("foreign_ids", u64::from(out.cut_short)),
        ];
        for (reason, n) in reasons.into_iter().filter(|r| r.1 > 0) {
            stats.reject(reason, n);
            if logged.0.insert((player, reason)) {
                warn!(
                    "player {player}: order refused ({reason}); further refusals for this reason are counted, not logged"
                );
            }
        }
    }
}

/// One simulation tick (recorded, with `--record`); its tick is the
/// server's, its events go out.
fn step_simulation(
    mut sim: ResMut<SimWorld>,
    mut events: ResMut<OutgoingEvents>,
    mut tick: ResMut<ServerTick>,
    recording: Option<ResMut<record::Recording>>,
) {
    let new = sim.0.step();
    if let Some(mut rec) = recording {
        // Before anything else changes the world: what comes next belongs
        // to the next tick.
        rec.after_step(&mut sim.0);
    }
    events.0.extend(new);
    tick.0 = sim.0.tick();
}
