//! # galaxy_net
//!
//! Server-authoritative replication of a game's units for [Bevy], over
//! renet: each client receives only the **sectors** its view is interested
//! in, every unit that changed travels as a few **bits of delta against the
//! state that client acknowledged** (so loss never needs a resend), and
//! each client has a **byte budget** spent in priority order.
//!
//! ## The model
//!
//! - **Entities are the truth.** On the server, a unit is an entity with a
//!   [`NetUnit`] id and the game's own components. The game says once, with
//!   a [`UnitReplication`], which components make the unit's *snapshot*
//!   (a [`UnitSnapshot`]: quantized, integers only) and which components a
//!   client's entity gets back; `app.replicate_unit::<R>()` registers it.
//!   Snapshots are made only for entities that changed (Bevy's change
//!   detection, or a [`ChangeJournal`] the game fills when it already
//!   knows), so units standing still cost nothing.
//! - **Sectors.** The universe is a grid of 1 km sectors (scale 0) with
//!   coarser scales above. Each unit is indexed by the sector its snapshot
//!   puts it in; a client's [`View`] makes its [`Interest`]: the sectors
//!   under it at full rate, a ring of coarser ones farther out at a
//!   quarter. A sector is looked at for a client only when something in it
//!   changed since that client's last visit, at its activity's rate.
//! - **Deltas against acknowledged baselines.** Per client, the server
//!   remembers the newest snapshot that client acknowledged for every unit
//!   and sends only the fields that differ (a snapshot's own packing; the
//!   [`unit_snapshot!`] macro builds one from a list of fields). A lost
//!   update is never resent: the next delta is taken against the older
//!   baseline. Updates are grouped by sector into `UnitUpdate`s of at most
//!   1,200 bytes on an unreliable channel.
//! - **A byte budget with priorities.** When more changed than a client's
//!   budget holds, removals go first, then units by how long they waited,
//!   how near they are and how wrong the client's picture of them is;
//!   nothing starves.
//! - **Clients get entities.** Every unit in view is an entity with its
//!   [`NetUnit`], a [`Replica`] of its newest snapshot and the game's
//!   components. Interpolation and prediction are opt-in
//!   ([`SmoothingPlugin`]: a [`DrawnPosition`] per unit).
//!
//! ## Plugins and sets
//!
//! A server adds [`GalaxyServerPlugin`], a client [`GalaxyClientPlugin`];
//! either then adds [`NetcodeTransportPlugin`] (configured by a
//! [`ServerTransport`] or [`ClientTransport`] resource) and registers its
//! units with [`AppReplicationExt::replicate_unit`]. Settings are the
//! [`NetworkConfig`] and [`TickRate`] resources. Each frame runs the sets
//! [`NetSet`] in order: `Receive` (decode and validate what arrived;
//! commands to [`ReceivedCommands`]) -> `Simulate` (the game's fixed tick)
//! -> `Tag` (snapshots of what changed, sector index) -> `Replicate` (per
//! client, [`OutgoingEvents`] first, then its sectors of interest) ->
//! `Send`.
//!
//! `examples/own_components.rs` replicates a small game's own components
//! end to end; the crate `galaxy_protocol` is the sans-IO wire protocol
//! underneath (no Bevy), re-exported as [`protocol`].
//!
//! [Bevy]: https://bevyengine.org

pub mod channels;
mod client;
mod conditioner;
mod config;
mod degrade;
mod interest;
mod interpolation;
mod prediction;
mod reconnect;
mod redirect;
mod replication;
mod server;
mod smoothing;
mod stats;
pub mod tokens;
mod transport;

use bevy::prelude::*;

pub use galaxy_protocol as protocol;
pub use galaxy_protocol::{
    ArmyControl, CombatEvent, CombatEventType, CompressedCommand, LinkProfile, Motion, PlayerId,
    QuantizedUnit, SectorId, SnapshotField, UnitId, UnitIdList, UnitSnapshot, Velocity, WorldPos,
    WorldRect, unit_snapshot,
};

pub use client::{
    ArmyControlStatus, ClientReplica, ClientUnits, ConnectionStatus, GalaxyClientPlugin,
    LocalPlayer, MaxUpdateRate, OutgoingCommands, ReceivedEvents, Replica, View,
};
pub use conditioner::{ConditionerStats, Faults, LinkConditioner, LinkFaults};
pub use config::{CONFIG_FLAGS, ConfigError, NetworkConfig};
pub use degrade::{AutoUpdateRate, suggested_update_hz};
pub use interest::Interest;
pub use redirect::{PendingRedirects, RedirectError, redirect_to, validate_redirect};
pub use replication::{
    AppReplicationExt, ChangeJournal, NetUnit, ServerTick, SnapshotContext, TickPolicy, TickRate,
    UnitReplication,
};
pub use server::{
    GalaxyServerPlugin, MAX_SPECTATOR_DELAY_SECS, MIN_VIEW_INTERVAL_SECS, OutgoingArmyControl,
    OutgoingEvents, PhaseMs, ReceivedCommands, ReplicatedUnits, Session, Sessions, TickPhase,
    TickTimes, mark_phase,
};
pub use smoothing::{DrawnPosition, Smoothing, SmoothingConfig, SmoothingPlugin, SmoothingSet};
pub use stats::NetworkStats;
pub use tokens::ServerKey;
pub use transport::{
    ClientAuth, ClientConnector, ClientTransport, MAX_CONNECT_TARGETS, NetcodeTransportPlugin,
    ServerAddress, ServerAuth, ServerTransport, TransportError,
};

/// The order of the networking work in a frame.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetSet {
    /// Decode, validate and route what arrived (PreUpdate).
    Receive,
    /// The game's authoritative simulation (FixedUpdate, server); apply
    /// [`ReceivedCommands`] here.
    Simulate,
    /// Snapshots of the units that changed, sector index (PostUpdate, server).
    Tag,
    /// Encode each client's events and updates (PostUpdate, server).
    Replicate,
    /// Hand messages to renet (PostUpdate).
    Send,
}

/// What every plugin of this crate needs, inserted once: the settings,
/// the stats and the order of the sets.
pub(crate) fn init_common(app: &mut App) {
    if !app.world().contains_resource::<NetworkConfig>() {
        app.init_resource::<NetworkConfig>();
    }
    if !app.world().contains_resource::<TickRate>() {
        let rate = app.world().resource::<NetworkConfig>().tick_rate();
        app.insert_resource(rate);
    }
    if !app.world().contains_resource::<NetworkStats>() {
        app.init_resource::<NetworkStats>().configure_sets(
            PostUpdate,
            (NetSet::Tag, NetSet::Replicate, NetSet::Send).chain(),
        );
    }
}
