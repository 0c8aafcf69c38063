//! The messages between a client and a server, one enum per direction:
//! [`ClientMessage`] (client to server) and [`ServerMessage`] (server to
//! client). Messages between servers are `galaxy_cluster`'s.

use serde::{Deserialize, Serialize};

use crate::ack::{Sequence, UpdateAck};
use crate::combat::CombatEvent;
use crate::command::BatchCommand;
use crate::delta::UnitDelta;
use crate::position::WorldRect;
use crate::sector::SectorId;
use crate::snapshot::UnitSnapshot;
use crate::unit::{PlayerId, QuantizedUnit};

/// Protocol version a client announces in [`Connect`]; bumped on any wire change.
pub const PROTOCOL_VERSION: u16 = 3;

/// Longest `auth_token` accepted, in bytes.
pub const MAX_AUTH_TOKEN_BYTES: usize = 2048;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitUpdate<S: UnitSnapshot = QuantizedUnit> {
    /// The sector these units are in.
    pub sector_id: SectorId,
    /// Packet sequence, acknowledged with [`UpdateAck`].
    pub sequence: Sequence,
    /// Server tick at which the states were sampled.
    pub timestamp: u64,
    /// One entry per unit, ids strictly increasing.
    pub updates: Vec<UnitDelta<S>>,
}

/// The client's area of interest: its view at scale 0 and how fast it wants updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ViewUpdate {
    /// The world rectangle on screen.
    pub view: WorldRect,
    /// Highest update rate the client wants (lower on a poor link); 0 = server default.
    pub max_update_hz: u8,
    /// The client's link class: a server never sends it more than the
    /// profile allows (it may send less, by its own budget).
    pub profile: LinkProfile,
}

/// What kind of link a client is on, so the server can fit its updates to
/// it: a desktop takes what the server's budget gives; a phone on a mobile
/// network asks for fewer bytes, a lower rate and a coarser far ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkProfile {
    /// The server's own budget and rate.
    #[default]
    Desktop,
    /// At most [`LinkProfile::MOBILE_KBPS`] kbps and
    /// [`LinkProfile::MOBILE_HZ`] updates a second; far sectors at half
    /// their usual rate.
    Mobile,
}

impl LinkProfile {
    /// A mobile client's byte budget in kbps.
    pub const MOBILE_KBPS: u16 = 32;
    /// A mobile client's highest update rate.
    pub const MOBILE_HZ: u8 = 10;

    /// Most kbps of updates the client takes (0: no limit of its own).
    pub fn max_kbps(self) -> u16 {
        match self {
            Self::Desktop => 0,
            Self::Mobile => Self::MOBILE_KBPS,
        }
    }

    /// Highest update rate the client takes (0: no limit of its own).
    pub fn max_update_hz(self) -> u8 {
        match self {
            Self::Desktop => 0,
            Self::Mobile => Self::MOBILE_HZ,
        }
    }

    /// How many times longer than usual the far ring's sectors wait between
    /// updates.
    pub fn far_interval_factor(self) -> u64 {
        match self {
            Self::Desktop => 1,
            Self::Mobile => 2,
        }
    }

    /// The more frugal of the two (a server on the mobile profile treats
    /// every client as mobile; a mobile client stays mobile anywhere).
    pub fn stricter(self, other: Self) -> Self {
        if self == Self::Mobile || other == Self::Mobile {
            Self::Mobile
        } else {
            Self::Desktop
        }
    }

    /// The profile named `name` (`desktop`, `mobile`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "desktop" => Some(Self::Desktop),
            "mobile" => Some(Self::Mobile),
            _ => None,
        }
    }

    /// Its name, as [`LinkProfile::from_name`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Mobile => "mobile",
        }
    }
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

/// Everything a client sends a server. A server decodes only these
/// ([`crate::codec::decode_client`]), so it cannot even be handed a
/// message meant for a client or for another server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// Client hello.
    Connect(Connect),
    /// Acknowledges unit updates (unreliable).
    UpdateAck(UpdateAck),
    /// The client's view changed.
    ViewUpdate(ViewUpdate),
    /// Player orders (reliable ordered).
    BatchCommand(BatchCommand),
    /// A digest of the client's replica, for state verification
    /// (unreliable, beside the acks).
    StateDigest(crate::verify::StateDigest),
}

impl ClientMessage {
    /// Short name of the variant, for logs and per-type counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "Connect",
            Self::UpdateAck(_) => "UpdateAck",
            Self::ViewUpdate(_) => "ViewUpdate",
            Self::BatchCommand(_) => "BatchCommand",
            Self::StateDigest(_) => "StateDigest",
        }
    }
}

/// Everything a server sends a client, for a game whose units are
/// snapshots of type `S`. A client decodes only these
/// ([`crate::codec::decode_server`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMessage<S: UnitSnapshot = QuantizedUnit> {
    /// Unit deltas for one sector (unreliable).
    UnitUpdate(UnitUpdate<S>),
    /// A battle event (reliable, ahead of updates).
    CombatEvent(CombatEvent),
    /// Move to another server (reliable, on the events channel).
    Redirect(Redirect),
    /// Who commands the client's army (reliable, on the events channel).
    ArmyControl(ArmyControl),
}

/// Who commands a player's army, told to that player when they connect:
/// whether the server's AI commanded it while they were away (and how
/// much), and after how long it would take over again if they dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArmyControl {
    /// The player.
    pub player_id: PlayerId,
    /// Milliseconds a player may be gone before the AI takes the army.
    pub grace_ms: u32,
    /// Orders the AI gave the army while the player was away, all told.
    pub ai_orders: u32,
    /// Times the AI took the army over.
    pub takeovers: u32,
}

impl<S: UnitSnapshot> ServerMessage<S> {
    /// Short name of the variant, for logs and per-type counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnitUpdate(_) => "UnitUpdate",
            Self::CombatEvent(_) => "CombatEvent",
            Self::Redirect(_) => "Redirect",
            Self::ArmyControl(_) => "ArmyControl",
        }
    }
}
