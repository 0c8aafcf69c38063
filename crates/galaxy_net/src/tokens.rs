//! netcode secure connect tokens: the server's private key, and issuing
//! tokens whose client id is the player's id.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bevy_renet::netcode::{ConnectToken, NETCODE_KEY_BYTES, generate_random_bytes};
use galaxy_protocol::PlayerId;

/// The bit that makes a token's client id a spectator's: a spectator is no
/// player (no army has its id), may look anywhere, and every order it
/// sends is refused and counted (`spectator_order`). Players' ids stay
/// below it.
pub const SPECTATOR_BIT: PlayerId = 1 << 63;

/// The id of spectator number `n` (what a spectator token is issued for).
pub fn spectator_id(n: u64) -> PlayerId {
    n | SPECTATOR_BIT
}

/// True for a spectator's id (see [`SPECTATOR_BIT`]).
pub fn is_spectator(id: PlayerId) -> bool {
    id & SPECTATOR_BIT != 0
}

/// The server's private key: whoever holds it can mint tokens.
#[derive(Clone)]
pub struct ServerKey(pub [u8; NETCODE_KEY_BYTES]);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

/// Why a key or token could not be read, written or made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// File trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The key file is not exactly 32 bytes.
    #[error("key file must hold exactly {NETCODE_KEY_BYTES} bytes, found {0}")]
    BadKey(usize),
    /// netcode refused to make the token (e.g. too many addresses).
    #[error("token generation: {0}")]
    Generate(String),
    /// The token file is not a valid token.
    #[error("invalid token: {0}")]
    BadToken(String),
}

impl ServerKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(generate_random_bytes())
    }

    /// Reads a 32-byte key file, or creates one (mode 0600) if missing.
    pub fn load_or_create(path: &Path) -> Result<Self, TokenError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; NETCODE_KEY_BYTES] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| TokenError::BadKey(bytes.len()))?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::random();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(path, &key.0)?;
                Ok(key)
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

/// Seconds since the Unix epoch (the clock netcode tokens use).
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Issues a token for `player` to connect to any of `servers` (tried in
/// order, so later addresses are fallbacks), valid for `valid_secs`.
pub fn issue_token(
    key: &ServerKey,
    protocol_id: u64,
    player: PlayerId,
    servers: Vec<SocketAddr>,
    valid_secs: u64,
    timeout_secs: i32,
) -> Result<ConnectToken, TokenError> {
    ConnectToken::generate(
        now(),
        protocol_id,
        valid_secs,
        player,
        timeout_secs,
        servers,
        None,
        &key.0,
    )
    .map_err(|e| TokenError::Generate(e.to_string()))
}

/// A token as bytes (to hand to a client, e.g. in a file).
pub fn token_to_bytes(token: &ConnectToken) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = token.write(&mut out);
    out
}

/// A token from bytes written by [`token_to_bytes`].
pub fn token_from_bytes(bytes: &[u8]) -> Result<ConnectToken, TokenError> {
    ConnectToken::read(&mut &bytes[..]).map_err(|e| TokenError::BadToken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_bad_key() {
        let dir = std::env::temp_dir().join(format!("galaxy-key-{}", std::process::id()));
        let path = dir.join("server.key");
        let a = ServerKey::load_or_create(&path).unwrap();
        let b = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            ServerKey::load_or_create(&path),
            Err(TokenError::BadKey(5))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tokens_round_trip() {
        let key = ServerKey::random();
        let t = issue_token(&key, 7, 42, vec!["127.0.0.1:5000".parse().unwrap()], 60, 5).unwrap();
        let back = token_from_bytes(&token_to_bytes(&t)).unwrap();
        assert_eq!(back.client_id, 42);
        assert!(token_from_bytes(&[1, 2, 3]).is_err());
    }
}
