//! The client side: apply unit updates to the baseline store, acknowledge
//! them, collect combat events, and send the view and the player's commands.

use bevy::prelude::*;
use bevy_renet::RenetClient;
use bevy_renet::{RenetReceive, RenetSend};
use galaxy_protocol::{
    BatchCommand, ClientMessage, CombatEvent, CompressedCommand, Connect, DeltaReceiver, PlayerId,
    SectorId, ServerMessage, ViewUpdate, WorldRect, codec,
};

use crate::NetSet;
use crate::channels::{ACKS, COMMANDS, EVENTS, UPDATES};
use crate::degrade::{AutoUpdateRate, adapt_update_rate};
use crate::smoothing::{Smoothing, SmoothingConfig, SmoothingSet, advance_smoothing};
use crate::stats::NetworkStats;

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

/// The units this client sees, reconstructed bit for bit from the server's deltas.
#[derive(Resource)]
pub struct ClientReplica {
    /// The player this client plays as.
    pub player: PlayerId,
    /// The baseline store and current states.
    pub receiver: DeltaReceiver,
    /// Unit-update bytes received per sector (what the interest filter let through).
    pub bytes_by_sector: std::collections::BTreeMap<SectorId, u64>,
}

/// Combat events received and not yet consumed by the game (drain `events`).
/// Holds at most [`ReceivedEvents::CAP`]; if the game never drains it, the
/// oldest are dropped and counted instead of growing without bound.
#[derive(Resource, Default)]
pub struct ReceivedEvents {
    /// Oldest first.
    pub events: std::collections::VecDeque<CombatEvent>,
    dropped: u64,
}

impl ReceivedEvents {
    /// Most events kept.
    pub const CAP: usize = 4096;

    fn push(&mut self, e: CombatEvent) {
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

#[derive(Resource, Default)]
struct SentState {
    hello: bool,
    view: Option<(WorldRect, u8)>,
    last_sent: f64,
}

/// Most sectors [`ClientReplica::bytes_by_sector`] remembers; beyond it the lowest-keyed go.
pub const MAX_SECTOR_COUNTERS: usize = 4096;

/// Seconds of silence after which the client sends a heartbeat (its view again).
const HEARTBEAT_SECS: f64 = 1.0;

pub(crate) fn build(app: &mut App, player: PlayerId) {
    let rate = f64::from(app.world().resource::<crate::NetworkConfig>().update_rate);
    let smoothing = Smoothing::new(SmoothingConfig {
        tick_secs: 1.0 / rate.max(1.0),
        ..SmoothingConfig::default()
    });
    app.insert_resource(ClientReplica {
        player,
        receiver: DeltaReceiver::default(),
        bytes_by_sector: Default::default(),
    })
    .init_resource::<ConnectionStatus>()
    .init_resource::<ReceivedEvents>()
    .init_resource::<OutgoingCommands>()
    .init_resource::<SentState>()
    .init_resource::<MaxUpdateRate>()
    .insert_resource(smoothing)
    .add_systems(PreUpdate, maintain_connection.before(RenetReceive))
    .init_resource::<AutoUpdateRate>()
    .add_systems(Update, advance_smoothing.in_set(SmoothingSet))
    .add_systems(Update, adapt_update_rate)
    .add_systems(
        PreUpdate,
        receive.in_set(NetSet::Receive).after(RenetReceive),
    )
    .add_systems(PostUpdate, send.in_set(NetSet::Send).before(RenetSend));
}

/// Reconnects after a loss; a new session starts from a clean baseline store
/// (the server sends every unit whole again), so nothing is duplicated.
fn maintain_connection(world: &mut World) {
    let now = world.resource::<Time<Real>>().elapsed_secs_f64();
    if crate::transport::maintain(world, now) {
        reset_session(world, now);
    }
}

/// A new session (reconnect or redirect) starts from a clean baseline store;
/// smoothing keeps drawing the old units until the new state replaces them.
pub(crate) fn reset_session(world: &mut World, now: f64) {
    world.resource_mut::<ClientReplica>().receiver = DeltaReceiver::default();
    world.resource_mut::<Smoothing>().resync(now);
}

#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
fn receive(
    time: Res<Time<Real>>,
    client: Option<ResMut<RenetClient>>,
    connector: Option<Res<crate::transport::ClientConnector>>,
    mut status: ResMut<ConnectionStatus>,
    mut replica: ResMut<ClientReplica>,
    mut events: ResMut<ReceivedEvents>,
    mut stats: ResMut<NetworkStats>,
    mut smoothing: ResMut<Smoothing>,
    mut commands: Commands,
) {
    // With a connector, a lost connection is being retried: show Connecting.
    let retrying = connector.is_some();
    let Some(mut client) = client else {
        status.set_if_neq(ConnectionStatus::Disconnected);
        return;
    };
    let reason = client.disconnect_reason().map(|r| format!("{r:?}"));
    status.set_if_neq(ConnectionStatus::from_transport(
        client.is_connected(),
        client.is_connecting(),
        retrying,
        reason,
    ));
    let info = client.network_info();
    stats.average_latency = (info.rtt * 1000.0) as f32;
    stats.packet_loss = info.packet_loss as f32;
    smoothing.set_rtt(info.rtt);
    let now = time.elapsed_secs_f64();
    'channels: for channel in [EVENTS, UPDATES] {
        while let Some(bytes) = client.receive_message(channel) {
            stats.bytes_received += bytes.len() as u64;
            stats.messages_received += 1;
            match codec::decode_server(&bytes) {
                Ok(ServerMessage::UnitUpdate(u)) => {
                    if replica.bytes_by_sector.len() >= MAX_SECTOR_COUNTERS
                        && !replica.bytes_by_sector.contains_key(&u.sector_id)
                    {
                        replica.bytes_by_sector.pop_first();
                    }
                    *replica.bytes_by_sector.entry(u.sector_id).or_default() += bytes.len() as u64;
                    match replica.receiver.receive(&u) {
                        Ok(_) => {
                            stats.unit_updates += 1;
                            smoothing.on_update(now, u.timestamp, &mut replica.receiver);
                        }
                        Err(_) => stats.reject("refused_update", 1),
                    }
                }
                Ok(ServerMessage::CombatEvent(e)) => events.push(e),
                Ok(ServerMessage::Redirect(r)) => {
                    let player = replica.player;
                    let switching = crate::redirect::on_redirect(
                        &r,
                        connector.as_deref(),
                        player,
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

#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is a resource it needs
fn send(
    time: Res<Time<Real>>,
    client: Option<ResMut<RenetClient>>,
    mut replica: ResMut<ClientReplica>,
    view: Option<Res<View>>,
    rate: Res<MaxUpdateRate>,
    mut outgoing: ResMut<OutgoingCommands>,
    mut sent: ResMut<SentState>,
    mut stats: ResMut<NetworkStats>,
) {
    let Some(mut client) = client.filter(|c| c.is_connected()) else {
        sent.hello = false;
        sent.view = None;
        return;
    };
    let player = replica.player;
    let now = time.elapsed_secs_f64();
    if now - sent.last_sent >= HEARTBEAT_SECS {
        // Nothing went out for a while: resend the view so the server knows we are here.
        sent.view = None;
    }
    let mut any = false;
    let mut out = |client: &mut RenetClient, channel: u8, msg: ClientMessage| {
        if let Ok(bytes) = codec::encode_client(&msg) {
            stats.bytes_sent += bytes.len() as u64;
            stats.messages_sent += 1;
            client.send_message(channel, bytes);
            any = true;
        }
    };
    if !sent.hello {
        sent.hello = true;
        let hello = Connect {
            player_id: player,
            auth_token: String::new(),
            protocol_version: galaxy_protocol::PROTOCOL_VERSION,
        };
        out(&mut client, COMMANDS, ClientMessage::Connect(hello));
    }
    if let Some(view) = view.filter(|v| sent.view != Some((v.0, rate.0))) {
        sent.view = Some((view.0, rate.0));
        out(
            &mut client,
            COMMANDS,
            ClientMessage::ViewUpdate(ViewUpdate {
                view: view.0,
                max_update_hz: rate.0,
            }),
        );
    }
    if !outgoing.0.is_empty() {
        let sector_id = sent
            .view
            .map_or(SectorId::new(0, 0, 0), |v| SectorId::at(v.0.min));
        let cmds: Vec<CompressedCommand> = outgoing.0.drain(..).collect();
        for chunk in cmds.chunks(galaxy_protocol::command::MAX_BATCH_COMMANDS) {
            let batch = BatchCommand {
                sector_id,
                commands: chunk.to_vec(),
                player_id: player,
            };
            out(&mut client, COMMANDS, ClientMessage::BatchCommand(batch));
        }
    }
    for ack in replica.receiver.take_acks() {
        out(&mut client, ACKS, ClientMessage::UpdateAck(ack));
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
