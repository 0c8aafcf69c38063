//! Every message of the protocol, as one [`NetworkMessage`] enum.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ack::{Sequence, UpdateAck};
use crate::combat::CombatEvent;
use crate::command::BatchCommand;
use crate::delta::UnitDelta;
use crate::position::WorldRect;
use crate::sector::SectorId;
use crate::unit::{CompressedUnit, PlayerId};

/// Protocol version a client announces in [`Connect`]; bumped on any wire change.
pub const PROTOCOL_VERSION: u16 = 3;

/// Longest `auth_token` accepted, in bytes.
pub const MAX_AUTH_TOKEN_BYTES: usize = 2048;

/// Most units in one snapshot or transfer.
pub const MAX_SNAPSHOT_UNITS: usize = 1 << 20;

/// Most order batches in one snapshot.
pub const MAX_SNAPSHOT_ORDERS: usize = 1 << 16;

/// Most sectors named in one cluster message.
pub const MAX_SECTORS_PER_MESSAGE: usize = 1 << 16;

/// Longest [`Redirect::server_addr`], in bytes (an IPv6 socket address with a
/// scope id needs at most 58).
pub const MAX_SERVER_ADDR_BYTES: usize = 64;

/// Longest [`Redirect::connect_token`], in bytes (a netcode connect token is 2048).
pub const MAX_CONNECT_TOKEN_BYTES: usize = 4096;

/// Client hello (the design's `Connect`). With netcode tokens the transport
/// already authenticated the player; this carries the version and token id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Connect {
    /// The player the client claims to be (checked against the connection).
    pub player_id: PlayerId,
    /// Opaque token (e.g. session id); at most [`MAX_AUTH_TOKEN_BYTES`].
    #[serde(deserialize_with = "crate::codec::bounded::string::<_, MAX_AUTH_TOKEN_BYTES>")]
    pub auth_token: String,
    /// The client's [`PROTOCOL_VERSION`].
    pub protocol_version: u16,
}

/// Changed units of one sector for one client at one tick (the design's
/// `UnitUpdate`), packed to at most `MAX_UNIT_UPDATE_BYTES` on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnitUpdate {
    /// The sector these units are in.
    pub sector_id: SectorId,
    /// Packet sequence, acknowledged with [`UpdateAck`].
    pub sequence: Sequence,
    /// Server tick at which the states were sampled.
    pub timestamp: u64,
    /// One entry per unit, ids strictly increasing.
    pub updates: Vec<UnitDelta>,
}

/// The client's area of interest: its view at scale 0 and how fast it wants updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ViewUpdate {
    /// The world rectangle on screen.
    pub view: WorldRect,
    /// Highest update rate the client wants (lower on a poor link); 0 = server default.
    pub max_update_hz: u8,
}

/// One sector's complete state at a tick, for inter-server sync, handoff and failover.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SectorSnapshot {
    /// Server tick of the snapshot.
    pub tick: u64,
    /// Ownership epoch (fencing token) of the server that took it.
    pub epoch: u64,
    /// Every unit in the sector.
    #[serde(deserialize_with = "crate::codec::bounded::vec::<_, _, MAX_SNAPSHOT_UNITS>")]
    pub units: Vec<CompressedUnit>,
    /// The standing orders of those units, as the commands that would give
    /// them again (so a restored or handed-over unit keeps walking).
    #[serde(deserialize_with = "crate::codec::bounded::vec::<_, _, MAX_SNAPSHOT_ORDERS>")]
    pub orders: Vec<BatchCommand>,
}

/// Border state a server shares with its neighbours (the design's `ServerSync`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerSync {
    /// The sending server.
    pub server_id: u32,
    /// Snapshots of the sectors it owns on the border.
    #[serde(deserialize_with = "crate::codec::bounded::map::<_, _, _, MAX_SECTORS_PER_MESSAGE>")]
    pub sector_states: BTreeMap<SectorId, SectorSnapshot>,
    /// Sender's tick.
    pub timestamp: u64,
}

/// A balancer's order to move sectors to another server (the design's `LoadBalance`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoadBalance {
    /// Server that should take the sectors.
    pub target_server: u32,
    /// The sectors to move.
    #[serde(deserialize_with = "crate::codec::bounded::vec::<_, _, MAX_SECTORS_PER_MESSAGE>")]
    pub sectors_to_migrate: Vec<SectorId>,
}

/// A player's units moving between sectors owned by different servers
/// (the design's `SectorTransfer`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SectorTransfer {
    /// The player whose units move.
    pub player_id: PlayerId,
    /// Sector they leave.
    pub from_sector: SectorId,
    /// Sector they enter.
    pub to_sector: SectorId,
    /// Ownership epoch of the sending owner (stale owners are refused).
    pub epoch: u64,
    /// The units, whole.
    #[serde(deserialize_with = "crate::codec::bounded::vec::<_, _, MAX_SNAPSHOT_UNITS>")]
    pub units: Vec<CompressedUnit>,
    /// Their standing orders, as commands (so they keep walking over there).
    #[serde(deserialize_with = "crate::codec::bounded::vec::<_, _, MAX_SNAPSHOT_ORDERS>")]
    pub orders: Vec<BatchCommand>,
}

/// A server tells a connected client to move to another server of the
/// cluster (player migration: the sectors it plays in are now owned there).
/// The client validates it, drops its current connection and connects to
/// `server_addr` with `connect_token`, keeping the old server as a fallback.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Redirect {
    /// The target server as `"IP:PORT"`; at most [`MAX_SERVER_ADDR_BYTES`].
    /// Not parsed by the codec: the client checks it is a socket address.
    #[serde(deserialize_with = "crate::codec::bounded::string::<_, MAX_SERVER_ADDR_BYTES>")]
    pub server_addr: String,
    /// A fresh netcode connect token naming `server_addr`, at most
    /// [`MAX_CONNECT_TOKEN_BYTES`]. Empty = the target is an insecure server
    /// (a client connected securely refuses that downgrade).
    #[serde(deserialize_with = "crate::codec::bounded::vec::<_, _, MAX_CONNECT_TOKEN_BYTES>")]
    pub connect_token: Vec<u8>,
    /// Ownership epoch of the sector that made the server redirect, so logs
    /// on both servers can be matched and stale redirects recognised.
    pub epoch: u64,
}

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NetworkMessage {
    /// Client hello.
    Connect(Connect),
    /// Unit deltas for one sector (server to client, unreliable).
    UnitUpdate(UnitUpdate),
    /// Acknowledges unit updates (client to server, unreliable).
    UpdateAck(UpdateAck),
    /// The client's view changed (client to server).
    ViewUpdate(ViewUpdate),
    /// Player orders (client to server, reliable ordered).
    BatchCommand(BatchCommand),
    /// A battle event (server to client, reliable, ahead of updates).
    CombatEvent(CombatEvent),
    /// Border sync between servers.
    ServerSync(ServerSync),
    /// Sector migration order between servers.
    LoadBalance(LoadBalance),
    /// Units handed between servers.
    SectorTransfer(SectorTransfer),
    /// Move to another server (server to client, reliable, on the events channel).
    Redirect(Redirect),
}

impl NetworkMessage {
    /// Short name of the variant, for logs and per-type counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "Connect",
            Self::UnitUpdate(_) => "UnitUpdate",
            Self::UpdateAck(_) => "UpdateAck",
            Self::ViewUpdate(_) => "ViewUpdate",
            Self::BatchCommand(_) => "BatchCommand",
            Self::CombatEvent(_) => "CombatEvent",
            Self::ServerSync(_) => "ServerSync",
            Self::LoadBalance(_) => "LoadBalance",
            Self::SectorTransfer(_) => "SectorTransfer",
            Self::Redirect(_) => "Redirect",
        }
    }
}
