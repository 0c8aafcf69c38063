//! What the cluster stores in JetStream: ownership records, load reports,
//! and the keys they live under.

use galaxy_protocol::SectorId;
use serde::{Deserialize, Serialize};

/// Who owns a sector, and since which revision (the fencing epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// The owning server.
    pub server: u32,
    /// The KV revision of the write that made it owner.
    pub epoch: u64,
}

/// A server's lease value: the design's `LoadBalance` load report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// The server.
    pub server: u32,
    /// Where its clients connect (`HOST:PORT`).
    pub address: String,
    /// Units it simulates.
    pub units: u64,
    /// Clients connected to it.
    pub clients: u64,
    /// Its tick time, 99th percentile, in milliseconds.
    pub tick_ms_p99: f32,
    /// Units per owned sector (by [`sector_key`]), for the balancer.
    #[serde(default)]
    pub sectors: std::collections::BTreeMap<String, u64>,
}

/// The KV key of a sector: `s.SCALE.X.Y` (negative coordinates keep their sign).
pub fn sector_key(s: SectorId) -> String {
    format!("s.{}.{}.{}", s.scale, s.x, s.y)
}

/// The sector a key names, if it is a sector key.
pub fn sector_from_key(key: &str) -> Option<SectorId> {
    let mut parts = key.strip_prefix("s.")?.split('.');
    let scale = parts.next()?.parse().ok()?;
    let x = parts.next()?.parse().ok()?;
    let y = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let s = SectorId::new(x, y, scale);
    s.is_valid().then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sector_keys_round_trip_including_negative_and_extreme_coordinates() {
        for s in [
            SectorId::new(0, 0, 0),
            SectorId::new(-3, 7, 0),
            SectorId::new(i64::MIN / 100_000, i64::MAX / 100_000, 0),
            SectorId::new(1, -1, 5),
        ] {
            assert_eq!(sector_from_key(&sector_key(s)), Some(s), "{s:?}");
        }
        for bad in ["s.0.1", "x.0.0.0", "s.0.a.0", "s.0.0.0.0", "s.99.0.0"] {
            assert_eq!(sector_from_key(bad), None, "{bad}");
        }
    }
}
