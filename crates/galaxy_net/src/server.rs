//! The server side: receive and validate client messages, step the
//! authoritative simulation, tag changed units, replicate each client's
//! sectors of interest as acked-baseline deltas, and send.

use std::collections::{HashMap, HashSet};

use bevy::prelude::*;
use bevy_renet::RenetServer;
use bevy_renet::renet::ClientId;
use bevy_renet::{RenetReceive, RenetSend};
use galaxy_protocol::{
    CombatEvent, CompressedCommand, DeltaSender, NetworkMessage, PlayerId, SectorId, UnitId,
    WorldRect, codec, quantize,
};
use galaxy_sim::World;

use crate::NetSet;
use crate::channels::{ACKS, COMMANDS, EVENTS, UPDATES};
use crate::components::{Health, NetUnit, Owner, Position, Target, UnitState};
use crate::config::NetworkConfig;
use crate::interest::{SectorIndex, in_interest, interest, interval_ticks};
use crate::stats::NetworkStats;

/// Malformed messages a client may send before it is disconnected.
const MAX_BAD_MESSAGES: u32 = 32;

/// The authoritative simulation.
#[derive(Resource, Default)]
pub struct SimWorld(pub World);

/// Commands received this frame, applied at the next simulation tick.
#[derive(Resource, Default)]
struct CommandQueue(Vec<(ClientId, CompressedCommand)>);

/// Events from simulation ticks not yet sent.
#[derive(Resource, Default)]
struct PendingEvents(Vec<CombatEvent>);

/// Unit id -> entity, and units that died since the last replication.
#[derive(Resource, Default)]
struct UnitEntities {
    entities: HashMap<UnitId, Entity>,
    departed: Vec<UnitId>,
    /// Departed units that moved to another server ([`RemoteUnits`]): not
    /// removed from clients, who keep their last state until they follow.
    moved_away: Vec<UnitId>,
}

/// How long recent server ticks took (simulation + replication), newest last.
#[derive(Resource, Default)]
pub struct TickTimes {
    samples: std::collections::VecDeque<f32>,
    step_ms: f32,
}

impl TickTimes {
    /// Most samples kept (one minute at 20 Hz).
    const CAP: usize = 1200;

    fn push(&mut self, ms: f32) {
        if self.samples.len() == Self::CAP {
            self.samples.pop_front();
        }
        self.samples.push_back(ms);
    }

    /// The `q` quantile (0..=1) of recent tick times in milliseconds.
    pub fn quantile(&self, q: f32) -> f32 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let mut v: Vec<f32> = self.samples.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        v[((v.len() - 1) as f32 * q.clamp(0.0, 1.0)).round() as usize]
    }

    /// Number of ticks measured.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True before the first tick.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Forgets all samples (e.g. after warm-up).
    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

/// One connected client.
pub struct Session {
    /// The player (the netcode client id).
    pub player: PlayerId,
    sender: DeltaSender,
    view: Option<WorldRect>,
    /// Highest update rate the client asked for (0 = server default).
    max_update_hz: u8,
    near: HashSet<SectorId>,
    far: HashSet<SectorId>,
    last_sent: HashMap<SectorId, u64>,
    visible: HashSet<UnitId>,
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
        Self {
            player,
            sender: DeltaSender::new(deltas),
            view: None,
            max_update_hz: 0,
            near: HashSet::new(),
            far: HashSet::new(),
            last_sent: HashMap::new(),
            visible: HashSet::new(),
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
    pub fn visible(&self) -> &HashSet<UnitId> {
        &self.visible
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
    app.init_resource::<SimWorld>()
        .init_resource::<CommandQueue>()
        .init_resource::<PendingEvents>()
        .init_resource::<UnitEntities>()
        .init_resource::<SectorIndex>()
        .init_resource::<Sessions>()
        .init_resource::<TickTimes>()
        .init_resource::<RemoteUnits>()
        .add_systems(
            PreUpdate,
            (track_sessions, receive_messages)
                .chain()
                .in_set(NetSet::Receive)
                .after(RenetReceive),
        )
        .add_systems(
            FixedUpdate,
            (apply_commands, step_simulation, mirror_units)
                .chain()
                .in_set(NetSet::Simulate),
        )
        .add_systems(PostUpdate, tag_changes.in_set(NetSet::Tag))
        .add_systems(
            PostUpdate,
            (replicate, send_events)
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
                match codec::decode(&bytes) {
                    Ok(NetworkMessage::UpdateAck(ack)) => session.sender.receive_ack(&ack),
                    Ok(NetworkMessage::ViewUpdate(v)) => {
                        session.view = Some(v.view);
                        session.max_update_hz = v.max_update_hz;
                    }
                    Ok(NetworkMessage::Connect(c))
                        if c.protocol_version != galaxy_protocol::PROTOCOL_VERSION =>
                    {
                        stats.reject("protocol_version", 1);
                        session.log_once("protocol_version");
                        kick.push(client);
                    }
                    Ok(NetworkMessage::Connect(_)) => {}
                    Ok(NetworkMessage::BatchCommand(batch)) => {
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
                    Ok(_) => {
                        stats.reject("unexpected_message", 1);
                        session.log_once("unexpected_message");
                        session.bad_messages += 1;
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

/// Units simulated by another server (a cluster member's neighbours):
/// commands naming them are split off into `forwarded` for the game to
/// pass on, instead of being refused as unknown; `ghosts` are replicated
/// to clients read-only, so a view across a server border shows both sides.
#[derive(Resource, Default, Debug)]
pub struct RemoteUnits {
    /// Unit -> the server that simulates it now.
    pub units: HashMap<UnitId, u32>,
    /// Units near our border that a neighbour simulates, as it last sent
    /// them (`ServerSync`): shown to clients, never simulated here.
    pub ghosts: HashMap<UnitId, galaxy_protocol::QuantizedUnit>,
    /// (player, server, command for that server's units), oldest first.
    pub forwarded: Vec<(PlayerId, u32, CompressedCommand)>,
}

impl RemoteUnits {
    /// Splits `cmd`: the part for local units is returned; the parts for
    /// remote units are queued in `forwarded`, one per server.
    fn split(&mut self, player: PlayerId, cmd: CompressedCommand) -> Option<CompressedCommand> {
        if self.units.is_empty() || !cmd.units().iter().any(|u| self.units.contains_key(&u)) {
            return Some(cmd);
        }
        let mut local = Vec::new();
        let mut remote: std::collections::BTreeMap<u32, Vec<UnitId>> = Default::default();
        for u in cmd.units().iter() {
            match self.units.get(&u) {
                Some(&server) => remote.entry(server).or_default().push(u),
                None => local.push(u),
            }
        }
        for (server, ids) in remote {
            if let Ok(list) = galaxy_protocol::UnitIdList::from_ids(ids) {
                self.forwarded.push((player, server, cmd.with_units(list)));
            }
        }
        galaxy_protocol::UnitIdList::from_ids(local)
            .ok()
            .filter(|l| !l.is_empty())
            .map(|l| cmd.with_units(l))
    }
}

fn apply_commands(
    mut sim: ResMut<SimWorld>,
    mut queue: ResMut<CommandQueue>,
    mut sessions: ResMut<Sessions>,
    mut stats: ResMut<NetworkStats>,
    mut remote: ResMut<RemoteUnits>,
) {
    for (client, cmd) in queue.0.drain(..) {
        let before = remote.forwarded.len();
        let local = remote.split(client, cmd);
        stats.commands_forwarded += (remote.forwarded.len() - before) as u64;
        let Some(cmd) = local else {
            continue;
        };
        stats.commands_applied += 1;
        let out = sim.0.apply_command(client, &cmd);
        let reasons = [
            ("not_owned", out.not_owned),
            ("unknown_unit", out.unknown),
            ("invalid_target", u64::from(out.invalid_target)),
        ];
        for (reason, n) in reasons.into_iter().filter(|r| r.1 > 0) {
            stats.reject(reason, n);
            if let Some(s) = sessions.0.get_mut(&client) {
                s.log_once(reason);
            }
        }
    }
}

fn step_simulation(
    mut sim: ResMut<SimWorld>,
    mut events: ResMut<PendingEvents>,
    mut times: ResMut<TickTimes>,
) {
    let start = std::time::Instant::now();
    let new = sim.0.step();
    events.0.extend(new);
    times.step_ms = start.elapsed().as_secs_f32() * 1000.0;
}

/// Writes the simulation (units, then resources and bases) into ECS
/// components, touching only what changed.
fn mirror_units(
    mut commands: Commands,
    sim: Res<SimWorld>,
    remote: Res<RemoteUnits>,
    mut entities: ResMut<UnitEntities>,
    mut units: Query<(
        &mut Owner,
        &mut Position,
        &mut Health,
        &mut UnitState,
        &mut Target,
    )>,
) {
    let mut alive = HashSet::with_capacity(sim.0.unit_count());
    let ghosts = remote
        .ghosts
        .iter()
        .filter(|(id, _)| sim.0.sample(**id).is_none())
        .map(|(&id, q)| (id, q.to_sample()));
    let samples = sim
        .0
        .units()
        .map(|(id, u)| (id, u.sample()))
        .chain(sim.0.structures())
        .chain(ghosts);
    for (id, sample) in samples {
        let u = quantize(&sample);
        alive.insert(id);
        match entities
            .entities
            .get(&id)
            .and_then(|&e| units.get_mut(e).ok())
        {
            Some((mut o, mut p, mut h, mut s, mut t)) => {
                o.set_if_neq(Owner(u.owner()));
                p.set_if_neq(Position(u.position()));
                h.set_if_neq(Health(u.health()));
                s.set_if_neq(UnitState(u.state()));
                t.set_if_neq(Target(u.target()));
            }
            None => {
                let e = commands
                    .spawn((
                        NetUnit(id),
                        Owner(u.owner()),
                        Position(u.position()),
                        Health(u.health()),
                        UnitState(u.state()),
                        Target(u.target()),
                    ))
                    .id();
                entities.entities.insert(id, e);
            }
        }
    }
    let gone: Vec<UnitId> = entities
        .entities
        .keys()
        .copied()
        .filter(|id| !alive.contains(id))
        .collect();
    for id in gone {
        if let Some(e) = entities.entities.remove(&id) {
            commands.entity(e).despawn();
        }
        entities.departed.push(id);
    }
}

/// Tag: units whose replicated components changed touch their sector (so
/// it is replicated and its activity counted); moved units are re-indexed.
#[allow(clippy::type_complexity)]
fn tag_changes(
    changed: Query<
        (&NetUnit, &Position),
        Or<(
            Changed<Owner>,
            Changed<Position>,
            Changed<Health>,
            Changed<UnitState>,
            Changed<Target>,
        )>,
    >,
    sim: Res<SimWorld>,
    mut index: ResMut<SectorIndex>,
    mut entities: ResMut<UnitEntities>,
    mut sessions: ResMut<Sessions>,
    remote: Res<RemoteUnits>,
) {
    index.begin_tick(sim.0.tick());
    for (unit, pos) in &changed {
        index.place(unit.0, SectorId::at(pos.0));
    }
    let mut gone = std::mem::take(&mut entities.departed);
    gone.append(&mut entities.moved_away);
    for id in gone {
        if entities.entities.contains_key(&id) {
            continue; // it came back (a handoff that failed)
        }
        if remote.units.contains_key(&id) {
            entities.moved_away.push(id);
            continue;
        }
        index.remove(id);
        for s in sessions.0.values_mut() {
            if s.visible.remove(&id) {
                s.sender.remove_unit(id);
            }
        }
    }
}

/// Replicate: per client, each sector of interest when it is due (by its
/// activity, and less often in the far ring), as deltas against what the
/// client acknowledged.
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is a resource it needs
fn replicate(
    mut server: ResMut<RenetServer>,
    mut sessions: ResMut<Sessions>,
    index: Res<SectorIndex>,
    sim: Res<SimWorld>,
    remote: Res<RemoteUnits>,
    config: Res<NetworkConfig>,
    mut stats: ResMut<NetworkStats>,
    mut times: ResMut<TickTimes>,
    mut last_tick: Local<u64>,
) {
    let tick = sim.0.tick();
    if tick == *last_tick {
        return;
    }
    *last_tick = tick;
    let start = std::time::Instant::now();
    let mut buf = Vec::with_capacity(1200);
    for (&client, s) in sessions.0.iter_mut() {
        let Some(view) = s.view else { continue };
        (s.near, s.far) = interest(view);
        let leaving: Vec<UnitId> = s
            .visible
            .iter()
            .copied()
            .filter(|&id| {
                index
                    .sector_of(id)
                    .is_none_or(|sec| !in_interest(sec, &s.near, &s.far))
            })
            .collect();
        for id in leaving {
            s.visible.remove(&id);
            s.sender.remove_unit(id);
        }
        let Session {
            near,
            far,
            last_sent,
            visible,
            sender,
            ..
        } = s;
        last_sent.retain(|sector, _| near.contains(sector) || far.contains(sector));
        // A client on a poor link may ask for fewer updates per second.
        let floor = match s.max_update_hz {
            0 => 1,
            hz => (config.update_rate / f32::from(hz)).ceil().max(1.0) as u64,
        };
        for (sector, is_far) in near
            .iter()
            .map(|s| (s, false))
            .chain(far.iter().map(|s| (s, true)))
        {
            let due = match last_sent.get(sector) {
                None => true,
                Some(&sent) => {
                    index.changed_at(sector) > sent
                        && tick - sent
                            >= interval_ticks(index.activity(sector), config.update_rate, is_far)
                                .max(floor)
                }
            };
            if !due {
                continue;
            }
            last_sent.insert(*sector, tick);
            for id in index.units_in(sector) {
                // A far sector's cells that are near go at the near rate instead.
                if is_far && index.sector_of(id).is_some_and(|c| near.contains(&c)) {
                    continue;
                }
                let sample = sim
                    .0
                    .sample(id)
                    .or_else(|| remote.ghosts.get(&id).map(|g| g.to_sample()));
                if let Some(sample) = sample {
                    visible.insert(id);
                    sender.set_unit(id, quantize(&sample));
                }
            }
        }
        for update in s.sender.write_updates(tick) {
            buf.clear();
            if codec::encode_into(&NetworkMessage::UnitUpdate(update), &mut buf).is_ok() {
                stats.bytes_sent += buf.len() as u64;
                stats.messages_sent += 1;
                stats.unit_updates += 1;
                server.send_message(client, UPDATES, buf.clone());
            }
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
    let step_ms = times.step_ms;
    times.push(step_ms + start.elapsed().as_secs_f32() * 1000.0);
}

/// Combat events go reliably, ahead of updates, to clients that see their sector.
fn send_events(
    mut server: ResMut<RenetServer>,
    sessions: Res<Sessions>,
    mut pending: ResMut<PendingEvents>,
    mut stats: ResMut<NetworkStats>,
) {
    for event in pending.0.drain(..) {
        let Ok(bytes) = codec::encode(&NetworkMessage::CombatEvent(event.clone())) else {
            continue;
        };
        for (&client, s) in &sessions.0 {
            if in_interest(event.sector_id, &s.near, &s.far) {
                stats.bytes_sent += bytes.len() as u64;
                stats.messages_sent += 1;
                server.send_message(client, EVENTS, bytes.clone());
            }
        }
    }
}
