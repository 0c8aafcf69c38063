//! The server side: receive and validate client messages, step the
//! authoritative simulation ([`simulate`]), tag changed units and replicate
//! each client's sectors of interest as acked-baseline deltas within its
//! byte budget ([`replicate`]), and send.

mod remote;
mod replicate;
mod simulate;
mod tick_times;

use std::collections::{HashMap, HashSet};

use bevy::prelude::*;
use bevy_renet::RenetServer;
use bevy_renet::renet::ClientId;
use bevy_renet::{RenetReceive, RenetSend};
use galaxy_protocol::{
    ByteBudget, ClientMessage, DeltaSender, IdHashMap, IdHashSet, PlayerId, ReckonConfig, SectorId,
    UnitId, WorldRect, codec,
};
use galaxy_sim::World;

pub use remote::RemoteUnits;
pub use simulate::ReplicatedUnits;
pub use tick_times::{PhaseMs, TickPhase, TickTimes};

use crate::NetSet;
use crate::channels::{ACKS, COMMANDS};
use crate::config::NetworkConfig;
use crate::interest::SectorIndex;
use crate::stats::NetworkStats;
use simulate::{CommandQueue, PendingEvents, UnitEntities};
use tick_times::{frame_end, frame_start, mark};

/// Malformed messages a client may send before it is disconnected.
const MAX_BAD_MESSAGES: u32 = 32;

/// The authoritative simulation.
#[derive(Resource, Default)]
pub struct SimWorld(pub World);

/// One connected client.
pub struct Session {
    /// The player (the netcode client id).
    pub player: PlayerId,
    sender: DeltaSender,
    /// What this client may still receive this tick.
    budget: ByteBudget,
    view: Option<WorldRect>,
    /// Highest update rate the client asked for (0 = server default).
    max_update_hz: u8,
    /// The view `near` and `far` were computed for.
    interest_of: Option<WorldRect>,
    near: IdHashSet<SectorId>,
    far: IdHashSet<SectorId>,
    last_sent: IdHashMap<SectorId, u64>,
    /// Tick of the last replication for this client.
    last_tick: u64,
    /// Encoded updates waiting to be handed to renet.
    outbox: Vec<Vec<u8>>,
    /// Scratch: units leaving the client's interest.
    leaving: Vec<UnitId>,
    bad_messages: u32,
    last_heard: f64,
    window_start: f64,
    window_bytes: u64,
    window_commands: u32,
    logged: HashSet<&'static str>,
}

impl Session {
    fn new(player: PlayerId, config: &NetworkConfig, now: f64) -> Self {
        let deltas = galaxy_protocol::sender::DeltaConfig {
            deltas: config.compression_enabled,
            ..Default::default()
        };
        let budget = config
            .budget_bytes_per_tick()
            .map_or_else(ByteBudget::unlimited, ByteBudget::per_tick);
        Self {
            player,
            sender: DeltaSender::new(deltas),
            budget,
            view: None,
            max_update_hz: 0,
            interest_of: None,
            near: IdHashSet::default(),
            far: IdHashSet::default(),
            last_sent: IdHashMap::default(),
            last_tick: 0,
            outbox: Vec::new(),
            leaving: Vec::new(),
            bad_messages: 0,
            last_heard: now,
            window_start: 0.0,
            window_bytes: 0,
            window_commands: 0,
            logged: HashSet::new(),
        }
    }

    /// The client's view, once it sent one (a cluster server redirects a
    /// client whose view is in a sector another server owns).
    pub fn view(&self) -> Option<WorldRect> {
        self.view
    }

    /// The delta sender for this client (for diagnostics and tests).
    pub fn sender(&self) -> &DeltaSender {
        &self.sender
    }

    /// Units this client currently sees.
    pub fn visible(&self) -> impl Iterator<Item = UnitId> + '_ {
        self.sender.visible_units().map(|(id, _)| id)
    }

    /// True if this client may hold units in scale-0 `sector`: it is in the
    /// interest last replicated (its sender shows only units whose sector
    /// was in that interest; those that left it were removed).
    pub(crate) fn may_hold(&self, sector: SectorId) -> bool {
        crate::interest::in_interest(sector, &self.near, &self.far)
    }

    /// Logs a refusal once per client and reason.
    fn log_once(&mut self, reason: &'static str) {
        if self.logged.insert(reason) {
            warn!(
                "client {}: refused ({reason}); further refusals for this reason are counted, not logged",
                self.player
            );
        }
    }
}

/// Every connected client's replication state.
#[derive(Resource, Default)]
pub struct Sessions(pub HashMap<ClientId, Session>);

/// Server half of the plugin; added by [`crate::GalaxyNetPlugin`] in server mode.
pub(crate) fn build(app: &mut App) {
    let threshold_cm = app
        .world()
        .resource::<NetworkConfig>()
        .reckoning_threshold_cm;
    app.init_resource::<SimWorld>()
        .init_resource::<CommandQueue>()
        .init_resource::<PendingEvents>()
        .init_resource::<UnitEntities>()
        .init_resource::<SectorIndex>()
        .init_resource::<Sessions>()
        .init_resource::<TickTimes>()
        .init_resource::<RemoteUnits>()
        .insert_resource(ReplicatedUnits::new(ReckonConfig { threshold_cm }))
        .add_systems(First, frame_start)
        .add_systems(Last, frame_end)
        .add_systems(
            PreUpdate,
            (track_sessions, receive_messages, mark(TickPhase::Receive))
                .chain()
                .in_set(NetSet::Receive)
                .after(RenetReceive),
        )
        .add_systems(
            FixedUpdate,
            (
                mark(TickPhase::Other),
                simulate::apply_commands,
                mark(TickPhase::Commands),
                simulate::step_simulation,
                mark(TickPhase::Step),
            )
                .chain()
                .in_set(NetSet::Simulate),
        )
        .add_systems(
            PostUpdate,
            (
                mark(TickPhase::Other),
                // Once per frame, after however many ticks it stepped:
                // clients get one state per frame anyway.
                simulate::mirror_units,
                mark(TickPhase::Mirror),
                replicate::tag_changes,
                mark(TickPhase::Tag),
            )
                .chain()
                .in_set(NetSet::Tag),
        )
        .add_systems(
            PostUpdate,
            (
                replicate::refill_budgets,
                replicate::send_events,
                replicate::replicate,
                mark(TickPhase::Replicate),
            )
                .chain()
                .in_set(NetSet::Replicate)
                .before(RenetSend),
        );
}

fn track_sessions(
    server: Res<RenetServer>,
    mut sessions: ResMut<Sessions>,
    config: Res<NetworkConfig>,
    time: Res<Time<Real>>,
) {
    let connected: HashSet<ClientId> = server.clients_id_iter().collect();
    sessions.0.retain(|id, _| {
        let keep = connected.contains(id);
        if !keep {
            info!("player {id} disconnected");
        }
        keep
    });
    let now = time.elapsed_secs_f64();
    for id in connected {
        sessions.0.entry(id).or_insert_with(|| {
            info!("player {id} connected");
            Session::new(id, &config, now)
        });
    }
}

#[allow(clippy::too_many_arguments)]
fn receive_messages(
    mut server: ResMut<RenetServer>,
    mut sessions: ResMut<Sessions>,
    mut queue: ResMut<CommandQueue>,
    mut stats: ResMut<NetworkStats>,
    config: Res<NetworkConfig>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    let mut kick = Vec::new();
    for (&client, session) in sessions.0.iter_mut() {
        if now - session.window_start >= 1.0 {
            session.window_start = now;
            session.window_bytes = 0;
            session.window_commands = 0;
        }
        for channel in [COMMANDS, ACKS] {
            while let Some(bytes) = server.receive_message(client, channel) {
                session.last_heard = now;
                stats.bytes_received += bytes.len() as u64;
                stats.messages_received += 1;
                session.window_bytes += bytes.len() as u64;
                match codec::decode_client(&bytes) {
                    Ok(ClientMessage::UpdateAck(ack)) => session.sender.receive_ack(&ack),
                    Ok(ClientMessage::ViewUpdate(v)) => {
                        session.view = Some(v.view);
                        session.max_update_hz = v.max_update_hz;
                    }
                    Ok(ClientMessage::Connect(c))
                        if c.protocol_version != galaxy_protocol::PROTOCOL_VERSION =>
                    {
                        stats.reject("protocol_version", 1);
                        session.log_once("protocol_version");
                        kick.push(client);
                    }
                    Ok(ClientMessage::Connect(_)) => {}
                    Ok(ClientMessage::BatchCommand(batch)) => {
                        if batch.player_id != session.player {
                            stats.reject("claimed_player", 1);
                            session.log_once("claimed_player");
                        }
                        for cmd in batch.commands {
                            session.window_commands += 1;
                            if session.window_commands > config.max_commands_per_second {
                                stats.reject("rate_limited", 1);
                                session.log_once("rate_limited");
                            } else {
                                queue.0.push((client, cmd));
                            }
                        }
                    }
                    Err(e) => {
                        *stats.decode_errors.entry(e.kind()).or_default() += 1;
                        session.log_once(e.kind());
                        session.bad_messages += 1;
                    }
                }
            }
        }
        let flooding = session.window_bytes > config.max_client_bytes_per_second
            || session.window_commands > config.max_commands_per_second.saturating_mul(4);
        let idle = now - session.last_heard > config.idle_timeout_secs as f64;
        let reason = if flooding {
            Some("flooding")
        } else if session.bad_messages > MAX_BAD_MESSAGES {
            Some("malformed_messages")
        } else if idle {
            Some("idle_timeout")
        } else {
            None
        };
        if let Some(reason) = reason {
            warn!("player {client} disconnected: {reason}");
            stats.reject(reason, 1);
            kick.push(client);
        }
    }
    for client in kick {
        if sessions.0.remove(&client).is_some() {
            stats.kicked_clients += 1;
        }
        server.disconnect(client);
    }
}
