//! `NetworkStats`: what went over the wire, on either side.

use std::collections::BTreeMap;

use bevy::prelude::Resource;

/// Traffic and trouble counters (the design's `NetworkStats` plus the
/// rejections the security section asks to count).
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct NetworkStats {
    /// Message bytes sent (our payloads, without renet/netcode headers).
    pub bytes_sent: u64,
    /// Message bytes received.
    pub bytes_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Round-trip time in milliseconds (renet's estimate; averaged over clients on a server).
    pub average_latency: f32,
    /// Packet loss fraction 0..1 (renet's estimate; averaged over clients on a server).
    pub packet_loss: f32,
    /// Unit updates applied (client) or written (server).
    pub unit_updates: u64,
    /// Messages that failed to decode, by `DecodeError::kind`.
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Commands and messages refused, by reason (`rate_limited`, `claimed_player`,
    /// ...; a game adds its own, such as `not_owned`, with [`NetworkStats::reject`]).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Clients disconnected for misbehaving.
    pub kicked_clients: u64,
    /// Whole-sector scans put off to a later tick because a client's view
    /// brought in more units than its budget can take (see
    /// `NetworkConfig::client_budget_kbps`).
    pub deferred_scans: u64,
    /// Clients' replica digests compared with what the server believed
    /// they held (state verification; stale digests not counted).
    pub state_checks: u64,
    /// Digests that did not match: a client's replica had drifted.
    pub state_mismatches: u64,
    /// Units sent whole again to heal a mismatch.
    pub units_healed: u64,
    /// Digests overtaken by a newer ack before they were checked, or sent
    /// by a spectator sharing a group's updates (not checked).
    pub stale_digests: u64,
    /// Server: unit updates sent to a spectator as a copy of its group's
    /// (encoded once for every spectator watching the same view).
    pub shared_updates: u64,
    /// Server: redirects sent to clients (player migration to another server).
    pub redirects_sent: u64,
    /// Client: redirects followed to another server (refused ones count as
    /// the `bad_redirect` rejection instead).
    pub redirects_followed: u64,
}

impl NetworkStats {
    /// Total refused commands and messages over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Adds `n` refusals for `reason`.
    pub fn reject(&mut self, reason: &'static str, n: u64) {
        if n > 0 {
            *self.rejected.entry(reason).or_default() += n;
        }
    }
}
