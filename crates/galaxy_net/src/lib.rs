//! # galaxy_net
//!
//! The Bevy plugin of Galaxy RTS networking. One [`GalaxyNetPlugin`], in
//! server or client mode, moves data between the ECS and the sans-IO
//! `galaxy_protocol`; renet (with netcode) carries the bytes.
//!
//! Each frame runs the sets [`NetSet`] in order: `Receive` (decode and
//! validate what arrived) -> `Simulate` (server: the authoritative
//! `galaxy_sim` tick) -> `Tag` (changed units, sector index) -> `Replicate`
//! (per client: its sectors of interest as deltas against what it
//! acknowledged) -> `Send`.
//!
//! A server can move a client to another server of the cluster with a
//! `Redirect` message ([`redirect`]); the client reconnects there at once.

pub mod channels;
pub mod client;
pub mod components;
pub mod conditioner;
pub mod config;
pub mod degrade;
pub mod interest;
pub mod interpolation;
pub mod prediction;
pub mod reconnect;
pub mod redirect;
pub mod server;
pub mod smoothing;
pub mod stats;
pub mod tokens;
mod transport;

use bevy::prelude::*;
use bevy_renet::netcode::{NetcodeClientPlugin, NetcodeServerPlugin};
use bevy_renet::{RenetClientPlugin, RenetServerPlugin};
use galaxy_protocol::PlayerId;

pub use client::{
    ClientReplica, ConnectionStatus, MaxUpdateRate, OutgoingCommands, ReceivedEvents, View,
};
pub use conditioner::{Faults, LinkConditioner, LinkFaults};
pub use config::{ConfigError, NetworkConfig};
pub use degrade::{AutoUpdateRate, suggested_update_hz};
pub use redirect::{PendingRedirects, RedirectError, redirect_to, validate_redirect};
pub use server::{PhaseMs, RemoteUnits, ReplicatedUnits, Sessions, SimWorld, TickPhase, TickTimes};
pub use smoothing::{DrawnUnit, Smoothing, SmoothingConfig, SmoothingSet};
pub use stats::NetworkStats;
pub use tokens::ServerKey;
pub use transport::{
    ClientAuth, ClientConnector, MAX_CONNECT_TARGETS, ServerAuth, connect_client,
    connect_with_fallbacks, start_server,
};

/// The order of the networking work in a frame.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetSet {
    /// Decode, validate and route what arrived (PreUpdate).
    Receive,
    /// Step the authoritative simulation (FixedUpdate, server).
    Simulate,
    /// Mirror what the simulation changed into the ECS (once per frame,
    /// however many ticks it stepped), then mark changed units and
    /// re-index sectors (PostUpdate, server).
    Tag,
    /// Encode each client's updates (PostUpdate, server).
    Replicate,
    /// Hand messages to renet (PostUpdate).
    Send,
}

/// Which side this app plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// Authoritative server.
    Server,
    /// A client playing as this player.
    Client(PlayerId),
}

/// The networking plugin; see the crate docs.
pub struct GalaxyNetPlugin {
    /// Server or client.
    pub mode: NetMode,
}

impl Plugin for GalaxyNetPlugin {
    fn build(&self, app: &mut App) {
        if !app.world().contains_resource::<NetworkConfig>() {
            app.init_resource::<NetworkConfig>();
        }
        let hz = f64::from(app.world().resource::<NetworkConfig>().update_rate);
        app.init_resource::<NetworkStats>()
            .insert_resource(Time::<Fixed>::from_hz(hz))
            .configure_sets(
                PostUpdate,
                (NetSet::Tag, NetSet::Replicate, NetSet::Send).chain(),
            );
        match self.mode {
            NetMode::Server => {
                app.add_plugins((RenetServerPlugin, NetcodeServerPlugin));
                server::build(app);
                redirect::build_server(app);
            }
            NetMode::Client(player) => {
                app.add_plugins((RenetClientPlugin, NetcodeClientPlugin));
                client::build(app, player);
            }
        }
    }
}
