//! Planned sector migration, the game's half: on a `LoadBalance` order the
//! old owner drains the sector (its units leave the simulation at one
//! tick, with their orders, and are parked), sends that state to the new
//! owner, and on its confirmation forwards the commands that arrived
//! meanwhile; if the handoff fails, the parked units come back untouched.
//! Commands for units that moved keep being forwarded for a while, until
//! the clients that give them have followed (redirects).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use crate::sim::RemoteUnits;
use bevy::prelude::*;
use galaxy_cluster::SectorSnapshot;
use galaxy_cluster::{Epoch, NodeCommand, Ownership};
use galaxy_protocol::{
    BatchCommand, CompressedCommand, CompressedUnit, PlayerId, SectorId, UnitId,
};
use galaxy_sim::World;

use super::ClusterState;

/// Seconds commands for a moved unit are still forwarded to its new server.
const FORWARD_FOR_SECS: f64 = 60.0;

/// A sector drained for a handoff: its state at the drain tick, and the
/// commands for its units that arrived since.
pub(super) struct Parked {
    units: Vec<CompressedUnit>,
    orders: Vec<BatchCommand>,
    ids: HashSet<UnitId>,
    buffered: Vec<(PlayerId, CompressedCommand)>,
}

/// Units handed to other servers, oldest first, to stop forwarding after
/// [`FORWARD_FOR_SECS`] (so the map of remote units stays bounded).
#[derive(Default)]
pub(super) struct MovedUnits {
    batches: VecDeque<(f64, Vec<UnitId>)>,
    ids: HashSet<UnitId>,
}

impl MovedUnits {
    /// Remembers units given to another server at `now`.
    pub(super) fn push(&mut self, now: f64, ids: Vec<UnitId>) {
        self.ids.extend(ids.iter().copied());
        self.batches.push_back((now, ids));
    }

    /// Whether `id` was given away recently (commands for it are forwarded).
    pub(super) fn contains(&self, id: UnitId) -> bool {
        self.ids.contains(&id)
    }

    /// Forgets units handed off long enough ago.
    pub(super) fn expire(&mut self, remote: &mut RemoteUnits, now: f64) {
        while self
            .batches
            .front()
            .is_some_and(|(t, _)| now - t > FORWARD_FOR_SECS)
        {
            if let Some((_, ids)) = self.batches.pop_front() {
                for id in ids {
                    self.ids.remove(&id);
                    if !remote.ghosts.contains_key(&id) {
                        remote.units.remove(&id);
                    }
                }
            }
        }
    }
}

/// Drains `sector` for server `to`: its units and orders leave the
/// simulation now and go out as one snapshot; commands naming them are
/// held (through [`RemoteUnits`]) until the handoff is settled.
pub(super) fn park(
    state: &mut ClusterState,
    sim: &mut World,
    remote: &mut RemoteUnits,
    sector: SectorId,
    to: u32,
) {
    let Some(&epoch) = state.owned.get(&sector) else {
        warn!("asked to hand {sector:?} to server {to}, but it is not ours");
        return;
    };
    if state.handing.contains_key(&sector) || to == state.server_id() {
        return;
    }
    let units = sim.export(|p| sector.contains(p));
    let orders = sim.export_orders(sector, |p| sector.contains(p));
    sim.remove_where(|p| sector.contains(p));
    let ids: HashSet<UnitId> = units.iter().map(|c| c.unit_id).collect();
    for &id in &ids {
        remote.units.insert(id, to);
    }
    let snapshot = SectorSnapshot {
        tick: sim.tick(),
        epoch,
        units: units.clone(),
        orders: orders.clone(),
    };
    info!(
        "handing sector {sector:?} to server {to}: {} units drained at tick {}",
        units.len(),
        sim.tick()
    );
    state.handing.insert(
        sector,
        Parked {
            units,
            orders,
            ids,
            buffered: Vec::new(),
        },
    );
    state.send(NodeCommand::Handoff {
        sector,
        to,
        snapshot,
    });
}

/// The new owner confirmed: the sector is gone from here; the commands
/// held meanwhile follow the units.
pub(super) fn handed_off(
    state: &mut ClusterState,
    sector: SectorId,
    to: u32,
    epoch: Epoch,
    elapsed: Duration,
    now: f64,
) {
    state.owned.remove(&sector);
    state.owners.insert(sector, Ownership { server: to, epoch });
    state.handoffs += 1;
    let Some(parked) = state.handing.remove(&sector) else {
        return;
    };
    info!(
        "handed sector {sector:?} to server {to} (epoch {epoch}) in {:.2} ms: {} units, {} held commands forwarded",
        elapsed.as_secs_f64() * 1000.0,
        parked.units.len(),
        parked.buffered.len()
    );
    for (player_id, command) in parked.buffered {
        forward(state, to, sector, player_id, command);
    }
    state.moved.push(now, parked.ids.into_iter().collect());
}

/// The handoff did not happen: the sector is still ours, its units come
/// back as they were and the held commands apply here.
pub(super) fn failed(
    state: &mut ClusterState,
    sim: &mut World,
    remote: &mut RemoteUnits,
    sector: SectorId,
    to: u32,
    reason: &str,
) {
    let Some(parked) = state.handing.remove(&sector) else {
        return;
    };
    warn!("handing {sector:?} to server {to} failed ({reason}): units restored here");
    for id in &parked.ids {
        remote.units.remove(id);
    }
    sim.import(&parked.units);
    sim.apply_orders(&parked.orders);
    for (player, command) in &parked.buffered {
        sim.apply_command(*player, command);
    }
}

/// Units that came (back) to us no longer count as remote.
pub(super) fn arrived(remote: &mut RemoteUnits, snapshot: &SectorSnapshot) {
    for c in &snapshot.units {
        remote.units.remove(&c.unit_id);
    }
}

fn forward(
    state: &mut ClusterState,
    to: u32,
    sector: SectorId,
    player_id: PlayerId,
    command: CompressedCommand,
) {
    state.send(NodeCommand::Forward {
        to,
        batch: BatchCommand {
            sector_id: sector,
            commands: vec![command],
            player_id,
        },
    });
}

/// Commands the network layer split off for remote units: held while
/// their sector's handoff is in flight, otherwise sent to their server.
pub(super) fn forward_commands(mut state: ResMut<ClusterState>, mut remote: ResMut<RemoteUnits>) {
    if remote.forwarded.is_empty() {
        return;
    }
    let forwarded = std::mem::take(&mut remote.forwarded);
    'commands: for (player, server, command) in forwarded {
        let first = command.units().iter().next();
        for parked in state.handing.values_mut() {
            if first.is_some_and(|u| parked.ids.contains(&u)) {
                parked.buffered.push((player, command));
                continue 'commands;
            }
        }
        let sector = SectorId::new(0, 0, 0);
        forward(&mut state, server, sector, player, command);
    }
}
