//! Spectators watching the same view share one encoding of their updates
//! (`NetworkConfig::share_spectator_updates`).
//!
//! A group is one client's replication state (its leader's) with
//! members: the leader's updates are encoded once and the same bytes go
//! to every member. The sender is given the members' acks joined (a
//! packet counts as received when all of them acknowledged it; see
//! `galaxy_protocol::shared`), so every baseline it names is one each
//! member holds.
//!
//! - **Joining.** A spectator that has not been sent anything yet joins
//!   the group of the same view, delay and link profile (a group goes at
//!   the lowest update rate its members ask for); the group's stream
//!   restarts (every unit whole again), since the newcomer has none of the
//!   acknowledged states. A spectator with no such group leads its own,
//!   which the next one joins.
//! - **Leaving.** A member whose view (or profile) changes, or whose acks
//!   stop for [`MAX_MEMBER_SILENCE_SECS`], leaves with a clone of the
//!   group's stream and goes on alone: a slow member must not hold back
//!   everyone's baselines. A leader leaving hands the
//!   group to its first member; so does one that disconnects.
//! - **Not checked.** Replica digests of grouped spectators are counted
//!   as stale: the group's sender knows what all members hold, not what
//!   each holds.

use bevy::prelude::*;
use bevy_renet::renet::ClientId;
use galaxy_protocol::{LinkProfile, UnitSnapshot, WorldRect};

use super::units::{ClientReplication, Clients, ReplicatedUnits};
use super::{Session, Sessions};
use crate::config::NetworkConfig;
use crate::interest::interest;

/// Seconds a member may owe its group an ack (updates in flight, none
/// acknowledged since) before it leaves: a silent or slow member would
/// hold back every member's baselines. Well above a round trip; about
/// the sender's own wait before it calls a packet lost.
pub(crate) const MAX_MEMBER_SILENCE_SECS: f64 = 0.5;

/// What spectators must share to share updates: view, link profile and
/// delay. Not the update rate a client asks for (it moves with each
/// client's link): a group is sent at the lowest its members ask for.
type Key = (WorldRect, LinkProfile, bool);

/// The group a session could share, if it is a spectator with a view.
fn key(s: &Session) -> Option<Key> {
    if !crate::tokens::is_spectator(s.player) {
        return None;
    }
    Some((s.view?, s.profile, s.delayed))
}

/// Members (and leaders) that disconnected leave their groups; a group
/// whose leader left goes on under its first member. Before acks are taken.
pub(crate) fn forget_departed<S: UnitSnapshot>(clients: &mut Clients<S>, sessions: &mut Sessions) {
    for c in clients.values_mut() {
        let (members, join) = (&mut c.members, &mut c.join);
        members.retain(|m| {
            let here = sessions.0.contains_key(m);
            if !here {
                join.remove(*m);
            }
            here
        });
    }
    let gone: Vec<ClientId> = clients
        .keys()
        .filter(|id| !sessions.0.contains_key(id))
        .copied()
        .collect();
    for id in gone {
        if let Some(c) = clients.remove(&id) {
            hand_over(c, id, clients, sessions);
        }
    }
}

/// The group `c` of `leader`, who leaves it, goes on under its first
/// member (nothing happens to a group without members).
fn hand_over<S: UnitSnapshot>(
    mut c: ClientReplication<S>,
    leader: ClientId,
    clients: &mut Clients<S>,
    sessions: &mut Sessions,
) {
    if c.members.is_empty() {
        return;
    }
    c.join.remove(leader);
    let next = c.members.remove(0);
    for m in &c.members {
        if let Some(s) = sessions.0.get_mut(m) {
            s.follows = Some(next);
        }
    }
    if let Some(s) = sessions.0.get_mut(&next) {
        s.follows = None;
    }
    c.alone_if_no_members();
    clients.insert(next, c);
}

/// True if session `id` has owed its group an ack for too long.
fn silent(sessions: &Sessions, id: ClientId, now: f64) -> bool {
    sessions
        .0
        .get(&id)
        .and_then(|s| s.unacked_since)
        .is_some_and(|t| now - t > MAX_MEMBER_SILENCE_SECS)
}

/// Forms and breaks the groups for this tick, before replication: members
/// that no longer match or are silent leave, spectators not yet sent anything
/// join the group of their view, and members keep their interest current
/// (their events go by it, and a member may come to lead).
pub(crate) fn regroup<S: UnitSnapshot>(
    mut sessions: ResMut<Sessions>,
    mut replicated: ResMut<ReplicatedUnits<S>>,
    config: Res<NetworkConfig>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    let clients = &mut replicated.clients;
    let sessions = &mut *sessions;
    let share = config.share_spectator_updates;
    let leaders: Vec<ClientId> = clients
        .iter()
        .filter(|(_, c)| !c.members.is_empty())
        .map(|(id, _)| *id)
        .collect();
    for mut leader in leaders {
        // A leader whose view changed, or that is silent, leaves the group
        // to its first member.
        let Some(c) = clients.get(&leader) else {
            continue;
        };
        let Some(&first) = c.members.first() else {
            continue;
        };
        let first_key = sessions.0.get(&first).and_then(key);
        if (first_key != sessions.0.get(&leader).and_then(key) || silent(sessions, leader, now))
            && let Some(c) = clients.remove(&leader)
        {
            let alone = c.for_leaver();
            hand_over(c, leader, clients, sessions);
            clients.insert(leader, alone);
            leader = first;
        }
        // Members that no longer match it, or are silent, leave with the
        // stream they have.
        let group_key = sessions.0.get(&leader).and_then(key);
        let Some(c) = clients.get(&leader) else {
            continue;
        };
        let leaving: Vec<ClientId> = c
            .members
            .iter()
            .filter(|&&m| {
                let same = share && sessions.0.get(&m).and_then(key) == group_key;
                !(same && group_key.is_some() && !silent(sessions, m, now))
            })
            .copied()
            .collect();
        for m in leaving {
            let Some(c) = clients.get_mut(&leader) else {
                break;
            };
            c.remove_member(m);
            let alone = c.for_leaver();
            if let Some(s) = sessions.0.get_mut(&m) {
                s.follows = None;
            }
            clients.insert(m, alone);
        }
    }
    // Spectators not yet sent anything join the group of their view.
    if share {
        let mut groups: std::collections::HashMap<Key, ClientId> = Default::default();
        let mut fresh = Vec::new();
        for (&id, s) in sessions.0.iter() {
            let (Some(k), None) = (key(s), s.follows) else {
                continue;
            };
            match clients.get(&id) {
                Some(c) if !c.is_fresh() => {
                    groups.entry(k).or_insert(id);
                }
                _ => fresh.push((id, k)),
            }
        }
        fresh.sort_unstable_by_key(|(id, _)| *id);
        for (id, k) in fresh {
            match groups.get(&k) {
                Some(&leader) => join(id, leader, clients, sessions),
                None => {
                    groups.insert(k, id);
                }
            }
        }
    }
    // A group goes at the lowest update rate a member asks for.
    for (id, c) in clients.iter_mut() {
        c.max_update_hz = c
            .members
            .iter()
            .chain([id])
            .filter_map(|m| sessions.0.get(m))
            .map(|s| s.max_update_hz)
            .filter(|&hz| hz > 0)
            .min()
            .unwrap_or(0);
    }
    // Members keep their interest current.
    for s in sessions.0.values_mut() {
        if let (Some(_), Some(view)) = (s.follows, s.view)
            && s.interest_of != Some(view)
        {
            (s.near, s.far) = interest(view);
            s.interest_of = Some(view);
        }
    }
}

/// Spectator `id` joins `leader`'s group: the group's stream restarts for
/// a receiver with nothing.
fn join<S: UnitSnapshot>(
    id: ClientId,
    leader: ClientId,
    clients: &mut Clients<S>,
    sessions: &mut Sessions,
) {
    let Some(c) = clients.get_mut(&leader) else {
        return;
    };
    // A client alone has an empty join (see `alone_if_no_members`).
    c.join.add(leader);
    c.join.add(id);
    c.members.push(id);
    c.sender.restart_receiver();
    clients.remove(&id);
    if let Some(s) = sessions.0.get_mut(&id) {
        s.follows = Some(leader);
    }
}
