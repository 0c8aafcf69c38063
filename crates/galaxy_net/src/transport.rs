//! Opening the UDP socket and the netcode transport for either side.

use std::net::{SocketAddr, UdpSocket};

use bevy::prelude::*;
use bevy_renet::netcode::{
    ClientAuthentication, ConnectToken, NetcodeClientTransport, NetcodeServerTransport,
    ServerAuthentication, ServerConfig,
};
use bevy_renet::{RenetClient, RenetServer};
use galaxy_protocol::PlayerId;

use crate::channels::connection_config;
use crate::config::NetworkConfig;
use crate::tokens::{ServerKey, now};

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
pub fn start_server(
    world: &mut World,
    config: &NetworkConfig,
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
    world.insert_resource(RenetServer::new(connection_config()));
    world.insert_resource(transport);
    Ok(addr)
}

/// Opens a client socket and starts connecting.
pub fn connect_client(
    world: &mut World,
    config: &NetworkConfig,
    auth: ClientAuth,
) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let authentication = match auth {
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
    world.insert_resource(RenetClient::new(connection_config()));
    world.insert_resource(transport);
    Ok(())
}
