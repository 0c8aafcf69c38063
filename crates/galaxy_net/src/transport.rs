//! The renet/netcode transport for either side, configured by resources:
//! insert a [`ServerTransport`] or a [`ClientTransport`], then add
//! [`NetcodeTransportPlugin`] after the server or client plugin. A server
//! binds its UDP socket when the plugin is built ([`ServerAddress`] holds
//! the address, [`TransportError`] why it failed); a client opens its
//! socket and connects, and reconnects with backoff through its fallback
//! servers when the connection is lost.

use std::net::{SocketAddr, UdpSocket};

use bevy::prelude::*;
use bevy_renet::netcode::{
    ClientAuthentication, ConnectToken, NetcodeClientPlugin, NetcodeClientTransport,
    NetcodeServerPlugin, NetcodeServerTransport, ServerAuthentication, ServerConfig,
};
use bevy_renet::{RenetClient, RenetServer};
use galaxy_protocol::PlayerId;

use crate::channels::connection_config;
use crate::client::{ConnectionStatus, LocalPlayer};
use crate::config::NetworkConfig;
use crate::reconnect::Backoff;
use crate::replication::TickRate;
use crate::tokens::{ServerKey, now};

/// The server's transport settings, read by [`NetcodeTransportPlugin`]: the
/// socket is `NetworkConfig::server_address:port` (port 0: any free port).
#[derive(Resource, Clone, Debug)]
pub struct ServerTransport {
    /// How clients are admitted.
    pub auth: ServerAuth,
    /// Other addresses clients may reach the server by (e.g. a proxy in
    /// front of it); its own bound address is always public.
    pub extra_public: Vec<SocketAddr>,
}

impl ServerTransport {
    /// A server admitting clients by `auth`, reachable at its bound address only.
    pub fn new(auth: ServerAuth) -> Self {
        Self {
            auth,
            extra_public: Vec::new(),
        }
    }
}

/// The client's transport settings, read by [`NetcodeTransportPlugin`].
#[derive(Resource, Clone, Debug)]
pub struct ClientTransport {
    /// The servers to connect to, the preferred one first; the others are
    /// fallbacks tried in turn after a failure.
    pub targets: Vec<ClientAuth>,
}

impl ClientTransport {
    /// One server, no fallbacks.
    pub fn to(auth: ClientAuth) -> Self {
        Self {
            targets: vec![auth],
        }
    }
}

/// Where the server's socket was bound (inserted by the transport).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerAddress(pub SocketAddr);

/// Why the transport could not start (inserted instead of [`ServerAddress`]
/// or a connection; a client's status is `Failed` with it too).
#[derive(Resource, Clone, Debug, PartialEq, Eq)]
pub struct TransportError(pub String);

/// Opens the UDP socket with netcode for whichever side the app is, from
/// [`ServerTransport`] or [`ClientTransport`]. Add it after
/// [`crate::GalaxyServerPlugin`] or [`crate::GalaxyClientPlugin`].
pub struct NetcodeTransportPlugin;

impl Plugin for NetcodeTransportPlugin {
    fn build(&self, app: &mut App) {
        crate::init_common(app);
        let config = app.world().resource::<NetworkConfig>().clone();
        let rate = *app.world().resource::<TickRate>();
        let server = app.world().get_resource::<ServerTransport>().cloned();
        let client = app.world().get_resource::<ClientTransport>().cloned();
        let failed = match (server, client) {
            (Some(t), _) => {
                app.add_plugins(NetcodeServerPlugin);
                match start_server(app.world_mut(), &config, rate, t.auth, &t.extra_public) {
                    Ok(addr) => {
                        app.insert_resource(ServerAddress(addr));
                        None
                    }
                    Err(e) => Some(format!(
                        "cannot bind {}:{}: {e}",
                        config.server_address, config.port
                    )),
                }
            }
            (None, Some(t)) => {
                app.add_plugins(NetcodeClientPlugin);
                let player = t.targets.first().map(ClientAuth::player);
                if let Some(player) = player {
                    app.insert_resource(LocalPlayer(player));
                }
                connect_with_fallbacks(app.world_mut(), &config, rate, t.targets).err()
            }
            (None, None) => Some("insert a ServerTransport or a ClientTransport resource before adding NetcodeTransportPlugin".into()),
        };
        if let Some(e) = failed {
            error!("transport: {e}");
            if app.world().contains_resource::<ConnectionStatus>() {
                app.insert_resource(ConnectionStatus::Failed(e.clone()));
            }
            app.insert_resource(TransportError(e));
        }
    }
}

/// How a server admits clients.
#[derive(Clone, Debug)]
pub enum ServerAuth {
    /// Secure netcode tokens signed with this key (dedicated servers).
    Secure(ServerKey),
    /// Anyone may connect, claiming any id (local testing only).
    Insecure,
}

/// How a client proves who it is.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// A token issued for this player.
    Token(Box<ConnectToken>),
    /// No token: only accepted by an insecure server.
    Insecure {
        /// The id to claim.
        player: PlayerId,
        /// The server to connect to.
        server: SocketAddr,
    },
}

/// Binds the server socket at `config.server_address:config.port` (port 0 =
/// any free port) and inserts the renet resources. `extra_public` are other
/// addresses clients may reach it by (e.g. a proxy). Returns the bound address.
fn start_server(
    world: &mut World,
    config: &NetworkConfig,
    rate: TickRate,
    auth: ServerAuth,
    extra_public: &[SocketAddr],
) -> std::io::Result<SocketAddr> {
    let socket = UdpSocket::bind((config.server_address.as_str(), config.port))?;
    let addr = socket.local_addr()?;
    let mut public_addresses = vec![addr];
    public_addresses.extend_from_slice(extra_public);
    let authentication = match auth {
        ServerAuth::Secure(key) => ServerAuthentication::Secure { private_key: key.0 },
        ServerAuth::Insecure => ServerAuthentication::Unsecure,
    };
    let server_config = ServerConfig {
        current_time: now(),
        max_clients: config.max_connections,
        protocol_id: config.protocol_id,
        public_addresses,
        authentication,
    };
    let transport = NetcodeServerTransport::new(server_config, socket)?;
    world.insert_resource(RenetServer::new(connection_config(config, rate)));
    world.insert_resource(transport);
    Ok(addr)
}

/// What a client needs to connect again after losing its server: the
/// settings, the servers to try in turn, and the retry schedule.
#[derive(Resource)]
pub struct ClientConnector {
    config: NetworkConfig,
    rate: TickRate,
    targets: Vec<ClientAuth>,
    /// The retry schedule.
    pub backoff: Backoff,
    local_port: u16,
    was_connected: bool,
    /// Successful reconnections so far.
    pub reconnects: u32,
    /// Server redirects followed so far (see [`crate::PendingRedirects`]).
    pub redirects: u32,
}

/// Most servers a [`ClientConnector`] keeps: redirects put the new target
/// first and keep the older ones as fallbacks, up to this many.
pub const MAX_CONNECT_TARGETS: usize = 8;

impl ClientConnector {
    /// The servers to try, the preferred one first.
    pub fn targets(&self) -> &[ClientAuth] {
        &self.targets
    }

    /// The server the client is connected or connecting to now.
    pub fn current(&self) -> &ClientAuth {
        let i = self
            .backoff
            .target()
            .min(self.targets.len().saturating_sub(1));
        &self.targets[i]
    }

    /// The settings the client connects with.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }
}

impl ClientAuth {
    /// No token: claim to be `player` on the insecure server at `server`.
    pub fn insecure(player: PlayerId, server: SocketAddr) -> Self {
        Self::Insecure { player, server }
    }

    /// The player this connects as (the token's client id).
    pub fn player(&self) -> PlayerId {
        match self {
            Self::Token(t) => t.client_id,
            Self::Insecure { player, .. } => *player,
        }
    }

    /// The first server this connects to.
    pub fn server(&self) -> Option<SocketAddr> {
        match self {
            Self::Token(t) => t.server_addresses.iter().flatten().next().copied(),
            Self::Insecure { server, .. } => Some(*server),
        }
    }
}

/// Opens a client socket and starts connecting to the first of `targets`,
/// the others being fallbacks tried in turn after a failure.
fn connect_with_fallbacks(
    world: &mut World,
    config: &NetworkConfig,
    rate: TickRate,
    targets: Vec<ClientAuth>,
) -> Result<(), String> {
    let first = targets.first().ok_or("no server to connect to")?;
    let local_port = open(world, config, rate, first, 0)?;
    world.insert_resource(ClientConnector {
        config: config.clone(),
        rate,
        backoff: Backoff::new(targets.len()),
        targets,
        local_port,
        was_connected: false,
        reconnects: 0,
        redirects: 0,
    });
    Ok(())
}

/// Binds a socket (on `port` if possible, so a secure token stays valid
/// for the same client address) and inserts a fresh renet client and transport.
fn open(
    world: &mut World,
    config: &NetworkConfig,
    rate: TickRate,
    auth: &ClientAuth,
    port: u16,
) -> Result<u16, String> {
    let socket = UdpSocket::bind(("0.0.0.0", port))
        .or_else(|_| UdpSocket::bind("0.0.0.0:0"))
        .map_err(|e| e.to_string())?;
    let local_port = socket.local_addr().map_err(|e| e.to_string())?.port();
    let authentication = match auth.clone() {
        ClientAuth::Token(token) => ClientAuthentication::Secure {
            connect_token: *token,
        },
        ClientAuth::Insecure { player, server } => ClientAuthentication::Unsecure {
            protocol_id: config.protocol_id,
            client_id: player,
            server_addr: server,
            user_data: None,
        },
    };
    let transport =
        NetcodeClientTransport::new(now(), authentication, socket).map_err(|e| e.to_string())?;
    world.insert_resource(RenetClient::new(connection_config(config, rate)));
    world.insert_resource(transport);
    Ok(local_port)
}

/// Watches the connection; after a loss, waits out the backoff and opens a
/// new one (to the next fallback server). Returns true when it reconnected,
/// so the caller can reset what it received from the old session.
pub(crate) fn maintain(world: &mut World, now: f64) -> bool {
    let Some(mut c) = world.remove_resource::<ClientConnector>() else {
        return false;
    };
    let (connected, disconnected) = world
        .get_resource::<RenetClient>()
        .map_or((false, true), |r| (r.is_connected(), r.is_disconnected()));
    let mut reopened = false;
    if connected {
        if !c.was_connected {
            c.backoff.on_connected();
        }
        c.was_connected = true;
    } else if disconnected {
        if c.was_connected {
            warn!("connection lost; reconnecting");
        }
        c.was_connected = false;
        c.backoff.on_failure(now);
        if c.backoff.due(now) {
            world.remove_resource::<NetcodeClientTransport>();
            world.remove_resource::<RenetClient>();
            let target = c.backoff.target().min(c.targets.len().saturating_sub(1));
            match open(world, &c.config, c.rate, &c.targets[target], c.local_port) {
                Ok(port) => {
                    c.local_port = port;
                    c.reconnects += 1;
                    reopened = true;
                }
                Err(e) => warn!("reconnect failed: {e}"),
            }
        }
    }
    world.insert_resource(c);
    reopened
}

/// Follows a server's redirect at once: tells the old server we leave,
/// drops its client and transport, and opens a connection to `auth`, which
/// becomes the first target with the previous ones kept as fallbacks. If
/// the new socket cannot be opened, [`maintain`] retries with backoff.
/// Returns false (changing nothing) without a [`ClientConnector`].
pub(crate) fn follow(world: &mut World, auth: ClientAuth) -> bool {
    let Some(mut c) = world.remove_resource::<ClientConnector>() else {
        return false;
    };
    if let Some(mut old) = world.remove_resource::<NetcodeClientTransport>() {
        old.disconnect();
    }
    world.remove_resource::<RenetClient>();
    let server = auth.server();
    c.targets.retain(|t| t.server() != server);
    c.targets.insert(0, auth);
    c.targets.truncate(MAX_CONNECT_TARGETS);
    c.backoff = Backoff::new(c.targets.len());
    c.was_connected = false;
    c.redirects += 1;
    match open(world, &c.config, c.rate, &c.targets[0], c.local_port) {
        Ok(port) => c.local_port = port,
        Err(e) => warn!("redirect: cannot open a connection ({e}); retrying"),
    }
    world.insert_resource(c);
    true
}
