//! The dedicated server as a cluster member (`--cluster URL --server-id N`):
//! it simulates only the sectors it owns, persists them as snapshots,
//! restores the sectors it adopts from a dead server, and stops acting by
//! itself when its lease lapses. The coordination itself is
//! `galaxy_cluster::ClusterNode`; this plugin moves data between it and
//! the simulation.

pub(crate) mod border;
mod handoff;
mod redirect;

use std::collections::{BTreeMap, HashMap};

use bevy::prelude::*;
use galaxy_cluster::SectorSnapshot;
use galaxy_cluster::{
    ClusterConfig, ClusterNode, Epoch, ID_BLOCK_LEN, LoadReport, NodeCommand, NodeConfig,
    NodeEvent, Origin, Ownership,
};
use galaxy_net::{NetSet, ServerAuth, Sessions, TickTimes};
use galaxy_protocol::{SectorId, WorldPos};

use crate::sim::{RemoteUnits, SimWorld};

/// How to join a cluster (from the command line).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterOptions {
    /// NATS URL.
    pub url: String,
    /// This server's id, unique in the cluster.
    pub server_id: u32,
    /// Bucket prefix (one universe per prefix).
    pub prefix: String,
    /// Scale of the sectors servers own (3: 8 km sectors).
    pub scale: u8,
    /// Seconds between snapshots of owned sectors.
    pub snapshot_every: f32,
    /// Lease time in milliseconds (the same for every server of a cluster).
    pub lease_ms: u64,
    /// The sector (x, y at `scale`) to start in, instead of the default.
    pub home: Option<(i64, i64)>,
    /// Seconds between the balancer's moves when this server is elected
    /// balancer; 0: never stand for balancer.
    pub balance_every: f32,
    /// Least unit difference between the busiest and idlest server that
    /// makes the balancer move a sector.
    pub balance_gap: u64,
}

impl ClusterOptions {
    /// Defaults for a server joining `url` as `server_id`.
    pub fn new(url: String, server_id: u32) -> Self {
        Self {
            url,
            server_id,
            prefix: "galaxy".into(),
            scale: 3,
            snapshot_every: 1.0,
            lease_ms: 2000,
            home: None,
            balance_every: 5.0,
            balance_gap: 100,
        }
    }

    /// The sector this server starts in: `--home-sector`, or by default
    /// every other sector along the x axis, so two servers' homes never touch.
    pub fn home_sector(&self) -> SectorId {
        let (x, y) = self.home.unwrap_or((2 * i64::from(self.server_id), 0));
        SectorId::new(x, y, self.scale)
    }
}

/// The centre of a sector.
pub fn centre(s: SectorId) -> WorldPos {
    let r = s.bounds().expect("cluster sectors are valid");
    WorldPos::new(
        r.min.x + (r.max.x - r.min.x) / 2,
        r.min.y + (r.max.y - r.min.y) / 2,
    )
}

/// The cluster as this server sees it, and what it did.
#[derive(Resource)]
pub struct ClusterState {
    node: ClusterNode,
    scale: u8,
    snapshot_every: f64,
    /// Sectors this server owns, with their epochs.
    pub owned: BTreeMap<SectorId, Epoch>,
    /// Live servers with their load, as last read.
    pub peers: BTreeMap<u32, LoadReport>,
    /// The ownership table, as last read.
    pub owners: BTreeMap<SectorId, Ownership>,
    /// Whether the lease is valid and the simulation may step.
    pub acting: bool,
    /// Sectors adopted from dead servers.
    pub adopted: u64,
    /// Units and structures restored from their snapshots.
    pub restored_units: u64,
    /// Sectors lost to another owner (fenced).
    pub lost: u64,
    /// Snapshot writes the cluster refused.
    pub refused_writes: u64,
    /// Requests dropped because the node's queue was full.
    pub dropped_requests: u64,
    /// Clients sent to the server owning their view.
    pub redirects: u64,
    /// Sectors handed to other servers (planned migration).
    pub handoffs: u64,
    /// Moves this server ordered as the elected balancer.
    pub balancer_moves: u64,
    /// Sectors taken over from other servers (planned migration).
    pub takeovers: u64,
    /// Commands other servers forwarded here, applied.
    pub forwarded_in: u64,
    handing: BTreeMap<SectorId, handoff::Parked>,
    moved: handoff::MovedUnits,
    /// Ghosts and units crossing to and from neighbours.
    pub border: border::Border,
    last_snapshot: f64,
    last_load: f64,
    last_redirect_check: f64,
    claims_asked: HashMap<SectorId, f64>,
    /// Client (netcode id) -> (server it was sent to, when), so each is sent once.
    redirected: HashMap<u64, (u32, f64)>,
    auth: ServerAuth,
    errors_logged: u32,
}

impl ClusterState {
    /// This server's id.
    pub fn server_id(&self) -> u32 {
        self.node.server_id()
    }

    /// The cluster sector containing `pos`.
    pub fn sector_of(&self, pos: WorldPos) -> SectorId {
        SectorId::containing(pos, self.scale).expect("scale is valid")
    }

    fn send(&mut self, command: NodeCommand) {
        if !self.node.send(command) {
            self.dropped_requests += 1;
        }
    }
}

/// Joins the cluster at build time (so a bad URL fails the start).
pub struct ClusterPlugin {
    node: std::sync::Mutex<Option<ClusterNode>>,
    opts: ClusterOptions,
    auth: ServerAuth,
}

impl ClusterPlugin {
    /// Connects to NATS, reserves an id block and claims the home sector.
    /// `address` is where clients reach this server; `auth` signs the
    /// tokens of clients redirected to other servers (one key per cluster).
    pub fn join(opts: ClusterOptions, address: String, auth: ServerAuth) -> Result<Self, String> {
        let mut cluster = ClusterConfig::new(opts.url.clone(), opts.server_id);
        cluster.prefix = opts.prefix.clone();
        cluster.lease = std::time::Duration::from_millis(opts.lease_ms.max(200));
        let node = ClusterNode::start(NodeConfig {
            cluster,
            address,
            home: vec![opts.home_sector()],
            balance_every: std::time::Duration::from_secs_f32(opts.balance_every.max(0.0)),
            balance_gap: opts.balance_gap,
        })
        .map_err(|e| format!("cannot join cluster at {}: {e}", opts.url))?;
        Ok(Self {
            node: std::sync::Mutex::new(Some(node)),
            opts,
            auth,
        })
    }

    /// Where this server's bots live: its home sector's centre and a
    /// radius that keeps them inside it, if it won the sector (a server
    /// rejoining finds it adopted by others: no bots).
    pub fn bot_home(&self) -> Option<(WorldPos, i64)> {
        let guard = self.node.lock().unwrap_or_else(|e| e.into_inner());
        let home = self.opts.home_sector();
        let radius = (home.size_cm() / 5).min(150_000) as i64;
        guard
            .as_ref()
            .filter(|n| n.home().contains_key(&home))
            .map(|_| (centre(home), radius))
    }
}

impl Plugin for ClusterPlugin {
    fn build(&self, app: &mut App) {
        let node = self
            .node
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("ClusterPlugin is added once");
        {
            let mut sim = app.world_mut().resource_mut::<SimWorld>();
            sim.0.use_id_block(node.first_unit_id(), ID_BLOCK_LEN);
        }
        let owned = node.home().clone();
        info!(
            "joined cluster at {} as server {}; home {:?}: {}",
            self.opts.url,
            node.server_id(),
            self.opts.home_sector(),
            if owned.is_empty() {
                "owned by another server (rejoining: no bots)"
            } else {
                "claimed"
            }
        );
        app.insert_resource(ClusterState {
            node,
            scale: self.opts.scale,
            snapshot_every: f64::from(self.opts.snapshot_every.max(0.05)),
            owned,
            peers: BTreeMap::new(),
            owners: BTreeMap::new(),
            acting: true,
            adopted: 0,
            restored_units: 0,
            lost: 0,
            refused_writes: 0,
            dropped_requests: 0,
            redirects: 0,
            handoffs: 0,
            balancer_moves: 0,
            takeovers: 0,
            forwarded_in: 0,
            handing: BTreeMap::new(),
            moved: handoff::MovedUnits::default(),
            border: border::Border::default(),
            last_snapshot: 0.0,
            last_load: 0.0,
            last_redirect_check: 0.0,
            claims_asked: HashMap::new(),
            redirected: HashMap::new(),
            auth: self.auth.clone(),
            errors_logged: 0,
        })
        .configure_sets(FixedUpdate, NetSet::Simulate.run_if(acting))
        .add_systems(FixedUpdate, apply_node_events.before(NetSet::Simulate))
        .add_systems(
            FixedUpdate,
            claim_entered_sectors.after(NetSet::Simulate).run_if(acting),
        )
        .add_systems(
            FixedUpdate,
            (border::transfer_walkers, handoff::forward_commands)
                .chain()
                .after(NetSet::Simulate)
                .run_if(acting),
        )
        .add_systems(
            Update,
            (
                write_snapshots,
                report_load,
                redirect::redirect_clients,
                border::publish_syncs,
            ),
        );
    }
}

/// Run condition: true on a standalone server, and on a cluster member
/// whose lease is valid.
pub fn acting(state: Option<Res<ClusterState>>) -> bool {
    state.is_none_or(|s| s.acting)
}

/// Drains the node: sectors won (restored from their snapshots), lost
/// (their units dropped), refused writes and the cluster view.
fn apply_node_events(
    mut state: ResMut<ClusterState>,
    mut sim: ResMut<SimWorld>,
    mut remote: ResMut<RemoteUnits>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    state.moved.expire(&mut remote, now);
    // Read the gate before the events: anything that made it open again
    // (a lost sector on resuming) was sent before, and is applied below.
    let acting = state.node.acting();
    while let Some(event) = state.node.try_recv() {
        match event {
            NodeEvent::Owned {
                sector,
                epoch,
                snapshot,
                origin,
            } => {
                state.owned.insert(sector, epoch);
                let (added, tick) = snapshot.as_ref().map_or((0, 0), |s| {
                    let added = sim.0.import(&s.units).added;
                    sim.0.apply_orders(&s.orders);
                    (added, s.tick)
                });
                match origin {
                    Origin::Adopted(from) => {
                        state.adopted += 1;
                        state.restored_units += added as u64;
                        info!(
                            "adopted sector {sector:?} (epoch {epoch}) from dead server {from}: {added} units restored from its snapshot at tick {tick}"
                        );
                    }
                    Origin::HandedOver(from) => {
                        state.takeovers += 1;
                        if let Some(s) = &snapshot {
                            handoff::arrived(&mut remote, s);
                        }
                        info!(
                            "took over sector {sector:?} (epoch {epoch}) from server {from}: {added} units"
                        );
                    }
                    Origin::Claimed => info!("claimed sector {sector:?} (epoch {epoch})"),
                }
            }
            NodeEvent::MigrateOut { sectors, to } => {
                for sector in sectors {
                    handoff::park(&mut state, &mut sim.0, &mut remote, sector, to);
                }
            }
            NodeEvent::HandedOff {
                sector,
                to,
                epoch,
                elapsed,
            } => handoff::handed_off(&mut state, sector, to, epoch, elapsed, now),
            NodeEvent::HandoffFailed { sector, to, reason } => {
                handoff::failed(&mut state, &mut sim.0, &mut remote, sector, to, &reason)
            }
            NodeEvent::Balanced(mv) => {
                state.balancer_moves += 1;
                info!(
                    "balancer: asked server {} to move sector {:?} ({} units) to server {}",
                    mv.from, mv.sector, mv.units, mv.to
                );
            }
            NodeEvent::Sync(sync) => border::on_sync(&mut state, &sim.0, &mut remote, sync),
            NodeEvent::TransferIn(t) => border::received(&mut state, &mut sim.0, &mut remote, &t),
            NodeEvent::TransferDone { to, units, elapsed } => {
                state.border.transfers_out += 1;
                info!(
                    "gave {units} units to server {to} in {:.2} ms",
                    elapsed.as_secs_f64() * 1000.0
                );
            }
            NodeEvent::TransferFailed {
                to: _,
                transfer,
                reason,
            } => border::take_back(&mut state, &mut sim.0, &mut remote, &transfer, &reason),
            NodeEvent::Forwarded(batch) => {
                for command in &batch.commands {
                    sim.0.apply_command(batch.player_id, command);
                    state.forwarded_in += 1;
                }
            }
            NodeEvent::Lost { sector, owner } => {
                state.owned.remove(&sector);
                state.lost += 1;
                let dropped = sim.0.remove_where(|p| sector.contains(p));
                warn!(
                    "lost sector {sector:?} to {:?}: fenced, {dropped} units dropped",
                    owner.map(|o| o.server)
                );
            }
            NodeEvent::WriteRefused { sector, reason } => {
                state.refused_writes += 1;
                if state.refused_writes <= 5 {
                    warn!("snapshot of {sector:?} refused: {reason}");
                }
            }
            NodeEvent::Suspended => {
                warn!("cluster lease lapsed: not acting for any sector until renewed")
            }
            NodeEvent::Resumed => info!(
                "cluster lease renewed: acting again for {} sectors",
                state.owned.len()
            ),
            NodeEvent::View { peers, owners } => {
                state.peers = peers;
                state.owners = owners;
                border::prune(&mut state, &mut remote);
            }
            NodeEvent::Error(e) => {
                state.errors_logged += 1;
                if state.errors_logged <= 5 {
                    warn!("cluster: {e}");
                }
            }
        }
    }
    state.acting = acting;
}

/// Units that walked into a sector nobody owns: claim it, so it is ours
/// to simulate and snapshot (asked at most once a second per sector).
fn claim_entered_sectors(
    mut state: ResMut<ClusterState>,
    sim: Res<SimWorld>,
    time: Res<Time<Real>>,
) {
    if !sim.0.tick().is_multiple_of(10) {
        return;
    }
    let now = time.elapsed_secs_f64();
    // Forget old requests: the map stays as small as the sectors in play.
    state.claims_asked.retain(|_, t| now - *t < 10.0);
    let mut wanted = Vec::new();
    for (_, u) in sim.0.units() {
        let s = state.sector_of(u.position);
        if !state.owned.contains_key(&s) && !state.owners.contains_key(&s) {
            wanted.push(s);
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    for s in wanted {
        if state.claims_asked.get(&s).is_none_or(|&t| now - t >= 1.0) {
            state.claims_asked.insert(s, now);
            state.send(NodeCommand::Claim(s));
        }
    }
}

/// Every `snapshot_every` seconds, persists each owned sector (an empty
/// one too: its emptiness is state).
fn write_snapshots(mut state: ResMut<ClusterState>, sim: Res<SimWorld>, time: Res<Time<Real>>) {
    let now = time.elapsed_secs_f64();
    if !state.acting || now - state.last_snapshot < state.snapshot_every {
        return;
    }
    state.last_snapshot = now;
    // A sector drained for a handoff is in flight: its state is the one sent.
    let mut per_sector: BTreeMap<SectorId, Vec<_>> = state
        .owned
        .keys()
        .filter(|s| !state.handing.contains_key(s))
        .map(|&s| (s, Vec::new()))
        .collect();
    for unit in sim.0.export(|_| true) {
        let s = state.sector_of(unit.unit.position());
        if let Some(v) = per_sector.get_mut(&s) {
            v.push(unit);
        }
    }
    let tick = sim.0.tick();
    for (sector, units) in per_sector {
        let epoch = state.owned[&sector];
        let orders = sim.0.export_orders(sector, |p| sector.contains(p));
        state.send(NodeCommand::Snapshot(
            sector,
            SectorSnapshot {
                tick,
                epoch,
                units,
                orders,
            },
        ));
    }
}

/// Units in each owned sector, keyed for the load report.
fn units_per_sector(state: &ClusterState, sim: &galaxy_sim::World) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<SectorId, u64> = state.owned.keys().map(|&s| (s, 0)).collect();
    for (_, u) in sim.units() {
        if let Some(n) = counts.get_mut(&state.sector_of(u.position)) {
            *n += 1;
        }
    }
    counts
        .into_iter()
        .map(|(s, n)| (galaxy_cluster::sector_key(s), n))
        .collect()
}

/// Keeps the load report in the lease fresh.
fn report_load(
    mut state: ResMut<ClusterState>,
    sim: Res<SimWorld>,
    sessions: Res<Sessions>,
    times: Res<TickTimes>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    if now - state.last_load < 0.25 {
        return;
    }
    state.last_load = now;
    let load = LoadReport {
        server: state.server_id(),
        address: String::new(),
        units: sim.0.unit_count() as u64,
        clients: sessions.len() as u64,
        tick_ms_p99: times.quantile(0.99),
        sectors: units_per_sector(&state, &sim.0),
    };
    state.send(NodeCommand::Load(load));
}
