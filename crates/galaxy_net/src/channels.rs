//! renet channels: which messages travel how.
//!
//! Server to client: `CombatEvent`s and `Redirect`s first (reliable, drains
//! before anything else), control second, unit updates last (unreliable: a lost update is
//! healed by the next delta). Client to server: commands and view changes
//! (reliable ordered), then acks (unreliable).

use std::time::Duration;

use bevy_renet::renet::{ChannelConfig, ConnectionConfig, SendType};

/// Server to client: `CombatEvent`s and `Redirect`s, reliable ordered, highest priority.
pub const EVENTS: u8 = 0;
/// Server to client: `UnitUpdate`s, unreliable.
pub const UPDATES: u8 = 1;
/// Client to server: `Connect`, `BatchCommand`, `ViewUpdate`, reliable ordered.
pub const COMMANDS: u8 = 0;
/// Client to server: `UpdateAck`s, unreliable.
pub const ACKS: u8 = 1;

/// Bytes a channel may hold before renet drops (unreliable) or disconnects (reliable).
const CHANNEL_MEMORY: usize = 4 * 1024 * 1024;

/// The renet connection configuration both sides must share.
pub fn connection_config() -> ConnectionConfig {
    let reliable = SendType::ReliableOrdered {
        resend_time: Duration::from_millis(150),
    };
    ConnectionConfig {
        available_bytes_per_tick: 120_000,
        server_channels_config: vec![
            ChannelConfig {
                channel_id: EVENTS,
                max_memory_usage_bytes: CHANNEL_MEMORY,
                send_type: reliable.clone(),
            },
            ChannelConfig {
                channel_id: UPDATES,
                max_memory_usage_bytes: CHANNEL_MEMORY,
                send_type: SendType::Unreliable,
            },
        ],
        client_channels_config: vec![
            ChannelConfig {
                channel_id: COMMANDS,
                max_memory_usage_bytes: CHANNEL_MEMORY,
                send_type: reliable,
            },
            ChannelConfig {
                channel_id: ACKS,
                max_memory_usage_bytes: CHANNEL_MEMORY,
                send_type: SendType::Unreliable,
            },
        ],
    }
}
