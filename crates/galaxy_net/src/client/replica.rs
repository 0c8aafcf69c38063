//! The client's units as entities: each applied `UnitUpdate` spawns,
//! changes or despawns one entity per unit, with a [`NetUnit`], a
//! [`Replica`] of its newest snapshot and the game's own components
//! ([`UnitReplication::components`]).
//!
//! The baseline store behind it ([`ClientReplica`]) is bit-identical to
//! what the server believes this client has; acks go back every frame.
//! After a reconnect or redirect the store starts empty and the new server
//! sends every unit whole: entities are kept (and found again by their
//! [`NetUnit`]) until then, and those it does not send again within a
//! grace period are despawned, so nothing is duplicated or left behind.

use std::collections::BTreeMap;

use bevy::prelude::*;
use bevy_renet::{RenetClient, RenetReceive, RenetSend};
use galaxy_protocol::{
    ClientMessage, DeltaReceiver, IdHashMap, ReceiveOutcome, SectorId, ServerMessage, UnitEvent,
    UnitId, UnitSnapshot, codec,
};

use super::{ClientSession, LocalPlayer, ReceivedEvents, send_message};
use crate::NetSet;
use crate::channels::{ACKS, EVENTS, UPDATES};
use crate::replication::{NetUnit, TickRate, UnitReplication};
use crate::smoothing::Smoothing;
use crate::stats::NetworkStats;

/// Most sectors [`ClientReplica::bytes_by_sector`] remembers; beyond it the lowest-keyed go.
pub const MAX_SECTOR_COUNTERS: usize = 4096;

/// Seconds after a new session is connected within which its server must
/// send a unit again, or the unit's entity is despawned.
pub const RESYNC_GRACE_SECS: f64 = 2.0;

/// The units this client sees, reconstructed bit for bit from the server's
/// deltas: the baseline store the entities are made from.
#[derive(Resource)]
pub struct ClientReplica<S: UnitSnapshot> {
    /// The baseline store and current states.
    pub receiver: DeltaReceiver<S>,
    /// Unit-update bytes received per sector (what the interest filter let through).
    pub bytes_by_sector: BTreeMap<SectorId, u64>,
    /// The session the receiver belongs to.
    generation: u64,
    /// After a new session: when it started, and when it was connected.
    resync: Option<(f64, Option<f64>)>,
    /// The newest tick applied and the local time it came: the client's
    /// clock, which no update may run far ahead of.
    clock: Option<(u64, f64)>,
}

/// Ticks an update may lead the client's clock by besides the time
/// elapsed (a server sends a sector's changes within its baseline window).
const CLOCK_SLACK_TICKS: u64 = 256;

impl<S: UnitSnapshot> ClientReplica<S> {
    /// The latest tick an update arriving at `now` may carry: the newest
    /// tick applied, plus four times the ticks elapsed since at `rate`
    /// (room for a server ticking faster than this client assumes), plus
    /// some slack (any tick before the first update).
    fn latest_plausible(&self, now: f64, rate: f64) -> u64 {
        match self.clock {
            None => galaxy_protocol::MAX_TICK,
            Some((tick, at)) => {
                let elapsed = ((now - at).max(0.0) * rate * 4.0).min(1e15) as u64;
                tick.saturating_add(elapsed)
                    .saturating_add(CLOCK_SLACK_TICKS)
            }
        }
    }
}

impl<S: UnitSnapshot> Default for ClientReplica<S> {
    fn default() -> Self {
        Self {
            receiver: DeltaReceiver::default(),
            bytes_by_sector: BTreeMap::new(),
            generation: 0,
            resync: None,
            clock: None,
        }
    }
}

/// A replicated unit's newest snapshot on a client, and when it came.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Replica<S: UnitSnapshot> {
    /// The unit's state as the server sent it.
    pub state: S,
    /// The server tick of that state.
    pub tick: u64,
    /// Local time (seconds of `Time<Real>`) it arrived.
    pub received_at: f64,
}

/// The entity of every unit this client sees, by unit id.
#[derive(Resource, Default, Debug)]
pub struct ClientUnits(IdHashMap<UnitId, Entity>);

impl ClientUnits {
    /// The entity of unit `id`, if the client sees it.
    pub fn get(&self, id: UnitId) -> Option<Entity> {
        self.0.get(&id).copied()
    }

    /// Units seen.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no unit is seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every unit seen with its entity.
    pub fn iter(&self) -> impl Iterator<Item = (UnitId, Entity)> + '_ {
        self.0.iter().map(|(&id, &e)| (id, e))
    }
}

pub(super) fn build<R: UnitReplication>(app: &mut App) {
    app.init_resource::<ClientReplica<R::Snapshot>>()
        .init_resource::<ClientUnits>()
        .add_systems(
            PreUpdate,
            (receive::<R>, expire_unconfirmed::<R::Snapshot>)
                .chain()
                .in_set(NetSet::Receive)
                .after(RenetReceive),
        )
        .add_systems(
            PostUpdate,
            send_acks::<R::Snapshot>
                .in_set(NetSet::Send)
                .before(RenetSend),
        );
}

/// Decodes what arrived, applies unit updates to the baseline store and the
/// entities, and collects events; follows a redirect at once.
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
fn receive<R: UnitReplication>(
    time: Res<Time<Real>>,
    client: Option<ResMut<RenetClient>>,
    connector: Option<Res<crate::transport::ClientConnector>>,
    player: Res<LocalPlayer>,
    session: Res<ClientSession>,
    rate: Res<TickRate>,
    mut replica: ResMut<ClientReplica<R::Snapshot>>,
    mut units: ResMut<ClientUnits>,
    mut events: ResMut<ReceivedEvents>,
    mut army: ResMut<super::ArmyControlStatus>,
    mut stats: ResMut<NetworkStats>,
    mut smoothing: Option<ResMut<Smoothing<R::Snapshot>>>,
    mut commands: Commands,
) {
    let now = time.elapsed_secs_f64();
    if replica.generation != session.generation {
        // A new session: its server sends everything whole.
        replica.generation = session.generation;
        replica.receiver = DeltaReceiver::default();
        replica.resync = Some((session.started_at, None));
        replica.clock = None;
    }
    let Some(mut client) = client else {
        return;
    };
    if client.is_connected()
        && let Some((_, first @ None)) = &mut replica.resync
    {
        // The grace starts once the new session is up (its server sends
        // every unit in view at once; it may have none to send).
        *first = Some(now);
    }
    if let Some(s) = smoothing.as_deref_mut() {
        s.set_rtt(client.network_info().rtt);
    }
    'channels: for channel in [EVENTS, UPDATES] {
        while let Some(bytes) = client.receive_message(channel) {
            stats.bytes_received += bytes.len() as u64;
            stats.messages_received += 1;
            match codec::decode_server::<R::Snapshot>(&bytes) {
                Ok(ServerMessage::UnitUpdate(u)) => {
                    let r = &mut *replica;
                    if r.bytes_by_sector.len() >= MAX_SECTOR_COUNTERS
                        && !r.bytes_by_sector.contains_key(&u.sector_id)
                    {
                        r.bytes_by_sector.pop_first();
                    }
                    *r.bytes_by_sector.entry(u.sector_id).or_default() += bytes.len() as u64;
                    let latest = r.latest_plausible(now, rate.0);
                    match r.receiver.receive_by(&u, latest) {
                        Ok(outcome) => {
                            if matches!(outcome, ReceiveOutcome::Applied(_))
                                && r.clock.is_none_or(|(t, _)| u.timestamp > t)
                            {
                                r.clock = Some((u.timestamp, now));
                            }
                            stats.unit_updates += 1;
                            apply_events::<R>(
                                &mut r.receiver,
                                u.timestamp,
                                now,
                                &mut units,
                                smoothing.as_deref_mut(),
                                &mut commands,
                            );
                        }
                        Err(e) => stats.reject(e.kind(), 1),
                    }
                }
                Ok(ServerMessage::CombatEvent(e)) => events.push(e),
                Ok(ServerMessage::ArmyControl(a)) if a.player_id == player.0 => {
                    army.0 = Some(a);
                }
                Ok(ServerMessage::ArmyControl(_)) => stats.reject("foreign_army_control", 1),
                Ok(ServerMessage::Redirect(r)) => {
                    let switching = crate::redirect::on_redirect(
                        &r,
                        connector.as_deref(),
                        player.0,
                        &mut stats,
                        &mut commands,
                    );
                    if switching {
                        // The rest is from the session being left.
                        break 'channels;
                    }
                }
                Err(e) => *stats.decode_errors.entry(e.kind()).or_default() += 1,
            }
        }
    }
}

/// Turns what the receiver changed in an update at server tick `tick`
/// into entity changes (and smoothing samples).
fn apply_events<R: UnitReplication>(
    receiver: &mut DeltaReceiver<R::Snapshot>,
    tick: u64,
    now: f64,
    units: &mut ClientUnits,
    mut smoothing: Option<&mut Smoothing<R::Snapshot>>,
    commands: &mut Commands,
) {
    if let Some(s) = smoothing.as_deref_mut() {
        s.observe_clock(now, tick);
    }
    let events: Vec<UnitEvent> = receiver.drain_events().collect();
    for event in events {
        match event {
            UnitEvent::Spawned(id) | UnitEvent::Changed(id) => {
                let Some(state) = receiver.unit(id).copied() else {
                    continue;
                };
                let replica = Replica {
                    state,
                    tick,
                    received_at: now,
                };
                let components = (replica, R::components(&state, tick));
                match units.0.get(&id) {
                    Some(&e) => {
                        commands.entity(e).try_insert(components);
                    }
                    None => {
                        let e = commands.spawn((NetUnit(id), components)).id();
                        units.0.insert(id, e);
                    }
                }
                if let Some(s) = smoothing.as_deref_mut() {
                    s.observe(id, state, tick, now);
                }
            }
            UnitEvent::Despawned(id) => {
                if let Some(e) = units.0.remove(&id) {
                    commands.entity(e).try_despawn();
                }
                if let Some(s) = smoothing.as_deref_mut() {
                    s.forget(id);
                }
            }
        }
    }
}

/// After a new session's grace period, despawns the units its server did
/// not send again (a unit it did send has a newer [`Replica`]), including
/// all of them when the new server has nothing in view.
fn expire_unconfirmed<S: UnitSnapshot>(
    time: Res<Time<Real>>,
    mut replica: ResMut<ClientReplica<S>>,
    mut units: ResMut<ClientUnits>,
    replicas: Query<&Replica<S>>,
    mut smoothing: Option<ResMut<Smoothing<S>>>,
    mut commands: Commands,
) {
    let now = time.elapsed_secs_f64();
    let Some((started, Some(first))) = replica.resync else {
        return;
    };
    if now - first < RESYNC_GRACE_SECS {
        return;
    }
    replica.resync = None;
    units.0.retain(|&id, &mut e| {
        let confirmed = replicas.get(e).is_ok_and(|r| r.received_at >= started);
        if !confirmed {
            commands.entity(e).try_despawn();
            if let Some(s) = smoothing.as_deref_mut() {
                s.forget(id);
            }
        }
        confirmed
    });
}

/// Seconds between two digests of the replica sent for state verification
/// ([`galaxy_protocol::verify`]).
pub const DIGEST_EVERY_SECS: f64 = 1.0;

/// Acknowledges what the receiver applied since the last frame, and every
/// [`DIGEST_EVERY_SECS`] sends a digest of the replica (with the ack of
/// exactly what it holds) so the server can check it.
fn send_acks<S: UnitSnapshot>(
    client: Option<ResMut<RenetClient>>,
    mut replica: ResMut<ClientReplica<S>>,
    mut stats: ResMut<NetworkStats>,
    time: Res<Time<Real>>,
    mut last_digest: Local<f64>,
) {
    let Some(mut client) = client.filter(|c| c.is_connected()) else {
        return;
    };
    for ack in replica.receiver.take_acks() {
        send_message(
            &mut client,
            &mut stats,
            ACKS,
            &ClientMessage::UpdateAck(ack),
        );
    }
    let now = time.elapsed_secs_f64();
    if now - *last_digest >= DIGEST_EVERY_SECS
        && let Some(digest) = replica.receiver.digest()
    {
        *last_digest = now;
        send_message(
            &mut client,
            &mut stats,
            ACKS,
            &ClientMessage::StateDigest(digest),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::QuantizedUnit;

    /// Before any update anything goes; after one, the bound follows the
    /// local clock (four times the tick rate, plus slack) and never wraps.
    #[test]
    fn the_clock_bounds_how_far_ahead_an_update_may_be() {
        let mut r = ClientReplica::<QuantizedUnit>::default();
        assert_eq!(r.latest_plausible(5.0, 20.0), galaxy_protocol::MAX_TICK);
        r.clock = Some((1_000, 10.0));
        assert_eq!(r.latest_plausible(10.0, 20.0), 1_000 + CLOCK_SLACK_TICKS);
        assert_eq!(r.latest_plausible(11.0, 20.0), 1_080 + CLOCK_SLACK_TICKS);
        // A clock going backwards does not lower the bound below the newest tick.
        assert_eq!(r.latest_plausible(9.0, 20.0), 1_000 + CLOCK_SLACK_TICKS);
        r.clock = Some((u64::MAX - 3, 0.0));
        assert_eq!(r.latest_plausible(1e12, 60.0), u64::MAX);
    }
}
