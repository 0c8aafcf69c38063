//! The client side: [`GalaxyClientPlugin`] keeps the connection (status,
//! reconnects, redirects), sends the player's [`View`], commands and acks,
//! and, for the units the game registered
//! ([`crate::AppReplicationExt::replicate_unit`]), turns every update into
//! entities ([`replica`]): one per unit in view, with a [`NetUnit`], a
//! [`Replica`] of its newest snapshot and the game's own components.
//!
//! [`NetUnit`]: crate::NetUnit

mod replica;

use std::collections::VecDeque;

use bevy::prelude::*;
use bevy_renet::{RenetClient, RenetClientPlugin, RenetReceive, RenetSend};
use galaxy_protocol::codec::MAX_CLIENT_MESSAGE_BYTES;
use galaxy_protocol::command::MAX_BATCH_COMMANDS;
use galaxy_protocol::{
    ArmyControl, BatchCommand, ClientMessage, CombatEvent, CompressedCommand, Connect, PlayerId,
    SectorId, ViewUpdate, WorldRect, codec,
};

pub use replica::{ClientReplica, ClientUnits, Replica};

use crate::NetSet;
use crate::channels::COMMANDS;
use crate::degrade::{AutoUpdateRate, adapt_update_rate};
use crate::replication::UnitReplication;
use crate::stats::NetworkStats;

/// The client half of the networking: connection status, the view, the
/// player's commands and, with [`crate::AppReplicationExt::replicate_unit`],
/// the units in view as entities. Add a transport
/// ([`crate::NetcodeTransportPlugin`]) to connect.
#[derive(Default)]
pub struct GalaxyClientPlugin;

/// Present in a client app (replication registrations look for it).
#[derive(Resource)]
pub(crate) struct ClientMarker;

impl Plugin for GalaxyClientPlugin {
    fn build(&self, app: &mut App) {
        crate::init_common(app);
        app.insert_resource(ClientMarker)
            .add_plugins(RenetClientPlugin)
            .init_resource::<ConnectionStatus>()
            .init_resource::<ReceivedEvents>()
            .init_resource::<ArmyControlStatus>()
            .init_resource::<OutgoingCommands>()
            .init_resource::<SentState>()
            .init_resource::<MaxUpdateRate>()
            .init_resource::<AutoUpdateRate>()
            .init_resource::<ClientSession>()
            .init_resource::<LocalPlayer>()
            .add_systems(PreUpdate, maintain_connection.before(RenetReceive))
            .add_systems(
                PreUpdate,
                follow_transport.in_set(NetSet::Receive).after(RenetReceive),
            )
            .add_systems(Update, adapt_update_rate)
            .add_systems(PostUpdate, send.in_set(NetSet::Send).before(RenetSend));
    }
}

/// Adds the systems that turn updates into entities of `R` (from
/// [`crate::AppReplicationExt::replicate_unit`]).
pub(crate) fn build_replication<R: UnitReplication>(app: &mut App) {
    replica::build::<R>(app);
}

/// Connection state as the design names it.
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// Not connected and not trying.
    #[default]
    Disconnected,
    /// Handshake in progress.
    Connecting,
    /// Connected and receiving.
    Connected,
    /// The connection failed or was closed, with the reason.
    Failed(String),
}

impl ConnectionStatus {
    /// The status for a transport that is connected, is connecting, has a
    /// reconnect scheduled (`retrying`), or stopped for `reason`.
    pub fn from_transport(
        connected: bool,
        connecting: bool,
        retrying: bool,
        reason: Option<String>,
    ) -> Self {
        if connected {
            Self::Connected
        } else if connecting || retrying {
            Self::Connecting
        } else {
            Self::Failed(reason.unwrap_or_else(|| "disconnected".into()))
        }
    }
}

/// The player this client plays as (from its connect token, or the id an
/// insecure client claims). Set by the transport.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalPlayer(pub PlayerId);

/// The newest army-control notice the server sent this client (who
/// commands its army, and what the AI did while it was away); `None`
/// before any.
#[derive(Resource, Default, Debug, Clone, Copy, PartialEq)]
pub struct ArmyControlStatus(pub Option<ArmyControl>);

/// Combat events received and not yet consumed by the game (drain `events`).
/// Holds at most [`ReceivedEvents::CAP`]; if the game never drains it, the
/// oldest are dropped and counted instead of growing without bound.
#[derive(Resource, Default)]
pub struct ReceivedEvents {
    /// Oldest first.
    pub events: VecDeque<CombatEvent>,
    dropped: u64,
}

impl ReceivedEvents {
    /// Most events kept.
    pub const CAP: usize = 4096;

    pub(crate) fn push(&mut self, e: CombatEvent) {
        if self.events.len() == Self::CAP {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(e);
    }

    /// Events dropped because nobody drained them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The world rectangle the player looks at; changes are sent to the server.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct View(pub WorldRect);

/// The most unit updates per second this client wants (0 = the server's
/// default); lower it when the link is poor. Sent with the view.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaxUpdateRate(pub u8);

/// Commands the game wants sent this frame (drained by the plugin).
#[derive(Resource, Default)]
pub struct OutgoingCommands(pub Vec<CompressedCommand>);

/// The current session: a new one starts on every reconnect or redirect,
/// and the replication starts again from an empty baseline store.
#[derive(Resource, Default, Debug)]
pub(crate) struct ClientSession {
    /// Sessions started so far.
    pub(crate) generation: u64,
    /// Local time the current session started.
    pub(crate) started_at: f64,
}

#[derive(Resource, Default)]
struct SentState {
    hello: bool,
    view: Option<(WorldRect, u8)>,
    /// When the view was last sent (a server takes one change per
    /// `MIN_VIEW_INTERVAL_SECS`; a faster client is a flood).
    view_at: f64,
    last_sent: f64,
}

/// Seconds of silence after which the client sends a heartbeat (its view again).
const HEARTBEAT_SECS: f64 = 1.0;

/// Reconnects after a loss; a new session starts from a clean baseline store
/// (the server sends every unit whole again), so nothing is duplicated.
fn maintain_connection(world: &mut World) {
    let now = world.resource::<Time<Real>>().elapsed_secs_f64();
    if crate::transport::maintain(world, now) {
        reset_session(world, now);
    }
}

/// A new session (reconnect or redirect): the replication starts from a
/// clean baseline store; entities stay until the new state replaces them.
pub(crate) fn reset_session(world: &mut World, now: f64) {
    let mut session = world.resource_mut::<ClientSession>();
    session.generation += 1;
    session.started_at = now;
}

/// The connection's status and what renet measures of it.
fn follow_transport(
    client: Option<Res<RenetClient>>,
    connector: Option<Res<crate::transport::ClientConnector>>,
    mut status: ResMut<ConnectionStatus>,
    mut stats: ResMut<NetworkStats>,
) {
    let Some(client) = client else {
        status.set_if_neq(ConnectionStatus::Disconnected);
        return;
    };
    // With a connector, a lost connection is being retried: show Connecting.
    let reason = client.disconnect_reason().map(|r| format!("{r:?}"));
    status.set_if_neq(ConnectionStatus::from_transport(
        client.is_connected(),
        client.is_connecting(),
        connector.is_some(),
        reason,
    ));
    let info = client.network_info();
    stats.average_latency = (info.rtt * 1000.0) as f32;
    stats.packet_loss = info.packet_loss as f32;
}

/// Encodes a client message and hands it to renet, counting it.
pub(crate) fn send_message(
    client: &mut RenetClient,
    stats: &mut NetworkStats,
    channel: u8,
    msg: &ClientMessage,
) -> bool {
    match codec::encode_client(msg) {
        Ok(bytes) => {
            stats.bytes_sent += bytes.len() as u64;
            stats.messages_sent += 1;
            client.send_message(channel, bytes);
            true
        }
        Err(e) => {
            warn!("{} not encoded: {e}", msg.kind());
            false
        }
    }
}

/// `commands` as encoded `BatchCommand`s, each within
/// [`MAX_CLIENT_MESSAGE_BYTES`] (the server refuses longer ones) and
/// [`MAX_BATCH_COMMANDS`] commands, in order; also how many commands are
/// too large to be sent even alone.
fn batches(
    commands: &[CompressedCommand],
    sector_id: SectorId,
    player_id: PlayerId,
) -> (Vec<Vec<u8>>, u64) {
    let encode = |chunk: &[CompressedCommand]| {
        codec::encode_client(&ClientMessage::BatchCommand(BatchCommand {
            sector_id,
            commands: chunk.to_vec(),
            player_id,
        }))
        .ok()
        .filter(|b| b.len() <= MAX_CLIENT_MESSAGE_BYTES)
    };
    let (mut out, mut too_large) = (Vec::new(), 0);
    let mut todo: Vec<&[CompressedCommand]> = commands.chunks(MAX_BATCH_COMMANDS).rev().collect();
    while let Some(chunk) = todo.pop() {
        match encode(chunk) {
            Some(bytes) => out.push(bytes),
            None if chunk.len() > 1 => {
                let (a, b) = chunk.split_at(chunk.len() / 2);
                todo.push(b);
                todo.push(a);
            }
            None => too_large += 1,
        }
    }
    (out, too_large)
}

/// Sends `Connect` once per connection, the view and rate when they change
/// (and as a heartbeat each second of silence), and the queued commands.
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is a resource it needs
fn send(
    time: Res<Time<Real>>,
    client: Option<ResMut<RenetClient>>,
    player: Res<LocalPlayer>,
    view: Option<Res<View>>,
    rate: Res<MaxUpdateRate>,
    config: Option<Res<crate::NetworkConfig>>,
    mut outgoing: ResMut<OutgoingCommands>,
    mut sent: ResMut<SentState>,
    mut stats: ResMut<NetworkStats>,
) {
    let Some(mut client) = client.filter(|c| c.is_connected()) else {
        sent.hello = false;
        sent.view = None;
        return;
    };
    let player = player.0;
    let now = time.elapsed_secs_f64();
    if now - sent.last_sent >= HEARTBEAT_SECS {
        // Nothing went out for a while: resend the view so the server knows we are here.
        sent.view = None;
    }
    let mut any = false;
    if !sent.hello {
        sent.hello = true;
        let hello = Connect {
            player_id: player,
            auth_token: String::new(),
            protocol_version: galaxy_protocol::PROTOCOL_VERSION,
        };
        any |= send_message(
            &mut client,
            &mut stats,
            COMMANDS,
            &ClientMessage::Connect(hello),
        );
    }
    let view_due = now - sent.view_at >= crate::server::MIN_VIEW_INTERVAL_SECS;
    if let Some(view) = view.filter(|v| view_due && sent.view != Some((v.0, rate.0))) {
        sent.view = Some((view.0, rate.0));
        sent.view_at = now;
        let update = ViewUpdate {
            view: view.0,
            max_update_hz: rate.0,
            profile: config.map(|c| c.profile).unwrap_or_default(),
        };
        any |= send_message(
            &mut client,
            &mut stats,
            COMMANDS,
            &ClientMessage::ViewUpdate(update),
        );
    }
    if !outgoing.0.is_empty() {
        let sector_id = sent
            .view
            .map_or(SectorId::new(0, 0, 0), |v| SectorId::at(v.0.min));
        let cmds: Vec<CompressedCommand> = outgoing.0.drain(..).collect();
        let (messages, too_large) = batches(&cmds, sector_id, player);
        if too_large > 0 {
            warn!("{too_large} commands too large for one message were not sent");
            stats.reject("command_too_large", too_large);
        }
        for bytes in messages {
            stats.bytes_sent += bytes.len() as u64;
            stats.messages_sent += 1;
            client.send_message(COMMANDS, bytes);
            any = true;
        }
    }
    if any {
        sent.last_sent = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::CombatEventType;

    /// Connecting -> Connected -> (link lost, retry scheduled) Connecting ->
    /// Connected; without a retry a loss is `Failed` with the reason.
    #[test]
    fn connection_status_follows_the_transport() {
        use ConnectionStatus::*;
        let s = ConnectionStatus::from_transport;
        assert_eq!(s(false, true, false, None), Connecting);
        assert_eq!(s(true, false, false, None), Connected);
        assert_eq!(s(false, false, true, Some("timeout".into())), Connecting);
        assert_eq!(s(true, false, true, None), Connected);
        assert_eq!(
            s(false, false, false, Some("ConnectionDenied".into())),
            Failed("ConnectionDenied".into())
        );
        assert_eq!(s(false, false, false, None), Failed("disconnected".into()));
    }

    /// Commands naming many scattered units go out as several batches,
    /// each within the server's limit, none lost, in order.
    #[test]
    fn batches_fit_the_servers_message_limit() {
        let scattered = |k: u64| CompressedCommand::Stop {
            units: galaxy_protocol::UnitIdList::from_ids((0..4_000).map(|i| k * 1_000_000 + i * 2))
                .unwrap(),
        };
        let commands: Vec<CompressedCommand> = (0..300).map(scattered).collect();
        let (messages, too_large) = batches(&commands, SectorId::new(0, 0, 0), 7);
        assert_eq!(too_large, 0);
        assert!(messages.len() > 2, "{} messages", messages.len());
        let mut sent = Vec::new();
        for m in &messages {
            assert!(m.len() <= MAX_CLIENT_MESSAGE_BYTES);
            let Ok(ClientMessage::BatchCommand(b)) = codec::decode_client(m) else {
                panic!("a batch")
            };
            assert!(b.commands.len() <= MAX_BATCH_COMMANDS);
            sent.extend(b.commands);
        }
        assert_eq!(sent, commands);
        // One command over the limit on its own is counted, not sent.
        let huge = CompressedCommand::Stop {
            units: galaxy_protocol::UnitIdList::from_ids((0..60_000).map(|i| i * 7)).unwrap(),
        };
        let (messages, too_large) = batches(&[huge], SectorId::new(0, 0, 0), 7);
        assert_eq!((messages.len(), too_large), (0, 1));
    }

    #[test]
    fn undrained_events_are_bounded_and_counted() {
        let mut r = ReceivedEvents::default();
        for t in 0..5000 {
            r.push(CombatEvent {
                sector_id: SectorId::new(0, 0, 0),
                event_type: CombatEventType::UnitDestroyed,
                participants: vec![t],
                timestamp: t,
            });
        }
        assert_eq!(r.events.len(), ReceivedEvents::CAP);
        assert_eq!(r.dropped(), 5000 - ReceivedEvents::CAP as u64);
        assert_eq!(
            r.events.front().unwrap().timestamp,
            5000 - ReceivedEvents::CAP as u64
        );
    }
}
