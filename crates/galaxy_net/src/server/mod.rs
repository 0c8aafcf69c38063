//! The server side: [`GalaxyServerPlugin`] receives and validates client
//! messages (commands go to the game through [`ReceivedCommands`]), and,
//! for the units the game registered ([`crate::AppReplicationExt`]),
//! snapshots the entities that changed ([`units`]) and sends each client
//! its sectors of interest as acked-baseline deltas within its byte
//! budget ([`replicate`]), with the game's [`OutgoingEvents`] first.

mod delay;
mod groups;
mod replicate;
mod tick_times;
mod units;

use std::collections::{HashMap, HashSet};

use bevy::prelude::*;
use bevy_renet::renet::ClientId;
use bevy_renet::{RenetReceive, RenetSend, RenetServer, RenetServerPlugin};
use galaxy_protocol::{
    ArmyControl, ByteBudget, ClientMessage, CombatEvent, CompressedCommand, IdHashSet, LinkProfile,
    PlayerId, SectorId, StateDigest, UpdateAck, WorldRect, codec,
};

pub use delay::MAX_SPECTATOR_DELAY_SECS;
pub use tick_times::{PhaseMs, TickPhase, TickTimes, mark as mark_phase};
pub use units::ReplicatedUnits;

use crate::NetSet;
use crate::channels::{ACKS, COMMANDS};
use crate::config::NetworkConfig;
use crate::replication::{
    ChangeJournal, DepartedUnits, ServerTick, TickPolicy, TickRate, UnitReplication,
};
use crate::stats::NetworkStats;

/// Malformed messages a client may send before it is disconnected.
const MAX_BAD_MESSAGES: u32 = 32;

/// Shortest time between two view changes a server takes from one client:
/// each one can make it rescan and resend whole sectors, so faster changes
/// wait (the newest is kept) and the ones it replaces are counted. Clients
/// send no faster; one sending four times as many is disconnected.
pub const MIN_VIEW_INTERVAL_SECS: f64 = 0.1;

/// Least time between two replica digests a server checks for one client
/// (each check is a pass over the units it holds); clients send one a
/// second, extra ones are refused and counted.
pub const MIN_DIGEST_INTERVAL_SECS: f64 = 0.5;

/// Most acks a session keeps between two frames (a client sends about one
/// per update; more in one frame is a flood and the oldest are dropped).
const MAX_PENDING_ACKS: usize = 256;

/// The server half of the networking: sessions, validation, commands in,
/// events out and, with [`crate::AppReplicationExt::replicate_unit`], the
/// game's units. Add a transport ([`crate::NetcodeTransportPlugin`]) to
/// open the socket. Configured by the [`NetworkConfig`] and [`TickRate`]
/// resources (inserted with defaults when absent).
#[derive(Default)]
pub struct GalaxyServerPlugin {
    /// Who advances the [`ServerTick`].
    pub tick: TickPolicy,
}

/// Present in a server app (replication registrations look for it).
#[derive(Resource)]
pub(crate) struct ServerMarker;

impl Plugin for GalaxyServerPlugin {
    fn build(&self, app: &mut App) {
        crate::init_common(app);
        let rate = app.world().resource::<TickRate>().0;
        let spectator_delay = delay::delay_ticks(
            app.world().resource::<NetworkConfig>().spectator_delay_secs,
            rate,
        );
        app.insert_resource(ServerMarker)
            .insert_resource(Time::<Fixed>::from_hz(rate))
            .add_plugins(RenetServerPlugin)
            .init_resource::<ServerTick>()
            .init_resource::<Sessions>()
            .init_resource::<ReceivedCommands>()
            .init_resource::<OutgoingEvents>()
            .init_resource::<OutgoingArmyControl>()
            .insert_resource(delay::SpectatorDelay {
                ticks: spectator_delay,
                ..default()
            })
            .init_resource::<TickTimes>()
            .init_resource::<ChangeJournal>()
            .init_resource::<DepartedUnits>()
            .init_resource::<crate::interest::SectorIndex>()
            .add_systems(First, tick_times::frame_start)
            .add_systems(Last, tick_times::frame_end)
            .add_systems(
                PreUpdate,
                (
                    track_sessions,
                    receive_messages,
                    tick_times::mark(TickPhase::Receive),
                )
                    .chain()
                    .in_set(NetSet::Receive)
                    .after(RenetReceive)
                    .run_if(resource_exists::<RenetServer>),
            )
            .add_systems(
                PostUpdate,
                (
                    replicate::refill_budgets,
                    replicate::send_events,
                    replicate::send_army_control,
                )
                    .chain()
                    .in_set(NetSet::Replicate)
                    .before(RenetSend)
                    .run_if(resource_exists::<RenetServer>),
            );
        if self.tick == TickPolicy::EveryFixedTick {
            app.add_systems(FixedFirst, advance_tick);
        }
        crate::redirect::build_server(app);
    }
}

/// Adds the systems that replicate the units of `R` (from
/// [`crate::AppReplicationExt::replicate_unit`]).
pub(crate) fn build_replication<R: UnitReplication>(app: &mut App) {
    let threshold = app
        .world()
        .resource::<NetworkConfig>()
        .reckoning_threshold_cm;
    let delay = app.world().resource::<delay::SpectatorDelay>().ticks;
    app.insert_resource(ReplicatedUnits::<R::Snapshot>::new(threshold, delay))
        .add_systems(
            PreUpdate,
            replicate::apply_acks::<R::Snapshot>
                .after(receive_messages)
                .in_set(NetSet::Receive)
                .run_if(resource_exists::<RenetServer>),
        )
        .add_systems(
            PostUpdate,
            (
                tick_times::mark(TickPhase::Other),
                units::remove_departed::<R::Snapshot>,
                units::collect_changes::<R>,
                units::drop_departed_from_clients::<R::Snapshot>,
                units::advance_delayed::<R::Snapshot>,
                tick_times::mark(TickPhase::Tag),
            )
                .chain()
                .in_set(NetSet::Tag),
        )
        .add_systems(
            PostUpdate,
            (
                groups::regroup::<R::Snapshot>,
                replicate::replicate::<R::Snapshot>,
                tick_times::mark(TickPhase::Replicate),
            )
                .chain()
                .after(replicate::send_events)
                .in_set(NetSet::Replicate)
                .before(RenetSend)
                .run_if(resource_exists::<RenetServer>),
        );
}

/// One fixed tick more ([`TickPolicy::EveryFixedTick`]).
fn advance_tick(mut tick: ResMut<ServerTick>) {
    tick.0 += 1;
}

/// Commands the clients sent, validated and rate limited, for the game to
/// apply (drain them in its simulation, e.g. in `NetSet::Simulate`). The
/// player is the connection's, never what the message claims.
#[derive(Resource, Default, Debug)]
pub struct ReceivedCommands(pub Vec<(PlayerId, CompressedCommand)>);

/// Army-control notices for the server to send this frame (drained by the
/// plugin): each goes reliably to the sessions of its `player_id` only.
/// A game with AI takeover tells a player who commands their army.
#[derive(Resource, Default, Debug)]
pub struct OutgoingArmyControl(pub Vec<ArmyControl>);

/// Events for the server to send this frame (drained by the plugin): each
/// goes reliably, ahead of unit updates, to the clients whose interest
/// holds its sector, paid from their byte budget first.
#[derive(Resource, Default, Debug)]
pub struct OutgoingEvents(pub Vec<CombatEvent>);

/// A client's byte budget: the server's, or the client's profile's if
/// that is smaller (a client can ask for less, never for more).
fn budget_for(config: &NetworkConfig, rate: TickRate, profile: LinkProfile) -> ByteBudget {
    let asked = (profile.max_kbps() > 0)
        .then(|| ByteBudget::from_kbps(f64::from(profile.max_kbps()), rate.0).bytes_per_tick());
    let bytes = match (config.budget_bytes_per_tick(rate), asked) {
        (Some(server), Some(asked)) => Some(server.min(asked)),
        (server, asked) => server.or(asked),
    };
    bytes.map_or_else(ByteBudget::unlimited, ByteBudget::per_tick)
}

/// One connected client.
pub struct Session {
    player: PlayerId,
    view: Option<WorldRect>,
    /// Highest update rate the client asked for (0 = server default).
    max_update_hz: u8,
    /// The client's link class (its budget, rate and far-ring detail).
    profile: LinkProfile,
    /// A view change waiting for [`MIN_VIEW_INTERVAL_SECS`] to pass.
    pending_view: Option<(WorldRect, u8, LinkProfile)>,
    /// When the view last changed.
    view_changed_at: f64,
    /// View changes taken so far.
    views_applied: u64,
    /// What this client may still receive this tick.
    budget: ByteBudget,
    /// A spectator on a server with a broadcast delay: replicated from the
    /// delayed copy of the world, its events held back as long.
    pub(crate) delayed: bool,
    /// A spectator sharing the updates of the group led by this client
    /// (see [`groups`]); `None`: it has its own.
    pub(crate) follows: Option<ClientId>,
    /// The view `near` and `far` were computed for.
    interest_of: Option<WorldRect>,
    near: IdHashSet<SectorId>,
    far: IdHashSet<SectorId>,
    /// Tick of the last budget refill for this client.
    last_tick: u64,
    /// Acks received this frame, for the replication to take.
    acks: Vec<UpdateAck>,
    /// The newest replica digest to check, for the replication to take.
    pub(crate) digest: Option<StateDigest>,
    /// When the last digest was taken (one per [`MIN_DIGEST_INTERVAL_SECS`]).
    digest_at: f64,
    /// Since when updates sent to this client have waited for an ack with
    /// none arriving (None: nothing owed).
    pub(crate) unacked_since: Option<f64>,
    bad_messages: u32,
    last_heard: f64,
    window_start: f64,
    window_bytes: u64,
    window_commands: u32,
    /// Unit ids the commands of this window named.
    window_units: u64,
    /// View updates of this window.
    window_views: u32,
    logged: HashSet<&'static str>,
}

impl Session {
    fn new(
        player: PlayerId,
        config: &NetworkConfig,
        rate: TickRate,
        delay_ticks: u64,
        now: f64,
    ) -> Self {
        Self {
            player,
            view: None,
            max_update_hz: 0,
            profile: config.profile,
            pending_view: None,
            view_changed_at: f64::NEG_INFINITY,
            views_applied: 0,
            budget: budget_for(config, rate, config.profile),
            delayed: crate::tokens::is_spectator(player) && delay_ticks > 0,
            follows: None,
            interest_of: None,
            near: IdHashSet::default(),
            far: IdHashSet::default(),
            last_tick: 0,
            acks: Vec::new(),
            digest: None,
            digest_at: f64::NEG_INFINITY,
            unacked_since: None,
            bad_messages: 0,
            last_heard: now,
            window_start: 0.0,
            window_bytes: 0,
            window_commands: 0,
            window_units: 0,
            window_views: 0,
            logged: HashSet::new(),
        }
    }

    /// The player (the netcode client id).
    pub fn player(&self) -> PlayerId {
        self.player
    }

    /// The client's view, once it sent one (a cluster server redirects a
    /// client whose view is in a sector another server owns).
    pub fn view(&self) -> Option<WorldRect> {
        self.view
    }

    /// True for a spectator watching with the server's broadcast delay
    /// (`NetworkConfig::spectator_delay_secs`).
    pub fn delayed(&self) -> bool {
        self.delayed
    }

    /// The client whose updates this spectator shares (one encoding for
    /// every spectator watching the same view), if any.
    pub fn shares_updates_of(&self) -> Option<ClientId> {
        self.follows
    }

    /// View changes the server has taken from this client (at most one
    /// per [`MIN_VIEW_INTERVAL_SECS`]).
    pub fn views_applied(&self) -> u64 {
        self.views_applied
    }

    /// True if this client may hold units in scale-0 `sector`: it is in the
    /// interest last replicated (units that left it were removed).
    pub(crate) fn may_hold(&self, sector: SectorId) -> bool {
        crate::interest::in_interest(sector, &self.near, &self.far)
    }

    /// Logs a refusal once per client and reason.
    pub(crate) fn log_once(&mut self, reason: &'static str) {
        if self.logged.insert(reason) {
            warn!(
                "client {}: refused ({reason}); further refusals for this reason are counted, not logged",
                self.player
            );
        }
    }
}

/// Every connected client.
#[derive(Resource, Default)]
pub struct Sessions(pub(crate) HashMap<ClientId, Session>);

impl Sessions {
    /// Clients connected.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every client: its netcode id and session.
    pub fn iter(&self) -> impl Iterator<Item = (ClientId, &Session)> {
        self.0.iter().map(|(&id, s)| (id, s))
    }

    /// One client's session.
    pub fn get(&self, client: ClientId) -> Option<&Session> {
        self.0.get(&client)
    }
}

fn track_sessions(
    server: Res<RenetServer>,
    mut sessions: ResMut<Sessions>,
    config: Res<NetworkConfig>,
    rate: Res<TickRate>,
    delay: Res<delay::SpectatorDelay>,
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
            Session::new(id, &config, *rate, delay.ticks, now)
        });
    }
}

fn receive_messages(
    mut server: ResMut<RenetServer>,
    mut sessions: ResMut<Sessions>,
    mut commands: ResMut<ReceivedCommands>,
    mut stats: ResMut<NetworkStats>,
    config: Res<NetworkConfig>,
    rate: Res<TickRate>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    let mut kick = Vec::new();
    for (&client, session) in sessions.0.iter_mut() {
        if now - session.window_start >= 1.0 {
            session.window_start = now;
            session.window_bytes = 0;
            session.window_commands = 0;
            session.window_units = 0;
            session.window_views = 0;
        }
        for channel in [COMMANDS, ACKS] {
            while let Some(bytes) = server.receive_message(client, channel) {
                session.last_heard = now;
                stats.bytes_received += bytes.len() as u64;
                stats.messages_received += 1;
                session.window_bytes += bytes.len() as u64;
                match codec::decode_client(&bytes) {
                    Ok(ClientMessage::UpdateAck(ack)) => {
                        if session.acks.len() == MAX_PENDING_ACKS {
                            session.acks.remove(0);
                        }
                        session.acks.push(ack);
                    }
                    Ok(ClientMessage::ViewUpdate(v)) => {
                        session.window_views += 1;
                        if session.pending_view.is_some() {
                            stats.reject("view_rate_limited", 1);
                        }
                        session.pending_view = Some((v.view, v.max_update_hz, v.profile));
                    }
                    Ok(ClientMessage::StateDigest(d)) => {
                        // Checking one costs a pass over the client's units.
                        if now - session.digest_at >= MIN_DIGEST_INTERVAL_SECS {
                            session.digest_at = now;
                            session.digest = Some(d);
                        } else {
                            stats.reject("digest_rate_limited", 1);
                            session.log_once("digest_rate_limited");
                        }
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
                        // A spectator commands nothing; its orders still
                        // count against its rate limits.
                        let spectator = crate::tokens::is_spectator(session.player);
                        if spectator {
                            stats.reject("spectator_order", batch.commands.len() as u64);
                            session.log_once("spectator_order");
                        }
                        if batch.player_id != session.player {
                            stats.reject("claimed_player", 1);
                            session.log_once("claimed_player");
                        }
                        for cmd in batch.commands {
                            session.window_commands += 1;
                            session.window_units += cmd.units().len();
                            if session.window_commands > config.max_commands_per_second
                                || session.window_units > config.max_command_units_per_second
                            {
                                stats.reject("rate_limited", 1);
                                session.log_once("rate_limited");
                            } else if !spectator {
                                commands.0.push((session.player, cmd));
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
        if let Some((view, hz, profile)) = session.pending_view
            && now - session.view_changed_at >= MIN_VIEW_INTERVAL_SECS
        {
            session.pending_view = None;
            if session.view != Some(view) {
                session.view_changed_at = now;
                session.views_applied += 1;
            }
            session.view = Some(view);
            session.max_update_hz = hz;
            let profile = profile.stricter(config.profile);
            if session.profile != profile {
                session.profile = profile;
                session.budget = budget_for(&config, *rate, profile);
            }
        }
        let flooding = session.window_bytes > config.max_client_bytes_per_second
            || session.window_commands > config.max_commands_per_second.saturating_mul(4)
            || session.window_units > config.max_command_units_per_second.saturating_mul(4)
            || f64::from(session.window_views) > 4.0 / MIN_VIEW_INTERVAL_SECS;
        let timeout = config.idle_timeout_secs as f64;
        let idle = now - session.last_heard > timeout;
        // Talking but never acking: every unit sent stays tracked for it.
        let no_acks = session.unacked_since.is_some_and(|t| now - t > timeout);
        let reason = if flooding {
            Some("flooding")
        } else if session.bad_messages > MAX_BAD_MESSAGES {
            Some("malformed_messages")
        } else if idle {
            Some("idle_timeout")
        } else if no_acks {
            Some("no_acks")
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

/// Bevy's compute task pool and the chunk size for `len` items, if the
/// work is worth splitting: a pool is there, `threads` allows it (not 1),
/// and there are at least two chunks of `min_chunk`.
fn parallel_plan(
    len: usize,
    min_chunk: usize,
    threads: usize,
) -> Option<(&'static bevy::tasks::ComputeTaskPool, usize)> {
    let pool = bevy::tasks::ComputeTaskPool::try_get().filter(|_| threads != 1)?;
    let threads = pool.thread_num() + 1;
    (threads >= 2 && len >= 2 * min_chunk).then(|| (pool, len.div_ceil(threads).max(min_chunk)))
}

/// Runs `work` on every item, in chunks of at least `min_chunk`, on Bevy's
/// compute task pool when there is one and the work is big enough.
pub(crate) fn in_parallel_mut<T: Send>(
    items: &mut [T],
    min_chunk: usize,
    threads: usize,
    work: impl Fn(&mut T) + Sync,
) {
    let Some((pool, chunk)) = parallel_plan(items.len(), min_chunk, threads) else {
        items.iter_mut().for_each(work);
        return;
    };
    let work = &work;
    pool.scope(|scope| {
        for part in items.chunks_mut(chunk) {
            scope.spawn(async move { part.iter_mut().for_each(work) });
        }
    });
}

/// Runs `work` on `items` cut in chunks of at least `min_chunk`, on Bevy's
/// compute task pool when there is one and the work is big enough, and
/// returns each chunk's result in order.
pub(crate) fn map_chunks<I: Sync, T: Send + 'static>(
    items: &[I],
    min_chunk: usize,
    threads: usize,
    work: impl Fn(&[I]) -> T + Sync,
) -> Vec<T> {
    let Some((pool, chunk)) = parallel_plan(items.len(), min_chunk, threads) else {
        return vec![work(items)];
    };
    let work = &work;
    pool.scope(|scope| {
        for part in items.chunks(chunk) {
            scope.spawn(async move { work(part) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks worked on the compute pool come back whole and in order, as
    /// the change collection needs to apply them in order.
    #[test]
    fn map_chunks_keeps_every_item_in_order() {
        bevy::tasks::ComputeTaskPool::get_or_init(|| {
            bevy::tasks::TaskPoolBuilder::new().num_threads(2).build()
        });
        let items: Vec<u64> = (0..50_000).collect();
        for threads in [0, 1] {
            let parts = map_chunks(&items, 1000, threads, |part| part.to_vec());
            assert_eq!(parts.len() > 1, threads == 0, "threads {threads}");
            assert_eq!(parts.concat(), items);
        }
    }
}
