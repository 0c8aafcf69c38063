//! One server's handle on the cluster: its lease, the sectors it owns and
//! the snapshots it writes, all in JetStream key-value buckets.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use galaxy_protocol::SectorId;

use crate::messages::{ClusterMessage, LoadBalance, SectorSnapshot, ServerSync};

use crate::records::{LoadReport, Ownership, sector_from_key, sector_key};

/// A fencing token: the KV revision that made a server a sector's owner.
pub type Epoch = u64;

/// How to join a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// This server's id (unique in the cluster).
    pub server_id: u32,
    /// Lease time: a server silent this long is dead, and stops acting itself.
    /// It is the cluster's, not one server's: the first server to connect
    /// creates the lease bucket with this as its entries' max age, so every
    /// server of a cluster must use the same value.
    pub lease: Duration,
    /// Bucket name prefix, so several universes can share one NATS.
    pub prefix: String,
}

impl ClusterConfig {
    /// Defaults: a 2 s lease, buckets `galaxy_*`.
    pub fn new(url: impl Into<String>, server_id: u32) -> Self {
        Self {
            url: url.into(),
            server_id,
            lease: Duration::from_secs(2),
            prefix: "galaxy".into(),
        }
    }
}

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS could not be reached or refused a request.
    #[error("nats: {0}")]
    Nats(String),
    /// The sector already has an owner.
    #[error("sector {sector:?} is owned by server {owner}")]
    AlreadyOwned {
        /// The sector.
        sector: SectorId,
        /// Its owner.
        owner: u32,
    },
    /// Someone changed the record since the revision we acted on: another
    /// server won, or we are a stale owner. We must not act for it.
    #[error("sector {0:?}: fenced (a newer owner or write exists)")]
    Fenced(SectorId),
    /// Our lease expired: we may not act for any sector until renewed.
    #[error("lease expired: not acting for any sector")]
    LeaseExpired,
    /// A stored record could not be decoded.
    #[error("corrupt record {key}: {message}")]
    Corrupt {
        /// The key.
        key: String,
        /// What was wrong.
        message: String,
    },
}

fn nats(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats(e.to_string())
}

/// One server's connection to the cluster.
pub struct Cluster {
    config: ClusterConfig,
    client: async_nats::Client,
    owners: kv::Store,
    leases: kv::Store,
    snapshots: kv::Store,
    last_renewed: Option<Instant>,
    /// Revision of our last snapshot write per sector (the next write must match it).
    snapshot_revisions: HashMap<SectorId, u64>,
}

impl Cluster {
    /// Connects and opens (or creates) the cluster's buckets.
    pub async fn connect(config: ClusterConfig) -> Result<Self, ClusterError> {
        let client = async_nats::connect(&config.url).await.map_err(nats)?;
        let js = jetstream::new(client.clone());
        let bucket = |name: &str| format!("{}_{name}", config.prefix);
        let owners = open(
            &js,
            kv::Config {
                bucket: bucket("owners"),
                history: 64,
                ..Default::default()
            },
        )
        .await?;
        let leases = open(
            &js,
            kv::Config {
                bucket: bucket("leases"),
                history: 1,
                max_age: config.lease,
                ..Default::default()
            },
        )
        .await?;
        let snapshots = open(
            &js,
            kv::Config {
                bucket: bucket("snapshots"),
                history: 2,
                max_value_size: 8 << 20,
                ..Default::default()
            },
        )
        .await?;
        Ok(Self {
            config,
            client,
            owners,
            leases,
            snapshots,
            last_renewed: None,
            snapshot_revisions: HashMap::new(),
        })
    }

    /// This server's id.
    pub fn server_id(&self) -> u32 {
        self.config.server_id
    }

    /// Renews this server's lease with its current load.
    pub async fn renew_lease(&mut self, load: &LoadReport) -> Result<(), ClusterError> {
        let started = Instant::now();
        let mut load = load.clone();
        load.server = self.config.server_id;
        let value = serde_json::to_vec(&load).map_err(nats)?;
        self.leases
            .put(lease_key(self.config.server_id), Bytes::from(value))
            .await
            .map_err(nats)?;
        // The lease runs from when we asked, not from when NATS answered.
        self.last_renewed = Some(started);
        Ok(())
    }

    /// Whether our lease is still ours: renewed within the lease time. A
    /// server must not act for its sectors when this is false.
    pub fn lease_valid(&self) -> bool {
        self.last_renewed
            .is_some_and(|t| t.elapsed() < self.config.lease)
    }

    /// Servers with a live lease, and their load.
    pub async fn live_servers(&self) -> Result<BTreeMap<u32, LoadReport>, ClusterError> {
        let mut out = BTreeMap::new();
        let mut keys = self.leases.keys().await.map_err(nats)?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(nats)?;
            if !key.starts_with("server.") {
                continue; // the balancer key shares the bucket
            }
            let Some(bytes) = self.leases.get(&key).await.map_err(nats)? else {
                continue;
            };
            let load: LoadReport =
                serde_json::from_slice(&bytes).map_err(|e| ClusterError::Corrupt {
                    key: key.clone(),
                    message: e.to_string(),
                })?;
            out.insert(load.server, load);
        }
        Ok(out)
    }

    /// Claims an unowned sector; the returned epoch fences everything we do for it.
    pub async fn claim(&self, sector: SectorId) -> Result<Epoch, ClusterError> {
        self.check_lease()?;
        let key = sector_key(sector);
        match self.owners.create(&key, self.owner_value()).await {
            Ok(rev) => Ok(rev),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let owner = self.owner(sector).await?.map_or(0, |o| o.server);
                Err(ClusterError::AlreadyOwned { sector, owner })
            }
            Err(e) => Err(nats(e)),
        }
    }

    /// Takes a sector over from the owner we saw at `seen_epoch` (a planned
    /// transfer or a failover). Exactly one of several racing servers wins;
    /// the others get [`ClusterError::Fenced`].
    pub async fn take_over(
        &self,
        sector: SectorId,
        seen_epoch: Epoch,
    ) -> Result<Epoch, ClusterError> {
        self.check_lease()?;
        match self
            .owners
            .update(sector_key(sector), self.owner_value(), seen_epoch)
            .await
        {
            Ok(rev) => Ok(rev),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(ClusterError::Fenced(sector))
            }
            Err(e) => Err(nats(e)),
        }
    }

    /// The current owner of a sector.
    pub async fn owner(&self, sector: SectorId) -> Result<Option<Ownership>, ClusterError> {
        let key = sector_key(sector);
        match self.owners.entry(&key).await.map_err(nats)? {
            Some(e) if e.operation == kv::Operation::Put => Ok(Some(Ownership {
                server: parse_owner(&key, &e.value)?,
                epoch: e.revision,
            })),
            _ => Ok(None),
        }
    }

    /// Every owned sector with its owner: the cluster's ownership table.
    pub async fn ownership_table(&self) -> Result<BTreeMap<SectorId, Ownership>, ClusterError> {
        let mut out = BTreeMap::new();
        let mut keys = match self.owners.keys().await {
            Ok(k) => k,
            Err(e) => return Err(nats(e)),
        };
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            names.push(key.map_err(nats)?);
        }
        for key in names {
            if let Some(sector) = sector_from_key(&key)
                && let Some(o) = self.owner(sector).await?
            {
                out.insert(sector, o);
            }
        }
        Ok(out)
    }

    /// Every ownership a sector has had, oldest first (for audits: epochs
    /// must only grow, and each owner change is one revision-checked write).
    pub async fn owner_history(&self, sector: SectorId) -> Result<Vec<Ownership>, ClusterError> {
        let key = sector_key(sector);
        let mut out = Vec::new();
        let mut history = self.owners.history(&key).await.map_err(nats)?;
        while let Some(e) = history.next().await {
            let e = e.map_err(nats)?;
            if e.operation == kv::Operation::Put {
                out.push(Ownership {
                    server: parse_owner(&key, &e.value)?,
                    epoch: e.revision,
                });
            }
        }
        Ok(out)
    }

    /// Persists a sector's state. Refused with [`ClusterError::Fenced`] if
    /// the owner record is not ours at the snapshot's epoch, or anyone wrote
    /// the sector's snapshot since our last write (a newer owner), and with
    /// [`ClusterError::LeaseExpired`] if our lease lapsed.
    pub async fn write_snapshot(
        &mut self,
        sector: SectorId,
        snapshot: &SectorSnapshot,
    ) -> Result<(), ClusterError> {
        self.check_lease()?;
        // The snapshot's epoch must be the owner record's, and ours.
        let me = Ownership {
            server: self.config.server_id,
            epoch: snapshot.epoch,
        };
        if self.owner(sector).await? != Some(me) {
            self.snapshot_revisions.remove(&sector);
            return Err(ClusterError::Fenced(sector));
        }
        let msg = ClusterMessage::ServerSync(ServerSync {
            server_id: self.config.server_id,
            sector_states: BTreeMap::from([(sector, snapshot.clone())]),
            timestamp: snapshot.tick,
        });
        let bytes = msg.encode().map_err(nats)?;
        let key = sector_key(sector);
        let expected = match self.snapshot_revisions.get(&sector) {
            Some(&rev) => rev,
            // First write as owner: on top of whatever is stored now.
            None => self
                .snapshots
                .entry(&key)
                .await
                .map_err(nats)?
                .map_or(0, |e| e.revision),
        };
        match self
            .snapshots
            .update(&key, Bytes::from(bytes), expected)
            .await
        {
            Ok(rev) => {
                self.snapshot_revisions.insert(sector, rev);
                Ok(())
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                self.snapshot_revisions.remove(&sector);
                Err(ClusterError::Fenced(sector))
            }
            Err(e) => Err(nats(e)),
        }
    }

    /// The last persisted state of a sector.
    pub async fn read_snapshot(
        &self,
        sector: SectorId,
    ) -> Result<Option<SectorSnapshot>, ClusterError> {
        let key = sector_key(sector);
        let Some(bytes) = self.snapshots.get(&key).await.map_err(nats)? else {
            return Ok(None);
        };
        let corrupt = |message: String| ClusterError::Corrupt {
            key: key.clone(),
            message,
        };
        match ClusterMessage::decode(&bytes).map_err(|e| corrupt(e.to_string()))? {
            ClusterMessage::ServerSync(mut s) => Ok(s.sector_states.remove(&sector)),
            _ => Err(corrupt("not a ServerSync".into())),
        }
    }

    /// The last persisted state of a sector and when NATS stored it (to
    /// check how old a restored snapshot was).
    pub async fn read_snapshot_entry(
        &self,
        sector: SectorId,
    ) -> Result<Option<(SectorSnapshot, std::time::SystemTime)>, ClusterError> {
        let key = sector_key(sector);
        let Some(entry) = self.snapshots.entry(&key).await.map_err(nats)? else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let corrupt = |message: String| ClusterError::Corrupt {
            key: key.clone(),
            message,
        };
        match ClusterMessage::decode(&entry.value).map_err(|e| corrupt(e.to_string()))? {
            ClusterMessage::ServerSync(mut s) => Ok(s
                .sector_states
                .remove(&sector)
                .map(|snap| (snap, std::time::SystemTime::from(entry.created)))),
            _ => Err(corrupt("not a ServerSync".into())),
        }
    }

    /// Forgets our snapshot write position for sectors we no longer own.
    pub fn release(&mut self, sector: SectorId) {
        self.snapshot_revisions.remove(&sector);
    }

    /// Failover: takes over every sector whose owner has no live lease.
    /// Returns the sectors won, each with its epoch and last snapshot.
    /// Sectors are spread over the live servers by hash, so survivors do
    /// not all race for every sector; a sector whose designated heir is
    /// itself gone is open to anyone.
    pub async fn adopt_orphans(
        &mut self,
    ) -> Result<Vec<(SectorId, Epoch, Option<SectorSnapshot>)>, ClusterError> {
        self.check_lease()?;
        let live = self.live_servers().await?;
        let table = self.ownership_table().await?;
        Ok(self
            .adopt_orphans_of(&live, &table)
            .await?
            .into_iter()
            .map(|(s, e, snap, _)| (s, e, snap))
            .collect())
    }

    /// [`Cluster::adopt_orphans`] against a view already read: `live`
    /// servers and the ownership `table`. Also returns each sector's dead owner.
    pub async fn adopt_orphans_of(
        &mut self,
        live: &BTreeMap<u32, LoadReport>,
        table: &BTreeMap<SectorId, Ownership>,
    ) -> Result<Vec<(SectorId, Epoch, Option<SectorSnapshot>, u32)>, ClusterError> {
        self.check_lease()?;
        let heirs: Vec<u32> = live.keys().copied().collect();
        let mut won = Vec::new();
        // Owners missing from `live` asked once more, each by its own key.
        let mut confirmed_dead: BTreeMap<u32, bool> = BTreeMap::new();
        for (&sector, o) in table {
            if live.contains_key(&o.server) || heirs.is_empty() {
                continue;
            }
            let heir = heirs[(hash(sector) % heirs.len() as u64) as usize];
            if heir != self.config.server_id && live.contains_key(&heir) {
                continue;
            }
            // A key listing can miss a lease renewed while it ran (the old
            // entry is replaced under it): before taking a live server's
            // sector, read that server's lease key itself.
            let dead = match confirmed_dead.get(&o.server) {
                Some(&dead) => dead,
                None => {
                    let dead = self
                        .leases
                        .get(lease_key(o.server))
                        .await
                        .map_err(nats)?
                        .is_none();
                    confirmed_dead.insert(o.server, dead);
                    dead
                }
            };
            if !dead {
                continue;
            }
            match self.take_over(sector, o.epoch).await {
                Ok(epoch) => {
                    let snapshot = self.read_snapshot(sector).await?;
                    won.push((sector, epoch, snapshot, o.server));
                }
                Err(ClusterError::Fenced(_)) => {} // someone else won
                Err(e) => return Err(e),
            }
        }
        Ok(won)
    }

    /// Reserves a block of unit ids no other server (or earlier run of this
    /// one) will use: a counter in the owners bucket, bumped by a
    /// revision-checked write. Returns the block number (from 1).
    pub async fn reserve_id_block(&self) -> Result<u64, ClusterError> {
        const KEY: &str = "ids.next";
        loop {
            match self.owners.entry(KEY).await.map_err(nats)? {
                Some(e) if e.operation == kv::Operation::Put => {
                    let n: u64 = std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| ClusterError::Corrupt {
                            key: KEY.into(),
                            message: "not a number".into(),
                        })?;
                    let next = Bytes::from((n + 1).to_string());
                    match self.owners.update(KEY, next, e.revision).await {
                        Ok(_) => return Ok(n),
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                        Err(e) => return Err(nats(e)),
                    }
                }
                _ => match self.owners.create(KEY, Bytes::from("2")).await {
                    Ok(_) => return Ok(1),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(nats(e)),
                },
            }
        }
    }

    /// The NATS subject a server listens on for handoffs, migration
    /// orders and forwarded commands.
    pub fn server_subject(&self, server: u32) -> String {
        format!("{}.server.{server}", self.config.prefix)
    }

    /// The NATS connection (for the node's subscriptions and requests).
    pub fn nats_client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Sends `from` the design's `LoadBalance`: hand these sectors to `to`
    /// (what the balancer, or an operator, does to move load).
    pub async fn request_migration(
        &self,
        from: u32,
        to: u32,
        sectors: Vec<SectorId>,
    ) -> Result<(), ClusterError> {
        let msg = ClusterMessage::LoadBalance(LoadBalance {
            target_server: to,
            sectors_to_migrate: sectors,
        });
        let bytes = msg.encode().map_err(nats)?;
        self.client
            .publish(self.server_subject(from), Bytes::from(bytes))
            .await
            .map_err(nats)?;
        self.client.flush().await.map_err(nats)
    }

    /// Holds (or takes, if nobody does) the balancer role: a key in the
    /// lease bucket, so it expires with its holder's silence. True if we
    /// are the balancer now.
    pub async fn hold_balancer(&self) -> Result<bool, ClusterError> {
        const KEY: &str = "balancer";
        if !self.lease_valid() {
            return Ok(false);
        }
        let me = Bytes::from(self.config.server_id.to_string());
        match self.leases.entry(KEY).await.map_err(nats)? {
            Some(e) if e.operation == kv::Operation::Put => {
                if e.value != me {
                    return Ok(false);
                }
                match self.leases.update(KEY, me, e.revision).await {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
                    Err(e) => Err(nats(e)),
                }
            }
            _ => match self.leases.create(KEY, me).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(nats(e)),
            },
        }
    }

    /// The cluster's lease time.
    pub fn lease(&self) -> Duration {
        self.config.lease
    }

    fn check_lease(&self) -> Result<(), ClusterError> {
        if self.lease_valid() {
            Ok(())
        } else {
            Err(ClusterError::LeaseExpired)
        }
    }

    fn owner_value(&self) -> Bytes {
        Bytes::from(self.config.server_id.to_string())
    }
}

fn lease_key(server: u32) -> String {
    format!("server.{server}")
}

fn hash(s: SectorId) -> u64 {
    // SplitMix-style mixing of the coordinates: stable across processes.
    let mut z = (s.x as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((s.y as u64).rotate_left(32))
        .wrapping_add(u64::from(s.scale));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn parse_owner(key: &str, value: &[u8]) -> Result<u32, ClusterError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClusterError::Corrupt {
            key: key.to_owned(),
            message: "owner is not a server id".into(),
        })
}

async fn open(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store, ClusterError> {
    match js.get_key_value(config.bucket.clone()).await {
        Ok(store) => Ok(store),
        Err(_) => js.create_key_value(config).await.map_err(nats),
    }
}
