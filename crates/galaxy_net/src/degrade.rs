//! Graceful degradation: on a poor link (high loss or round-trip time) the
//! client asks the server for fewer updates per second, and asks for the
//! full rate again when the link recovers. A change needs the new verdict
//! to hold for a while, so a single bad estimate does not flap the rate.

use bevy::prelude::*;

use crate::client::MaxUpdateRate;
use crate::stats::NetworkStats;

/// The update rate (Hz, 0 = no limit) to ask for on a link with this
/// round-trip time (ms) and loss fraction.
pub fn suggested_update_hz(rtt_ms: f32, loss: f32) -> u8 {
    if loss >= 0.15 || rtt_ms >= 400.0 {
        5
    } else if loss >= 0.05 || rtt_ms >= 200.0 {
        10
    } else {
        0
    }
}

/// Adapts [`MaxUpdateRate`] to the link; insert [`AutoUpdateRate::off`] to
/// choose the rate yourself.
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct AutoUpdateRate {
    /// Whether the client adapts its rate.
    pub enabled: bool,
    /// Seconds a new verdict must hold before the rate changes.
    pub hold_secs: f64,
    pending: Option<(u8, f64)>,
}

impl Default for AutoUpdateRate {
    fn default() -> Self {
        Self {
            enabled: true,
            hold_secs: 2.0,
            pending: None,
        }
    }
}

impl AutoUpdateRate {
    /// Not adapting: the app sets [`MaxUpdateRate`] itself.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Feeds this frame's verdict; returns the rate to switch to, if any.
    pub fn update(&mut self, now: f64, suggested: u8, current: u8) -> Option<u8> {
        if suggested == current {
            self.pending = None;
            return None;
        }
        match self.pending {
            Some((rate, since)) if rate == suggested => {
                if now - since >= self.hold_secs {
                    self.pending = None;
                    return Some(suggested);
                }
            }
            _ => self.pending = Some((suggested, now)),
        }
        None
    }
}

/// Applies [`AutoUpdateRate`] once per frame while connected.
pub(crate) fn adapt_update_rate(
    time: Res<Time<Real>>,
    stats: Res<NetworkStats>,
    client: Option<Res<bevy_renet::RenetClient>>,
    mut auto: ResMut<AutoUpdateRate>,
    mut rate: ResMut<MaxUpdateRate>,
) {
    if !auto.enabled || !client.is_some_and(|c| c.is_connected()) {
        return;
    }
    let suggested = suggested_update_hz(stats.average_latency, stats.packet_loss);
    if let Some(hz) = auto.update(time.elapsed_secs_f64(), suggested, rate.0) {
        info!("link quality changed: asking for at most {hz} updates/s (0 = all)");
        rate.0 = hz;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poor_links_ask_for_fewer_updates() {
        assert_eq!(suggested_update_hz(40.0, 0.0), 0);
        assert_eq!(suggested_update_hz(250.0, 0.01), 10);
        assert_eq!(suggested_update_hz(40.0, 0.08), 10);
        assert_eq!(suggested_update_hz(40.0, 0.30), 5);
        assert_eq!(suggested_update_hz(900.0, 0.0), 5);
    }

    #[test]
    fn a_verdict_must_hold_before_the_rate_changes() {
        let mut a = AutoUpdateRate::default();
        // One bad frame, then good again: nothing changes.
        assert_eq!(a.update(0.0, 10, 0), None);
        assert_eq!(a.update(0.5, 0, 0), None);
        assert_eq!(a.update(3.0, 10, 0), None);
        // Bad for two seconds: switch.
        assert_eq!(a.update(4.0, 10, 0), None);
        assert_eq!(a.update(5.0, 10, 0), Some(10));
        // Recovering also waits.
        assert_eq!(a.update(6.0, 0, 10), None);
        assert_eq!(a.update(7.9, 0, 10), None);
        assert_eq!(a.update(8.0, 0, 10), Some(0));
    }
}
