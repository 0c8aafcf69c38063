//! Server borders: owners send their units near a neighbour's sectors as
//! `ServerSync` (the neighbour shows them as read-only ghosts and forwards
//! commands for them), and units that walk into a sector another server
//! owns are given to it as a `SectorTransfer`, orders included.

use std::collections::{BTreeMap, HashMap};

use crate::sim::{RemoteUnits, SimWorld};
use bevy::prelude::*;
use galaxy_cluster::{NodeCommand, Ownership};
use galaxy_cluster::{SectorSnapshot, SectorTransfer, ServerSync};
use galaxy_protocol::{CompressedUnit, PlayerId, SectorId, UnitId, WorldPos, WorldRect, quantize};
use galaxy_sim::World;

use super::ClusterState;

/// How far into our sectors a neighbour sees our units (500 m).
const GHOST_BAND_CM: i64 = 50_000;

/// Seconds between border syncs (10 Hz: a ghost is at most ~0.1 s old).
const SYNC_EVERY: f64 = 0.1;

/// Ghosts by the sector they are in, and what crossed the border.
#[derive(Default)]
pub struct Border {
    ghosts: HashMap<SectorId, (u32, Vec<UnitId>)>,
    last_sync: f64,
    /// Unit groups given to neighbours (walked across).
    pub transfers_out: u64,
    /// Unit groups received from neighbours.
    pub transfers_in: u64,
    /// Unit groups a neighbour refused (taken back).
    pub transfers_failed: u64,
}

impl Border {
    /// Ghost units shown now.
    pub fn ghost_count(&self) -> usize {
        self.ghosts.values().map(|(_, v)| v.len()).sum()
    }
}

fn grown(r: WorldRect, by: i64) -> WorldRect {
    WorldRect {
        min: WorldPos::new(r.min.x.saturating_sub(by), r.min.y.saturating_sub(by)),
        max: WorldPos::new(r.max.x.saturating_add(by), r.max.y.saturating_add(by)),
    }
}

/// Sends each neighbouring server our units within the band of its sectors.
pub(super) fn publish_syncs(
    mut state: ResMut<ClusterState>,
    sim: Res<SimWorld>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    if !state.acting || now - state.border.last_sync < SYNC_EVERY {
        return;
    }
    state.border.last_sync = now;
    let me = state.server_id();
    // Our sectors that touch another live server's, with that server's
    // sectors grown by the band.
    let mut watchers: BTreeMap<SectorId, Vec<(u32, WorldRect)>> = BTreeMap::new();
    let mut out: BTreeMap<u32, BTreeMap<SectorId, SectorSnapshot>> = BTreeMap::new();
    let tick = sim.0.tick();
    for (&s, &epoch) in &state.owned {
        if state.handing.contains_key(&s) {
            continue;
        }
        for n in s.neighbours() {
            let Some(o) = state.owners.get(&n) else {
                continue;
            };
            if o.server == me || !state.peers.contains_key(&o.server) {
                continue;
            }
            let Some(rect) = n.bounds() else { continue };
            watchers
                .entry(s)
                .or_default()
                .push((o.server, grown(rect, GHOST_BAND_CM)));
            out.entry(o.server).or_default().insert(
                s,
                SectorSnapshot {
                    tick,
                    epoch,
                    units: Vec::new(),
                    orders: Vec::new(),
                },
            );
        }
    }
    if watchers.is_empty() {
        return;
    }
    for (id, u) in sim.0.units() {
        // A unit that just stepped out of our sectors is still ours until
        // it is transferred: it stays in the sync, under the sector it left,
        // or the neighbour would drop its ghost a moment before receiving it.
        let mut s = state.sector_of(u.position);
        if !watchers.contains_key(&s) {
            if state.owned.contains_key(&s) {
                continue;
            }
            match s.neighbours().find(|n| watchers.contains_key(n)) {
                Some(n) => s = n,
                None => continue,
            }
        }
        let Some(ws) = watchers.get(&s) else { continue };
        for &(server, rect) in ws {
            if rect.contains(u.position)
                && let Some(snap) = out.get_mut(&server).and_then(|m| m.get_mut(&s))
            {
                snap.units.push(CompressedUnit {
                    unit_id: id,
                    unit: quantize(&u.sample()),
                });
            }
        }
    }
    for (to, sector_states) in out {
        state.send(NodeCommand::Sync {
            to,
            sync: ServerSync {
                server_id: me,
                sector_states,
                timestamp: tick,
            },
        });
    }
}

/// A neighbour's border units: they replace its ghosts of those sectors.
/// Only the sector's current owner (at its current epoch) is believed.
pub(super) fn on_sync(
    state: &mut ClusterState,
    sim: &World,
    remote: &mut RemoteUnits,
    sync: ServerSync,
) {
    for (s, snap) in sync.sector_states {
        let owner = Ownership {
            server: sync.server_id,
            epoch: snap.epoch,
        };
        if state.owners.get(&s) != Some(&owner) || state.owned.contains_key(&s) {
            continue;
        }
        clear(state, remote, s);
        let mut ids = Vec::with_capacity(snap.units.len());
        for c in snap.units {
            if sim.sample(c.unit_id).is_some() {
                continue; // ours now (it just walked in)
            }
            remote.ghosts.insert(c.unit_id, c.unit);
            remote.units.insert(c.unit_id, sync.server_id);
            ids.push(c.unit_id);
        }
        state.border.ghosts.insert(s, (sync.server_id, ids));
    }
}

/// Forgets the ghosts of `s`.
fn clear(state: &mut ClusterState, remote: &mut RemoteUnits, s: SectorId) {
    if let Some((server, ids)) = state.border.ghosts.remove(&s) {
        for id in ids {
            remote.ghosts.remove(&id);
            if remote.units.get(&id) == Some(&server) && !state.moved.contains(id) {
                remote.units.remove(&id);
            }
        }
    }
}

/// Drops ghosts of sectors whose owner changed (or that became ours).
pub(super) fn prune(state: &mut ClusterState, remote: &mut RemoteUnits) {
    let stale: Vec<SectorId> = state
        .border
        .ghosts
        .iter()
        .filter(|(s, (server, _))| {
            state.owned.contains_key(s) || state.owners.get(s).is_none_or(|o| o.server != *server)
        })
        .map(|(&s, _)| s)
        .collect();
    for s in stale {
        clear(state, remote, s);
    }
}

/// Units standing in a sector another live server owns go to it, grouped
/// by player and sector, with their orders.
pub(super) fn transfer_walkers(
    mut state: ResMut<ClusterState>,
    mut sim: ResMut<SimWorld>,
    mut remote: ResMut<RemoteUnits>,
    time: Res<Time<Real>>,
) {
    if !sim.0.tick().is_multiple_of(2) {
        return;
    }
    let me = state.server_id();
    let mut groups: BTreeMap<(u32, SectorId, SectorId, PlayerId), Vec<UnitId>> = BTreeMap::new();
    for (id, u) in sim.0.units() {
        let t = state.sector_of(u.position);
        if state.owned.contains_key(&t) {
            continue;
        }
        let Some(o) = state.owners.get(&t) else {
            continue; // unowned: claimed instead
        };
        if o.server == me || !state.peers.contains_key(&o.server) {
            continue; // a dead owner's sector: failover will settle it
        }
        let Some(from) = t.neighbours().find(|n| state.owned.contains_key(n)) else {
            continue;
        };
        groups
            .entry((o.server, from, t, u.owner))
            .or_default()
            .push(id);
    }
    if groups.is_empty() {
        return;
    }
    let now = time.elapsed_secs_f64();
    for ((to, from, t, player), ids) in groups {
        let orders = sim
            .0
            .export_orders(t, |p| t.contains(p))
            .into_iter()
            .filter(|b| b.player_id == player)
            .collect();
        let units: Vec<CompressedUnit> = ids
            .iter()
            .filter_map(|&id| {
                sim.0.sample(id).map(|s| CompressedUnit {
                    unit_id: id,
                    unit: quantize(&s),
                })
            })
            .collect();
        for &id in &ids {
            sim.0.remove_unit(id);
            remote.units.insert(id, to);
        }
        state.moved.push(now, ids);
        let epoch = state.owned[&from];
        state.send(NodeCommand::Transfer {
            to,
            transfer: SectorTransfer {
                player_id: player,
                from_sector: from,
                to_sector: t,
                epoch,
                units,
                orders,
            },
        });
    }
}

/// Units that walked in from a neighbour.
pub(super) fn received(
    state: &mut ClusterState,
    sim: &mut World,
    remote: &mut RemoteUnits,
    t: &SectorTransfer,
) {
    for c in &t.units {
        remote.units.remove(&c.unit_id);
        remote.ghosts.remove(&c.unit_id);
    }
    let added = sim.import(&t.units).added;
    sim.apply_orders(&t.orders);
    state.border.transfers_in += 1;
    info!(
        "received {added} units of player {} walking from {:?} into {:?}",
        t.player_id, t.from_sector, t.to_sector
    );
}

/// A neighbour refused units we gave it: they are ours again.
pub(super) fn take_back(
    state: &mut ClusterState,
    sim: &mut World,
    remote: &mut RemoteUnits,
    t: &SectorTransfer,
    reason: &str,
) {
    for c in &t.units {
        remote.units.remove(&c.unit_id);
    }
    sim.import(&t.units);
    sim.apply_orders(&t.orders);
    state.border.transfers_failed += 1;
    warn!(
        "{} units of player {} could not enter {:?} ({reason}): kept here",
        t.units.len(),
        t.player_id,
        t.to_sector
    );
}
