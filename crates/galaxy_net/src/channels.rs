//! renet channels: which messages travel how (the ids are part of the wire
//! contract; both sides configure them the same way).
//!
//! Server to client: `CombatEvent`s and `Redirect`s first (reliable, drains
//! before anything else), control second, unit updates last (unreliable: a lost update is
//! healed by the next delta). Client to server: commands and view changes
//! (reliable ordered), then acks (unreliable).

use std::time::Duration;

use bevy_renet::renet::{ChannelConfig, ConnectionConfig, SendType};

use crate::config::NetworkConfig;

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

/// Most ticks of unused byte budget a client on a reduced update rate saves
/// up (so a 10 Hz client still gets its whole kbps; slower ones get less).
pub const MAX_SAVED_TICKS: u32 = 8;

/// renet's own limit per frame when no budget is set (and its floor).
const RENET_BYTES_PER_FRAME: u64 = 120_000;

/// The renet connection configuration both sides must share.
///
/// renet drops unreliable messages past `available_bytes_per_tick` in one
/// frame; the per-client byte budget ([`NetworkConfig::client_budget_kbps`])
/// is the limit that chooses what goes, so renet's is set above the most a
/// budget can release in one frame (saved ticks plus reliable events).
pub(crate) fn connection_config(config: &NetworkConfig, rate: crate::TickRate) -> ConnectionConfig {
    let reliable = SendType::ReliableOrdered {
        resend_time: Duration::from_millis(150),
    };
    let budget_frame = config.budget_bytes_per_tick(rate).map_or(0, |b| {
        (b as u64).saturating_mul(u64::from(MAX_SAVED_TICKS) + 1) + 64 * 1024
    });
    ConnectionConfig {
        available_bytes_per_tick: RENET_BYTES_PER_FRAME.max(budget_frame),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renet_never_drops_what_the_budget_sends() {
        for kbps in [0.0, 256.0, 10_000.0, 100_000.0] {
            let config = NetworkConfig {
                client_budget_kbps: kbps,
                ..NetworkConfig::default()
            };
            let rate = config.tick_rate();
            let renet = connection_config(&config, rate).available_bytes_per_tick;
            if let Some(per_tick) = config.budget_bytes_per_tick(rate) {
                let most = per_tick as u64 * u64::from(MAX_SAVED_TICKS)
                    + galaxy_protocol::MAX_UNIT_UPDATE_BYTES as u64;
                assert!(renet > most, "{kbps} kbps: renet {renet} < {most}");
            } else {
                assert_eq!(renet, RENET_BYTES_PER_FRAME);
            }
        }
    }
}
