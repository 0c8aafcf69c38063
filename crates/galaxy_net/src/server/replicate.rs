//! Replicate: for each client, what changed in its sectors of interest,
//! as deltas against what it acknowledged, within its byte budget (the
//! game's events first).
//!
//! The cost per client follows what changed, not what exists: a sector is
//! looked at only when something in it changed since the client's last
//! update of it, and then only the units that changed (the index's change
//! log), unless the client has not seen the sector for a while.

use std::collections::HashMap;

use bevy::prelude::*;
use bevy_renet::RenetServer;
use bevy_renet::renet::ClientId;
use galaxy_protocol::{
    CombatEvent, QuantizedUnit, SectorId, ServerMessage, UnitSnapshot, Verification, codec,
};

use super::delay::SpectatorDelay;
use super::groups;
use super::units::{ClientReplication, ReplicatedUnits, UnitsView};
use super::{OutgoingArmyControl, OutgoingEvents, Session, Sessions, in_parallel_mut};
use crate::channels::{EVENTS, MAX_SAVED_TICKS, UPDATES};
use crate::config::NetworkConfig;
use crate::interest::{SectorIndex, in_interest, interest, interval_ticks};
use crate::replication::{ServerTick, TickRate};
use crate::stats::NetworkStats;

/// Priority weight of units in a client's far ring (near ones weigh 1).
const FAR_WEIGHT: f32 = 0.25;
/// Units a client's whole-sector scans may add per tick, at least (see
/// [`scan_allowance`]).
const MIN_SCAN_UNITS: usize = 256;

/// Units a client's whole-sector scans (a sector new to its interest, or
/// not updated for longer than the change log) may hand its sender in one
/// tick: about four times what its byte budget can send whole (a whole
/// unit is 13-16 bytes), so a view change costs the server what the client
/// can receive, not what its view holds. Sectors past the allowance are
/// scanned on the next ticks, near ones first.
fn scan_allowance(budget_bytes_per_tick: usize) -> usize {
    (budget_bytes_per_tick / 4).max(MIN_SCAN_UNITS)
}

/// Keeps one replication state per session, gives each the acks its client
/// sent this frame, checks its replica digest if one came (counted in
/// `NetworkStats`; a mismatch resends the units concerned whole), and
/// notes since when a client has owed an ack (updates in flight, none
/// acknowledged since): the server disconnects it after
/// `idle_timeout_secs`.
pub(crate) fn apply_acks<S: UnitSnapshot>(
    mut sessions: ResMut<Sessions>,
    mut replicated: ResMut<ReplicatedUnits<S>>,
    config: Res<NetworkConfig>,
    time: Res<Time<Real>>,
    mut stats: ResMut<NetworkStats>,
) {
    let now = time.elapsed_secs_f64();
    let r = &mut *replicated;
    groups::forget_departed(&mut r.clients, &mut sessions);
    for (id, s) in sessions.0.iter_mut() {
        // A grouped spectator's acks go to its group's join.
        let c = match s.follows {
            Some(leader) => match r.clients.get_mut(&leader) {
                Some(c) => c,
                None => {
                    s.follows = None;
                    continue;
                }
            },
            None => r
                .clients
                .entry(*id)
                .or_insert_with(|| ClientReplication::new(&config)),
        };
        let shared = !c.members.is_empty();
        let acked = !s.acks.is_empty();
        for ack in s.acks.drain(..) {
            if shared {
                c.join.receive(*id, &ack);
            } else {
                c.sender.receive_ack(&ack);
            }
        }
        s.unacked_since = if acked || c.sender.packets_in_flight() == 0 {
            None
        } else {
            s.unacked_since.or(Some(now))
        };
        if let Some(digest) = s.digest.take() {
            if shared {
                c.join.receive(*id, &digest.ack);
                stats.stale_digests += 1;
                continue;
            }
            match c.sender.verify(&digest) {
                Verification::Match => stats.state_checks += 1,
                Verification::Stale => stats.stale_digests += 1,
                Verification::Mismatch { resent, .. } => {
                    stats.state_checks += 1;
                    stats.state_mismatches += 1;
                    stats.units_healed += resent as u64;
                }
            }
        }
    }
    // What every member of a group received becomes its baselines.
    for c in r.clients.values_mut() {
        if !c.members.is_empty()
            && let Some(ack) = c.join.joined().filter(|a| Some(*a) != c.joined)
        {
            c.sender.receive_ack(&ack);
            c.joined = Some(ack);
        }
    }
}

/// Gives every client this tick's byte budget (and up to a few ticks'
/// saved, for clients updated less often), before anything is sent.
pub(crate) fn refill_budgets(mut sessions: ResMut<Sessions>, tick: Res<ServerTick>) {
    let tick = tick.0;
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

/// The game's events go reliably, ahead of updates, to clients that see
/// their sector, and are paid from the client's budget first. Delayed
/// spectators get them when their delayed world reaches the tick they
/// happened at.
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
pub(crate) fn send_events(
    mut server: ResMut<RenetServer>,
    mut sessions: ResMut<Sessions>,
    mut pending: ResMut<OutgoingEvents>,
    mut delay: ResMut<SpectatorDelay>,
    tick: Res<ServerTick>,
    mut stats: ResMut<NetworkStats>,
) {
    let SpectatorDelay {
        ticks: delay,
        events: held,
    } = &mut *delay;
    let delay = *delay;
    let mut send = |event: CombatEvent, delayed: bool| {
        let sector = event.sector_id;
        let message = ServerMessage::<QuantizedUnit>::CombatEvent(event);
        let Ok(bytes) = codec::encode_server(&message) else {
            return;
        };
        for (&client, s) in sessions.0.iter_mut() {
            if s.delayed == delayed && in_interest(sector, &s.near, &s.far) {
                stats.bytes_sent += bytes.len() as u64;
                stats.messages_sent += 1;
                s.budget.spend(bytes.len());
                server.send_message(client, EVENTS, bytes.clone());
            }
        }
    };
    for event in pending.0.drain(..) {
        if delay > 0 {
            held.push_back((tick.0, event.clone()));
        }
        send(event, false);
    }
    while held.front().is_some_and(|(t, _)| t + delay <= tick.0) {
        if let Some((_, event)) = held.pop_front() {
            send(event, true);
        }
    }
}

/// Sends each army-control notice reliably to its player's sessions.
pub(crate) fn send_army_control(
    mut server: ResMut<RenetServer>,
    sessions: Res<Sessions>,
    mut pending: ResMut<OutgoingArmyControl>,
    mut stats: ResMut<NetworkStats>,
) {
    for notice in pending.0.drain(..) {
        let message = ServerMessage::<QuantizedUnit>::ArmyControl(notice);
        let Ok(bytes) = codec::encode_server(&message) else {
            continue;
        };
        for (&client, s) in sessions.0.iter() {
            if s.player() == notice.player_id {
                stats.bytes_sent += bytes.len() as u64;
                stats.messages_sent += 1;
                server.send_message(client, EVENTS, bytes.clone());
            }
        }
    }
}

/// Replicate: per client, each sector of interest that changed and is due
/// (by its activity, less often in the far ring, never faster than the
/// client asked), as deltas against what the client acknowledged, within
/// its budget. Once per server tick.
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
pub(crate) fn replicate<S: UnitSnapshot>(
    mut server: ResMut<RenetServer>,
    mut sessions: ResMut<Sessions>,
    mut replicated: ResMut<ReplicatedUnits<S>>,
    index: Res<SectorIndex>,
    config: Res<NetworkConfig>,
    rate: Res<TickRate>,
    tick: Res<ServerTick>,
    mut stats: ResMut<NetworkStats>,
    mut last_tick: Local<u64>,
) {
    let tick = tick.0;
    if tick == *last_tick {
        return;
    }
    *last_tick = tick;
    let (units, delayed, replicas) = replicated.split_mut();
    // Clients are independent: several are encoded at once.
    let mut by_id: HashMap<ClientId, &mut Session> =
        sessions.0.iter_mut().map(|(&id, s)| (id, s)).collect();
    let mut clients: Vec<(ClientId, &mut ClientReplication<S>, &mut Session)> = replicas
        .iter_mut()
        .filter_map(|(&id, c)| by_id.remove(&id).map(|s| (id, c, s)))
        .collect();
    let (index, rate, units, delayed) = (&*index, *rate, &units, &delayed);
    let deferred_scans = std::sync::atomic::AtomicU64::new(0);
    in_parallel_mut(&mut clients, 8, config.server_threads, |(_, c, s)| {
        // A delayed spectator watches the delayed copy (nothing before the
        // server is as old as the delay).
        let (tick, index, units) = match (s.delayed, delayed) {
            (false, _) => (tick, index, units),
            (true, Some(d)) => (d.tick, d.index, &d.units),
            (true, None) => return,
        };
        let deferred = replicate_client(s, c, tick, index, units, rate);
        deferred_scans.fetch_add(deferred, std::sync::atomic::Ordering::Relaxed);
    });
    stats.deferred_scans += deferred_scans.into_inner();
    for (client, c, _) in clients {
        for bytes in c.outbox.drain(..) {
            // The same bytes to every member of the client's group.
            for &member in &c.members {
                stats.bytes_sent += bytes.len() as u64;
                stats.messages_sent += 1;
                stats.shared_updates += 1;
                server.send_message(member, UPDATES, bytes.clone());
            }
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

/// One client's updates for `tick` into its outbox; returns the sectors
/// whose whole scan was put off to a later tick.
fn replicate_client<S: UnitSnapshot>(
    s: &mut Session,
    c: &mut ClientReplication<S>,
    tick: u64,
    index: &SectorIndex,
    units: &UnitsView<'_, S>,
    rate: TickRate,
) -> u64 {
    let Some(view) = s.view else { return 0 };
    // Units that left the client's interest: all of them when the view
    // changed, else those that changed sector this tick.
    let mut leaving = std::mem::take(&mut c.leaving);
    leaving.clear();
    if s.interest_of != Some(view) {
        (s.near, s.far) = interest(view);
        s.interest_of = Some(view);
        let (near, far) = (&s.near, &s.far);
        c.last_sent
            .retain(|sector, _| near.contains(sector) || far.contains(sector));
        leaving.extend(c.sender.visible_units().map(|(id, _)| id).filter(|&id| {
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
        c.sender.remove_unit(id);
    }
    c.leaving = leaving;
    // A client on a poor link may ask for fewer updates per second.
    // (a mobile client gets its profile's rate at most, a spectator
    // group its slowest member's).
    let hz = [s.max_update_hz, c.max_update_hz, s.profile.max_update_hz()]
        .into_iter()
        .filter(|&hz| hz > 0)
        .min();
    let floor = hz.map_or(1, |hz| (rate.0 / f64::from(hz)).ceil().max(1.0) as u64);
    let far_factor = s.profile.far_interval_factor();
    s.budget
        .set_max_saved_ticks(floor.min(u64::from(MAX_SAVED_TICKS)) as u32);
    let sectors: Vec<(SectorId, bool)> = s
        .near
        .iter()
        .map(|c| (*c, false))
        .chain(s.far.iter().map(|c| (*c, true)))
        .collect();
    let mut allowance = scan_allowance(s.budget.bytes_per_tick());
    let mut deferred = 0;
    for (sector, is_far) in sectors {
        let since = c.last_sent.get(&sector).copied();
        let due = match since {
            None => true,
            Some(sent) => {
                index.changed_at(&sector) > sent
                    && tick.saturating_sub(sent)
                        >= interval_ticks(index.activity(&sector), rate.0 as f32, is_far)
                            .saturating_mul(if is_far { far_factor } else { 1 })
                            .max(floor)
            }
        };
        if !due {
            continue;
        }
        if allowance == 0 && since.is_none_or(|t| !index.remembers(t)) {
            deferred += 1; // a whole scan: on a later tick
            continue;
        }
        c.last_sent.insert(sector, tick);
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
                        if let Some(snapshot) = units.snapshot_in(id, cell) {
                            c.sender.set_unit_weighted(id, *snapshot, weight);
                        }
                    }
                }
                None => {
                    for id in index.units_in(&cell) {
                        if let Some(snapshot) = units.snapshot(id) {
                            c.sender.set_unit_weighted(id, *snapshot, weight);
                            allowance = allowance.saturating_sub(1);
                        }
                    }
                }
            }
        }
    }
    c.sender
        .write_messages_within(tick, &mut s.budget, &mut c.outbox);
    deferred
}
