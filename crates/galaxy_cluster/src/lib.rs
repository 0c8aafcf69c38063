//! # galaxy_cluster
//!
//! Several Galaxy RTS servers share one universe by sector, coordinated by
//! NATS JetStream (never by home-made consensus):
//!
//! - **Ownership** ([`Cluster::claim`], [`Cluster::take_over`]): one key per
//!   sector in a KV bucket. Every change is a revision-checked write, and
//!   the winning revision is the owner's **epoch**, the fencing token that
//!   every `ServerSync`, snapshot and transfer carries.
//! - **Leases** ([`Cluster::renew_lease`]): each server keeps a key in a
//!   bucket whose entries expire after the lease time; the value is its
//!   `LoadBalance` load report. A server that could not renew within its
//!   lease stops acting by itself ([`Cluster::lease_valid`]).
//! - **Snapshots** ([`Cluster::write_snapshot`]): owners persist sector
//!   state; writes are revision-checked against the owner's last write, and
//!   a new owner's first write moves the revision on, so a stale owner's
//!   writes are refused ([`ClusterError::Fenced`]).
//! - **Failover** ([`Cluster::adopt_orphans`]): sectors whose owner has no
//!   live lease are taken over by revision (exactly one claimant wins) and
//!   restored from their last snapshot.
//!
//! - **Membership** ([`ClusterNode`]): a game server's background member
//!   that does all of the above on its own thread and tells the game what
//!   it owns, lost or adopted through channels; the game asks
//!   [`ClusterNode::acting`] before each tick.
//!
//! - **Messages** ([`ClusterMessage`]): `ServerSync`, `LoadBalance`,
//!   `SectorTransfer` and forwarded commands, between servers only.
//!
//! The crate has no Bevy: a server drives it from its own async runtime.

mod balance;
mod cluster;
pub mod messages;
pub mod nats_server;
mod node;
mod records;

pub use balance::{PlannedMove, plan_move};
pub use cluster::{Cluster, ClusterConfig, ClusterError, Epoch};
pub use messages::{ClusterMessage, LoadBalance, SectorSnapshot, SectorTransfer, ServerSync};
pub use nats_server::{NatsServer, NatsServerError};
pub use node::{ClusterNode, ID_BLOCK_LEN, NodeCommand, NodeConfig, NodeEvent, Origin};
pub use records::{LoadReport, Ownership, sector_from_key, sector_key};
