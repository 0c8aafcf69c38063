//! A game server's cluster membership, run in the background: a thread
//! with its own async runtime renews the lease (carrying the load report),
//! claims sectors, writes snapshots, adopts a dead server's sectors and
//! notices when it has been fenced. The game talks to it through channels
//! and asks [`ClusterNode::acting`] before every tick, so a server whose
//! lease lapsed (paused, cut off) stops acting by itself at once.

mod exchange;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use galaxy_protocol::{BatchCommand, SectorId};
use tokio::sync::mpsc as async_mpsc;

use crate::cluster::{Cluster, ClusterConfig, ClusterError, Epoch};
use crate::messages::{ClusterMessage, SectorSnapshot, SectorTransfer, ServerSync};
use crate::records::{LoadReport, Ownership};

/// How many requests from the game may wait for the node; more are dropped
/// (and counted by [`ClusterNode::send`]'s caller), never queued without bound.
const COMMAND_QUEUE: usize = 1024;

/// Ids in one server's block (see [`Cluster::reserve_id_block`]).
pub const ID_BLOCK_LEN: u64 = 1 << 40;

/// How a game server joins a cluster.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// NATS, server id, lease time, bucket prefix.
    pub cluster: ClusterConfig,
    /// Where this server's clients connect (`IP:PORT`), published in its lease.
    pub address: String,
    /// Sectors to claim when joining (its starting territory), if unowned.
    pub home: Vec<SectorId>,
    /// How often the balancer (if this server is elected) may move a
    /// sector; zero: never stand for balancer.
    pub balance_every: Duration,
    /// Least difference in units between the busiest and the idlest
    /// server that makes the balancer move a sector.
    pub balance_gap: u64,
}

/// What the game asks of its node.
#[derive(Clone, Debug)]
pub enum NodeCommand {
    /// The latest load (published with the next lease renewal).
    Load(LoadReport),
    /// Persist this owned sector's state (fenced by the owner's epoch).
    Snapshot(SectorId, SectorSnapshot),
    /// A unit entered this unowned sector: claim it.
    Claim(SectorId),
    /// Planned handoff: give this drained sector, in the state `snapshot`
    /// (taken at our epoch), to server `to`.
    Handoff {
        /// The sector.
        sector: SectorId,
        /// The new owner.
        to: u32,
        /// Its state at the moment it stopped here.
        snapshot: SectorSnapshot,
    },
    /// Border sync: our units near `to`'s sectors, for its ghosts.
    Sync {
        /// The neighbouring server.
        to: u32,
        /// Our border sectors' units.
        sync: ServerSync,
    },
    /// Units that walked into a sector `to` owns: give them to it.
    Transfer {
        /// The owner of `transfer.to_sector`.
        to: u32,
        /// The units (already out of our simulation) and their orders.
        transfer: SectorTransfer,
    },
    /// Pass client commands for units server `to` simulates now.
    Forward {
        /// The server.
        to: u32,
        /// The commands, with the player who gave them.
        batch: BatchCommand,
    },
}

/// How a sector became ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Claimed while unowned (nothing to restore).
    Claimed,
    /// Adopted from this dead server (restore its last snapshot).
    Adopted(u32),
    /// Handed over by this live server (restore the state it sent).
    HandedOver(u32),
}

/// What the node tells the game.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeEvent {
    /// We own this sector now: restore `snapshot` (the handed-over state,
    /// or a dead owner's last snapshot); `None` for a fresh claim.
    Owned {
        /// The sector.
        sector: SectorId,
        /// Our fencing epoch for it.
        epoch: Epoch,
        /// State to restore.
        snapshot: Option<SectorSnapshot>,
        /// How it became ours.
        origin: Origin,
    },
    /// The balancer (or an operator) asks us to hand these sectors to `to`.
    MigrateOut {
        /// The sectors.
        sectors: Vec<SectorId>,
        /// The server to give them to.
        to: u32,
    },
    /// A handoff we started is done: `to` owns the sector at `epoch`.
    HandedOff {
        /// The sector.
        sector: SectorId,
        /// The new owner.
        to: u32,
        /// Its epoch.
        epoch: Epoch,
        /// From sending the state to the new owner's confirmation.
        elapsed: Duration,
    },
    /// A handoff we started did not happen: the sector is still ours.
    HandoffFailed {
        /// The sector.
        sector: SectorId,
        /// The server that did not take it.
        to: u32,
        /// Why.
        reason: String,
    },
    /// Commands another server forwarded for units we simulate.
    Forwarded(BatchCommand),
    /// As the elected balancer, we asked a server to move a sector.
    Balanced(crate::PlannedMove),
    /// A neighbour's border units (show them as ghosts).
    Sync(ServerSync),
    /// Units another server gave us (they walked into our sector).
    TransferIn(SectorTransfer),
    /// Units we gave away were taken.
    TransferDone {
        /// The server that took them.
        to: u32,
        /// How many.
        units: usize,
        /// From sending to its confirmation.
        elapsed: Duration,
    },
    /// Units we gave away were not taken: take them back.
    TransferFailed {
        /// The server that refused.
        to: u32,
        /// The transfer, to undo.
        transfer: SectorTransfer,
        /// Why.
        reason: String,
    },
    /// Someone else owns this sector now: drop its units, do not act for it.
    Lost {
        /// The sector.
        sector: SectorId,
        /// Its new owner, if any.
        owner: Option<Ownership>,
    },
    /// A snapshot write was refused (lease lapsed, or fenced by a newer owner).
    WriteRefused {
        /// The sector.
        sector: SectorId,
        /// Why.
        reason: String,
    },
    /// The lease lapsed: the game has stopped acting (see [`ClusterNode::acting`]).
    Suspended,
    /// The lease is ours again and ownership was re-checked.
    Resumed,
    /// The cluster as last read: live servers with their load, and the owners table.
    View {
        /// Live servers (our own included).
        peers: BTreeMap<u32, LoadReport>,
        /// Every owned sector.
        owners: BTreeMap<SectorId, Ownership>,
    },
    /// A cluster request failed (NATS unreachable...); the node keeps trying.
    Error(String),
}

/// When the lease was last renewed with ownership confirmed; `None` while suspended.
#[derive(Default)]
struct Gate {
    since: Mutex<Option<Instant>>,
}

impl Gate {
    fn open(&self, at: Instant) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }
    fn close(&self) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    fn is_open(&self, lease: Duration) -> bool {
        self.since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < lease)
    }
}

/// A game server's handle on its background cluster member.
pub struct ClusterNode {
    commands: async_mpsc::Sender<NodeCommand>,
    events: Mutex<mpsc::Receiver<NodeEvent>>,
    gate: Arc<Gate>,
    lease: Duration,
    server_id: u32,
    id_block: u64,
    home: BTreeMap<SectorId, Epoch>,
    thread: Option<JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ClusterNode {
    /// Connects, renews the lease, reserves an id block and claims the
    /// `home` sectors nobody owns, then keeps the membership alive in the
    /// background. Fails if NATS cannot be reached.
    pub fn start(config: NodeConfig) -> Result<Self, ClusterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        let lease = config.cluster.lease;
        let server_id = config.cluster.server_id;
        let (mut cluster, id_block, home, inbox) = runtime.block_on(async {
            let mut cluster = Cluster::connect(config.cluster.clone()).await?;
            let load = LoadReport {
                address: config.address.clone(),
                ..LoadReport::default()
            };
            cluster.renew_lease(&load).await?;
            let id_block = cluster.reserve_id_block().await?;
            let inbox = cluster
                .nats_client()
                .subscribe(cluster.server_subject(server_id))
                .await
                .map_err(|e| ClusterError::Nats(e.to_string()))?;
            let mut home = BTreeMap::new();
            for &s in &config.home {
                match cluster.claim(s).await {
                    Ok(epoch) => {
                        home.insert(s, epoch);
                    }
                    Err(ClusterError::AlreadyOwned { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, ClusterError>((cluster, id_block, home, inbox))
        })?;
        let gate = Arc::new(Gate::default());
        gate.open(Instant::now());
        let (commands, command_rx) = async_mpsc::channel(COMMAND_QUEUE);
        let (event_tx, events) = mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let member = Member {
            owned: home.clone(),
            load: LoadReport {
                server: server_id,
                address: config.address,
                ..LoadReport::default()
            },
            events: event_tx,
            gate: gate.clone(),
            suspended: false,
            balance_every: config.balance_every,
            balance_gap: config.balance_gap,
            last_balance: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("cluster-node-{server_id}"))
            .spawn(move || {
                runtime.block_on(member.run(&mut cluster, inbox, command_rx, stop_rx));
            })
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        Ok(Self {
            commands,
            events: Mutex::new(events),
            gate,
            lease,
            server_id,
            id_block,
            home,
            thread: Some(thread),
            stop: Some(stop),
        })
    }

    /// Whether the game may act for its sectors now: the lease was renewed
    /// within the lease time and ownership was confirmed since.
    pub fn acting(&self) -> bool {
        self.gate.is_open(self.lease)
    }

    /// This server's id.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// The first unit id of this server's own id block ([`ID_BLOCK_LEN`] ids).
    pub fn first_unit_id(&self) -> u64 {
        self.id_block.saturating_mul(ID_BLOCK_LEN).max(1)
    }

    /// The home sectors won when joining, with their epochs.
    pub fn home(&self) -> &BTreeMap<SectorId, Epoch> {
        &self.home
    }

    /// Queues a request; false if the queue is full or the node stopped
    /// (the request is dropped: snapshots and loads are resent anyway).
    pub fn send(&self, command: NodeCommand) -> bool {
        self.commands.try_send(command).is_ok()
    }

    /// The next event, if any.
    pub fn try_recv(&self) -> Option<NodeEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_recv()
            .ok()
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The background half: owns the cluster connection.
struct Member {
    owned: BTreeMap<SectorId, Epoch>,
    load: LoadReport,
    events: mpsc::Sender<NodeEvent>,
    gate: Arc<Gate>,
    suspended: bool,
    balance_every: Duration,
    balance_gap: u64,
    last_balance: Instant,
}

impl Member {
    async fn run(
        mut self,
        cluster: &mut Cluster,
        mut inbox: async_nats::Subscriber,
        mut commands: async_mpsc::Receiver<NodeCommand>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        // Renew five times per lease: a lease survives four lost renewals' worth of delay.
        let mut poll = tokio::time::interval(cluster.lease() / 5);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = poll.tick() => self.heartbeat(cluster).await,
                command = commands.recv() => match command {
                    None => break,
                    Some(command) => self.handle(cluster, command).await,
                },
                message = inbox.next() => match message {
                    None => break,
                    Some(message) => self.inbound(cluster, message).await,
                },
            }
        }
    }

    fn emit(&self, event: NodeEvent) {
        // The game went away: nothing left to tell.
        let _ = self.events.send(event);
    }

    /// Renew the lease; on the way back from a lapse, re-check ownership
    /// before acting again; adopt orphans; publish the cluster view.
    async fn heartbeat(&mut self, cluster: &mut Cluster) {
        if !cluster.lease_valid() && !self.suspended {
            self.suspended = true;
            self.gate.close();
            self.emit(NodeEvent::Suspended);
        }
        let started = Instant::now();
        if let Err(e) = cluster.renew_lease(&self.load).await {
            self.emit(NodeEvent::Error(e.to_string()));
            return;
        }
        let owners = match cluster.ownership_table().await {
            Ok(t) => t,
            Err(e) => {
                self.emit(NodeEvent::Error(e.to_string()));
                return;
            }
        };
        // Anything we thought ours that the table gives to someone else is lost.
        let lost: Vec<SectorId> = self
            .owned
            .iter()
            .filter(|&(s, &epoch)| {
                owners.get(s)
                    != Some(&Ownership {
                        server: cluster.server_id(),
                        epoch,
                    })
            })
            .map(|(&s, _)| s)
            .collect();
        for sector in lost {
            self.owned.remove(&sector);
            cluster.release(sector);
            self.emit(NodeEvent::Lost {
                sector,
                owner: owners.get(&sector).copied(),
            });
        }
        self.gate.open(started);
        if self.suspended {
            self.suspended = false;
            self.emit(NodeEvent::Resumed);
        }
        let peers = match cluster.live_servers().await {
            Ok(p) => p,
            Err(e) => {
                self.emit(NodeEvent::Error(e.to_string()));
                return;
            }
        };
        let mut owners = owners;
        match cluster.adopt_orphans_of(&peers, &owners).await {
            Ok(won) => {
                for (sector, epoch, snapshot, from) in won {
                    self.owned.insert(sector, epoch);
                    owners.insert(
                        sector,
                        Ownership {
                            server: cluster.server_id(),
                            epoch,
                        },
                    );
                    self.emit(NodeEvent::Owned {
                        sector,
                        epoch,
                        snapshot,
                        origin: Origin::Adopted(from),
                    });
                }
            }
            Err(e) => self.emit(NodeEvent::Error(e.to_string())),
        }
        self.balance(cluster, &peers, &owners).await;
        self.emit(NodeEvent::View { peers, owners });
    }

    /// Holds the balancer role (if we stand for it) and, at most once per
    /// `balance_every`, moves one sector from the busiest server to the idlest.
    async fn balance(
        &mut self,
        cluster: &Cluster,
        peers: &BTreeMap<u32, LoadReport>,
        owners: &BTreeMap<SectorId, Ownership>,
    ) {
        if self.balance_every.is_zero() {
            return;
        }
        match cluster.hold_balancer().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return self.emit(NodeEvent::Error(e.to_string())),
        }
        if self.last_balance.elapsed() < self.balance_every {
            return;
        }
        self.last_balance = Instant::now();
        if let Some(mv) = crate::plan_move(peers, owners, self.balance_gap) {
            match cluster
                .request_migration(mv.from, mv.to, vec![mv.sector])
                .await
            {
                Ok(()) => self.emit(NodeEvent::Balanced(mv)),
                Err(e) => self.emit(NodeEvent::Error(e.to_string())),
            }
        }
    }

    async fn handle(&mut self, cluster: &mut Cluster, command: NodeCommand) {
        match command {
            NodeCommand::Load(load) => {
                self.load = LoadReport {
                    server: cluster.server_id(),
                    address: self.load.address.clone(),
                    ..load
                };
            }
            NodeCommand::Snapshot(sector, snapshot) => {
                // Only for a sector we own, at the epoch we own it by: a
                // snapshot queued before a handoff must not land after it.
                if self.owned.get(&sector) != Some(&snapshot.epoch) {
                    return self.emit(NodeEvent::WriteRefused {
                        sector,
                        reason: "not ours (any more) at that epoch".into(),
                    });
                }
                let Err(e) = cluster.write_snapshot(sector, &snapshot).await else {
                    return;
                };
                if matches!(e, ClusterError::Fenced(_)) {
                    let owner = cluster.owner(sector).await.ok().flatten();
                    let me = Ownership {
                        server: cluster.server_id(),
                        epoch: snapshot.epoch,
                    };
                    if owner != Some(me) && self.owned.remove(&sector).is_some() {
                        self.emit(NodeEvent::Lost { sector, owner });
                    }
                }
                self.emit(NodeEvent::WriteRefused {
                    sector,
                    reason: e.to_string(),
                });
            }
            NodeCommand::Claim(sector) => match cluster.claim(sector).await {
                Ok(epoch) => {
                    self.owned.insert(sector, epoch);
                    self.emit(NodeEvent::Owned {
                        sector,
                        epoch,
                        snapshot: None,
                        origin: Origin::Claimed,
                    });
                }
                Err(ClusterError::AlreadyOwned { .. }) => {}
                Err(e) => self.emit(NodeEvent::Error(e.to_string())),
            },
            NodeCommand::Handoff {
                sector,
                to,
                snapshot,
            } => self.hand_off(cluster, sector, to, snapshot).await,
            NodeCommand::Sync { to, sync } => {
                self.publish(cluster, to, &ClusterMessage::ServerSync(sync))
                    .await;
            }
            NodeCommand::Transfer { to, transfer } => self.transfer(cluster, to, transfer).await,
            NodeCommand::Forward { to, batch } => {
                self.publish(cluster, to, &ClusterMessage::BatchCommand(batch))
                    .await;
            }
        }
    }
}
