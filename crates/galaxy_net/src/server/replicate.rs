//! Tag and Replicate: index units by sector, then for each client send what
//! changed in its sectors of interest as deltas against what it
//! acknowledged, within its byte budget (combat events first).
//!
//! The cost per client follows what changed, not what exists: a sector is
//! looked at only when something in it changed since the client's last
//! update of it, and then only the units that changed (the index's change
//! log), unless the client has not seen the sector for a while.

use bevy::prelude::*;
use bevy_renet::RenetServer;
use galaxy_protocol::{QuantizedUnit, SectorId, ServerMessage, codec};

use super::Session;
use super::simulate::{PendingEvents, ReplicatedUnits, UnitEntities, in_parallel_mut};
use super::{RemoteUnits, Sessions, SimWorld};
use crate::channels::{EVENTS, MAX_SAVED_TICKS, UPDATES};
use crate::components::{NetUnit, Replicated, Sector};
use crate::config::NetworkConfig;
use crate::interest::{SectorIndex, in_interest, interest, interval_ticks};
use crate::stats::NetworkStats;

/// Priority weight of units in a client's far ring (near ones weigh 1).
const FAR_WEIGHT: f32 = 0.25;

/// Tag: units that moved are re-indexed (entering and leaving sectors);
/// units whose replicated state changed are logged in their sector (so it
/// is replicated and its activity counted); units that are gone are
/// removed from every client whose interest holds their sector.
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
pub(crate) fn tag_changes(
    moved: Query<(&NetUnit, &Sector), Changed<Sector>>,
    changed: Query<&NetUnit, Changed<Replicated>>,
    sim: Res<SimWorld>,
    mut index: ResMut<SectorIndex>,
    mut entities: ResMut<UnitEntities>,
    mut sessions: ResMut<Sessions>,
    replicated: Res<ReplicatedUnits>,
    remote: Res<RemoteUnits>,
) {
    index.begin_tick(sim.0.tick());
    for (unit, sector) in &moved {
        index.place(unit.0, sector.0);
    }
    for unit in &changed {
        index.changed(unit.0);
    }
    let mut gone = std::mem::take(&mut entities.departed);
    gone.append(&mut entities.moved_away);
    for id in gone {
        if replicated.contains(id) {
            continue; // it came back (a handoff that failed)
        }
        if remote.units.contains_key(&id) {
            entities.moved_away.push(id);
            continue;
        }
        // Only clients whose interest held its sector may show it.
        let sector = index.sector_of(id);
        index.remove(id);
        for s in sessions.0.values_mut() {
            if sector.is_none_or(|sector| s.may_hold(sector)) {
                s.sender.remove_unit(id);
            }
        }
    }
}

/// Gives every client this tick's byte budget (and up to a few ticks'
/// saved, for clients updated less often), before anything is sent.
pub(crate) fn refill_budgets(mut sessions: ResMut<Sessions>, sim: Res<SimWorld>) {
    let tick = sim.0.tick();
    for s in sessions.0.values_mut() {
        if s.last_tick == 0 {
            s.last_tick = tick.saturating_sub(1);
        }
        let elapsed = tick
            .saturating_sub(s.last_tick)
            .min(u64::from(MAX_SAVED_TICKS));
        for _ in 0..elapsed {
            s.budget.refill();
        }
        s.last_tick = tick;
    }
}

/// Combat events go reliably, ahead of updates, to clients that see their
/// sector, and are paid from the client's budget first.
pub(crate) fn send_events(
    mut server: ResMut<RenetServer>,
    mut sessions: ResMut<Sessions>,
    mut pending: ResMut<PendingEvents>,
    mut stats: ResMut<NetworkStats>,
) {
    for event in pending.0.drain(..) {
        let Ok(bytes) =
            codec::encode_server::<QuantizedUnit>(&ServerMessage::CombatEvent(event.clone()))
        else {
            continue;
        };
        for (&client, s) in sessions.0.iter_mut() {
            if in_interest(event.sector_id, &s.near, &s.far) {
                stats.bytes_sent += bytes.len() as u64;
                stats.messages_sent += 1;
                s.budget.spend(bytes.len());
                server.send_message(client, EVENTS, bytes.clone());
            }
        }
    }
}

/// Replicate: per client, each sector of interest that changed and is due
/// (by its activity, less often in the far ring, never faster than the
/// client asked), as deltas against what the client acknowledged, within
/// its budget.
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
pub(crate) fn replicate(
    mut server: ResMut<RenetServer>,
    mut sessions: ResMut<Sessions>,
    index: Res<SectorIndex>,
    sim: Res<SimWorld>,
    replicated: Res<ReplicatedUnits>,
    config: Res<NetworkConfig>,
    mut stats: ResMut<NetworkStats>,
    mut last_tick: Local<u64>,
) {
    let tick = sim.0.tick();
    if tick == *last_tick {
        return;
    }
    *last_tick = tick;
    // Clients are independent: several are encoded at once.
    let mut clients: Vec<&mut Session> = sessions.0.values_mut().collect();
    let (index, replicated, config) = (&*index, &*replicated, &*config);
    in_parallel_mut(&mut clients, 8, config.server_threads, |s| {
        replicate_client(s, tick, index, replicated, config);
    });
    for (&client, s) in sessions.0.iter_mut() {
        for bytes in s.outbox.drain(..) {
            stats.bytes_sent += bytes.len() as u64;
            stats.messages_sent += 1;
            stats.unit_updates += 1;
            server.send_message(client, UPDATES, bytes);
        }
    }
    let (mut rtt, mut loss, n) = (0.0, 0.0, sessions.0.len().max(1) as f64);
    for &client in sessions.0.keys() {
        if let Ok(info) = server.network_info(client) {
            rtt += info.rtt;
            loss += info.packet_loss;
        }
    }
    stats.average_latency = (rtt / n * 1000.0) as f32;
    stats.packet_loss = (loss / n) as f32;
}

/// One client's updates for `tick` into its outbox.
fn replicate_client(
    s: &mut Session,
    tick: u64,
    index: &SectorIndex,
    replicated: &ReplicatedUnits,
    config: &NetworkConfig,
) {
    let Some(view) = s.view else { return };
    // Units that left the client's interest: all of them when the view
    // changed, else those that changed sector this tick.
    let mut leaving = std::mem::take(&mut s.leaving);
    leaving.clear();
    if s.interest_of != Some(view) {
        (s.near, s.far) = interest(view);
        s.interest_of = Some(view);
        let (near, far) = (&s.near, &s.far);
        s.last_sent
            .retain(|sector, _| near.contains(sector) || far.contains(sector));
        leaving.extend(s.sender.visible_units().map(|(id, _)| id).filter(|&id| {
            index
                .sector_of(id)
                .is_none_or(|sec| !in_interest(sec, near, far))
        }));
    } else {
        leaving.extend(index.moves().iter().filter_map(|m| match m.to {
            Some(to) if !in_interest(to, &s.near, &s.far) => Some(m.unit),
            _ => None,
        }));
    }
    for &id in leaving.iter() {
        s.sender.remove_unit(id);
    }
    s.leaving = leaving;
    // A client on a poor link may ask for fewer updates per second.
    let floor = match s.max_update_hz {
        0 => 1,
        hz => (config.update_rate / f32::from(hz)).ceil().max(1.0) as u64,
    };
    s.budget
        .set_max_saved_ticks(floor.min(u64::from(MAX_SAVED_TICKS)) as u32);
    let sectors: Vec<(SectorId, bool)> = s
        .near
        .iter()
        .map(|c| (*c, false))
        .chain(s.far.iter().map(|c| (*c, true)))
        .collect();
    for (sector, is_far) in sectors {
        let since = s.last_sent.get(&sector).copied();
        let due = match since {
            None => true,
            Some(sent) => {
                index.changed_at(&sector) > sent
                    && tick - sent
                        >= interval_ticks(index.activity(&sector), config.update_rate, is_far)
                            .max(floor)
            }
        };
        if !due {
            continue;
        }
        s.last_sent.insert(sector, tick);
        let weight = if is_far { FAR_WEIGHT } else { 1.0 };
        let cells = if is_far {
            // A far sector's cells that are near go at the near rate instead.
            sector
                .children()
                .filter(|c| !s.near.contains(c))
                .collect::<Vec<_>>()
        } else {
            vec![sector]
        };
        for cell in cells {
            match since.and_then(|t| index.changed_since(&cell, t)) {
                // Only units still in this cell: one logged here that has
                // since moved on is shown from its new cell's log if that
                // is in interest, and must not come back if it is not.
                Some(changed) => {
                    for id in changed {
                        if let Some(track) = replicated.track_in(id, cell) {
                            s.sender.set_unit_weighted(id, *track, weight);
                        }
                    }
                }
                None => {
                    for id in index.units_in(&cell) {
                        if let Some(track) = replicated.track(id) {
                            s.sender.set_unit_weighted(id, *track, weight);
                        }
                    }
                }
            }
        }
    }
    s.sender
        .write_messages_within(tick, &mut s.budget, &mut s.outbox);
}
