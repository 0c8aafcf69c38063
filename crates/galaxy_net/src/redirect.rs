//! Player migration between cluster servers: a server sends a connected
//! client a [`Redirect`] ("go to that server, with this token"), the client
//! checks it and reconnects there at once.
//!
//! Server side: the game (or a cluster plugin) pushes `(client, redirect)`
//! pairs into [`PendingRedirects`], usually made with [`redirect_to`]; they
//! go out once each, reliably on the events channel. The server does not
//! disconnect the client: the reliable message must get out, and the client
//! leaves by itself (telling the server, so its session ends at once).
//!
//! Client side: [`validate_redirect`] refuses anything that could not work
//! or would weaken the connection (counted as `bad_redirect`); a valid one
//! makes the new server the first connect target, the old ones fallbacks,
//! and resets the received state exactly like a reconnect.

use std::net::SocketAddr;

use bevy::prelude::*;
use bevy_renet::renet::ClientId;
use bevy_renet::{RenetSend, RenetServer};
use galaxy_protocol::{PlayerId, Redirect, ServerMessage, codec};

use crate::NetSet;
use crate::channels::EVENTS;
use crate::config::NetworkConfig;
use crate::stats::NetworkStats;
use crate::tokens::{TokenError, issue_token, now, token_from_bytes, token_to_bytes};
use crate::transport::{ClientAuth, ServerAuth};

/// Seconds a redirect's connect token stays valid: long enough for a slow
/// client to get there, short enough that a leaked one is soon useless.
pub const REDIRECT_TOKEN_VALID_SECS: u64 = 300;

/// netcode timeout written into a redirect's token, in seconds.
pub const REDIRECT_TOKEN_TIMEOUT_SECS: i32 = 15;

/// Redirects for the server to send this frame, each to its client, once.
/// Filled by the game or a cluster plugin; drained by the plugin.
#[derive(Resource, Default, Debug)]
pub struct PendingRedirects(pub Vec<(ClientId, Redirect)>);

/// Makes a redirect of `player` to the server at `target`. With secure auth
/// it carries a fresh token naming only `target`, signed with the key the
/// cluster's servers share; with insecure auth the token is empty (only an
/// insecurely connected client accepts that).
pub fn redirect_to(
    auth: &ServerAuth,
    config: &NetworkConfig,
    player: PlayerId,
    target: SocketAddr,
    epoch: u64,
) -> Result<Redirect, TokenError> {
    let connect_token = match auth {
        ServerAuth::Secure(key) => token_to_bytes(&issue_token(
            key,
            config.protocol_id,
            player,
            vec![target],
            REDIRECT_TOKEN_VALID_SECS,
            REDIRECT_TOKEN_TIMEOUT_SECS,
        )?),
        ServerAuth::Insecure => Vec::new(),
    };
    Ok(Redirect {
        server_addr: target.to_string(),
        connect_token,
        epoch,
    })
}

/// Why a client refused a redirect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// `server_addr` is not an `IP:PORT` socket address.
    #[error("server address {0:?} is not IP:PORT")]
    BadAddress(String),
    /// The token bytes are not a netcode connect token.
    #[error("invalid connect token: {0}")]
    BadToken(String),
    /// The token does not list the redirect's server.
    #[error("the token does not name {0}")]
    WrongServer(SocketAddr),
    /// The token was issued for another player.
    #[error("the token is for player {0}")]
    WrongPlayer(PlayerId),
    /// The token is for another build of the game (netcode protocol id).
    #[error("the token is for protocol id {0:#x}")]
    WrongProtocol(u64),
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// No token while the current connection is secure: a downgrade.
    #[error("no token, but the current connection is secure")]
    Insecure,
    /// The client has no [`crate::ClientConnector`] to reconnect with.
    #[error("the client cannot reconnect (no connector)")]
    NoConnector,
}

/// Checks a redirect received while connected with `current`, as `player`
/// with netcode `protocol_id`, and returns how to connect to the new server.
/// The address must parse; a token must parse, name that address, this
/// player and protocol id, and not have expired; no token is accepted only
/// if `current` is insecure too.
pub fn validate_redirect(
    redirect: &Redirect,
    current: &ClientAuth,
    player: PlayerId,
    protocol_id: u64,
) -> Result<ClientAuth, RedirectError> {
    let server: SocketAddr = redirect
        .server_addr
        .parse()
        .map_err(|_| RedirectError::BadAddress(redirect.server_addr.clone()))?;
    if redirect.connect_token.is_empty() {
        return match current {
            ClientAuth::Insecure { .. } => Ok(ClientAuth::Insecure { player, server }),
            ClientAuth::Token(_) => Err(RedirectError::Insecure),
        };
    }
    let token = token_from_bytes(&redirect.connect_token)
        .map_err(|e| RedirectError::BadToken(e.to_string()))?;
    if !token
        .server_addresses
        .iter()
        .flatten()
        .any(|a| *a == server)
    {
        return Err(RedirectError::WrongServer(server));
    }
    if token.client_id != player {
        return Err(RedirectError::WrongPlayer(token.client_id));
    }
    if token.protocol_id != protocol_id {
        return Err(RedirectError::WrongProtocol(token.protocol_id));
    }
    if token.expire_timestamp <= now().as_secs() {
        return Err(RedirectError::Expired);
    }
    Ok(ClientAuth::Token(Box::new(token)))
}

/// Server half: the resource and the system that sends pending redirects.
pub(crate) fn build_server(app: &mut App) {
    app.init_resource::<PendingRedirects>().add_systems(
        PostUpdate,
        send_redirects
            .in_set(NetSet::Replicate)
            .before(RenetSend)
            .run_if(resource_exists::<RenetServer>),
    );
}

/// Sends each pending redirect once, reliably on the events channel.
fn send_redirects(
    mut server: ResMut<RenetServer>,
    mut pending: ResMut<PendingRedirects>,
    mut stats: ResMut<NetworkStats>,
) {
    for (client, redirect) in pending.0.drain(..) {
        if !server.is_connected(client) {
            warn!(
                "redirect of player {client} to {} dropped: not connected",
                redirect.server_addr
            );
            continue;
        }
        let (addr, epoch) = (redirect.server_addr.clone(), redirect.epoch);
        let message = ServerMessage::<galaxy_protocol::QuantizedUnit>::Redirect(redirect);
        match codec::encode_server(&message) {
            Ok(bytes) => {
                info!("redirecting player {client} to {addr} (epoch {epoch})");
                stats.bytes_sent += bytes.len() as u64;
                stats.messages_sent += 1;
                stats.redirects_sent += 1;
                server.send_message(client, EVENTS, bytes);
            }
            Err(e) => warn!("redirect of player {client} to {addr} not encoded: {e}"),
        }
    }
}

/// Client side, on receiving `redirect`: validates it against the current
/// connection and, if valid, queues the switch (applied at the end of the
/// stage, before anything is sent) and returns true, so the caller stops
/// reading the old session. Invalid: counted as `bad_redirect`, ignored.
pub(crate) fn on_redirect(
    redirect: &Redirect,
    connector: Option<&crate::transport::ClientConnector>,
    player: PlayerId,
    stats: &mut NetworkStats,
    commands: &mut Commands,
) -> bool {
    let checked = connector
        .ok_or(RedirectError::NoConnector)
        .and_then(|c| validate_redirect(redirect, c.current(), player, c.config().protocol_id));
    match checked {
        Ok(auth) => {
            info!(
                "server redirects us to {} (epoch {})",
                redirect.server_addr, redirect.epoch
            );
            commands.queue(move |world: &mut World| follow(world, auth));
            true
        }
        Err(e) => {
            warn!("redirect to {:?} refused: {e}", redirect.server_addr);
            stats.reject("bad_redirect", 1);
            false
        }
    }
}

/// Switches the connection and resets what the old session delivered, the
/// same way a reconnect does: a clean baseline store (the new server sends
/// every unit whole, so nothing is duplicated) while the old units' entities
/// stay until the new state replaces them.
fn follow(world: &mut World, auth: ClientAuth) {
    if !crate::transport::follow(world, auth) {
        return;
    }
    world.resource_mut::<NetworkStats>().redirects_followed += 1;
    let now = world.resource::<Time<Real>>().elapsed_secs_f64();
    crate::client::reset_session(world, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::ServerKey;
    use galaxy_protocol::MAX_CONNECT_TOKEN_BYTES;

    const PROTOCOL: u64 = 7;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn token_auth(player: PlayerId, server: SocketAddr) -> ClientAuth {
        let t = issue_token(&ServerKey::random(), PROTOCOL, player, vec![server], 60, 5).unwrap();
        ClientAuth::Token(Box::new(t))
    }

    fn redirect(server_addr: &str, connect_token: Vec<u8>) -> Redirect {
        Redirect {
            server_addr: server_addr.into(),
            connect_token,
            epoch: 3,
        }
    }

    fn token_bytes(
        player: PlayerId,
        servers: Vec<SocketAddr>,
        valid: u64,
        protocol: u64,
    ) -> Vec<u8> {
        token_to_bytes(
            &issue_token(&ServerKey::random(), protocol, player, servers, valid, 5).unwrap(),
        )
    }

    #[test]
    fn redirect_to_issues_a_token_for_the_target_only_when_secure() {
        let config = NetworkConfig {
            protocol_id: PROTOCOL,
            ..NetworkConfig::default()
        };
        let target = addr("127.0.0.1:6001");
        let secure = redirect_to(
            &ServerAuth::Secure(ServerKey::random()),
            &config,
            4,
            target,
            9,
        )
        .unwrap();
        assert_eq!(secure.server_addr, "127.0.0.1:6001");
        assert_eq!(secure.epoch, 9);
        assert!(secure.connect_token.len() <= MAX_CONNECT_TOKEN_BYTES);
        let token = token_from_bytes(&secure.connect_token).unwrap();
        assert_eq!(token.client_id, 4);
        assert_eq!(token.server_addresses[0], Some(target));
        let current = token_auth(4, addr("127.0.0.1:6000"));
        assert!(matches!(
            validate_redirect(&secure, &current, 4, PROTOCOL),
            Ok(ClientAuth::Token(_))
        ));
        let insecure = redirect_to(&ServerAuth::Insecure, &config, 4, target, 9).unwrap();
        assert!(insecure.connect_token.is_empty());
        let current = ClientAuth::Insecure {
            player: 4,
            server: addr("127.0.0.1:6000"),
        };
        assert!(matches!(
            validate_redirect(&insecure, &current, 4, PROTOCOL),
            Ok(ClientAuth::Insecure { player: 4, server }) if server == target
        ));
    }

    #[test]
    fn invalid_redirects_are_refused_with_a_reason() {
        let b = addr("10.0.0.2:5000");
        let secure = token_auth(1, addr("10.0.0.1:5000"));
        let insecure = ClientAuth::Insecure {
            player: 1,
            server: addr("10.0.0.1:5000"),
        };
        let check =
            |r: &Redirect, current: &ClientAuth| validate_redirect(r, current, 1, PROTOCOL).err();
        for bad in ["", "10.0.0.2", "nowhere:5000", "10.0.0.2:99999", "ü"] {
            assert!(matches!(
                check(&redirect(bad, vec![]), &insecure),
                Some(RedirectError::BadAddress(_))
            ));
        }
        assert!(matches!(
            check(&redirect("10.0.0.2:5000", vec![1, 2, 3]), &insecure),
            Some(RedirectError::BadToken(_))
        ));
        let for_c = token_bytes(1, vec![addr("10.0.0.3:5000")], 60, PROTOCOL);
        assert_eq!(
            check(&redirect("10.0.0.2:5000", for_c), &secure),
            Some(RedirectError::WrongServer(b))
        );
        let other_player = token_bytes(2, vec![b], 60, PROTOCOL);
        assert_eq!(
            check(&redirect("10.0.0.2:5000", other_player), &secure),
            Some(RedirectError::WrongPlayer(2))
        );
        let other_build = token_bytes(1, vec![b], 60, PROTOCOL + 1);
        assert_eq!(
            check(&redirect("10.0.0.2:5000", other_build), &secure),
            Some(RedirectError::WrongProtocol(PROTOCOL + 1))
        );
        let expired = token_bytes(1, vec![b], 0, PROTOCOL);
        assert_eq!(
            check(&redirect("10.0.0.2:5000", expired), &secure),
            Some(RedirectError::Expired)
        );
        assert_eq!(
            check(&redirect("10.0.0.2:5000", vec![]), &secure),
            Some(RedirectError::Insecure)
        );
        // A token naming the target among fallbacks is fine, even from an insecure connection.
        let listed = token_bytes(1, vec![addr("10.0.0.3:5000"), b], 60, PROTOCOL);
        assert_eq!(check(&redirect("10.0.0.2:5000", listed), &insecure), None);
    }
}
