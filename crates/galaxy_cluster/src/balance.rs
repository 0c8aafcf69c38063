//! The balancer's decision: which one sector to move from the most loaded
//! server to the least loaded one, if that makes the cluster more even.
//! Pure data in, a decision out; the elected balancer acts on it with a
//! `LoadBalance` order ([`crate::Cluster::request_migration`]).

use std::collections::BTreeMap;

use galaxy_protocol::SectorId;

use crate::records::{LoadReport, Ownership, sector_key};

/// One sector to move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedMove {
    /// The sector.
    pub sector: SectorId,
    /// Its owner, the most loaded server.
    pub from: u32,
    /// The least loaded server.
    pub to: u32,
    /// Units in the sector (from the owner's load report).
    pub units: u64,
}

/// Plans at most one move: from the server with the most units to the one
/// with the fewest, when they differ by at least `min_gap` units, choosing
/// the sector (never the owner's last one) that leaves the two closest, and
/// only if that is closer than before (so moves never oscillate).
pub fn plan_move(
    peers: &BTreeMap<u32, LoadReport>,
    owners: &BTreeMap<SectorId, Ownership>,
    min_gap: u64,
) -> Option<PlannedMove> {
    let busiest = peers.values().max_by_key(|l| (l.units, l.server))?;
    let idlest = peers.values().min_by_key(|l| (l.units, l.server))?;
    let gap = busiest.units.checked_sub(idlest.units)?;
    if busiest.server == idlest.server || gap < min_gap.max(1) {
        return None;
    }
    let theirs: Vec<SectorId> = owners
        .iter()
        .filter(|(_, o)| o.server == busiest.server)
        .map(|(&s, _)| s)
        .collect();
    if theirs.len() < 2 {
        return None;
    }
    theirs
        .into_iter()
        .map(|s| {
            let units = busiest.sectors.get(&sector_key(s)).copied().unwrap_or(0);
            let after = (busiest.units - units).abs_diff(idlest.units + units);
            (after, s, units)
        })
        .filter(|&(after, _, units)| units > 0 && after < gap)
        .min_by_key(|&(after, s, _)| (after, s))
        .map(|(_, sector, units)| PlannedMove {
            sector,
            from: busiest.server,
            to: idlest.server,
            units,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(server: u32, sectors: &[(SectorId, u64)]) -> LoadReport {
        LoadReport {
            server,
            units: sectors.iter().map(|s| s.1).sum(),
            sectors: sectors.iter().map(|&(s, n)| (sector_key(s), n)).collect(),
            ..LoadReport::default()
        }
    }

    fn setup(
        a: &[(SectorId, u64)],
        b: &[(SectorId, u64)],
    ) -> (BTreeMap<u32, LoadReport>, BTreeMap<SectorId, Ownership>) {
        let peers = BTreeMap::from([(1, load(1, a)), (2, load(2, b))]);
        let mut owners = BTreeMap::new();
        for (server, list) in [(1, a), (2, b)] {
            for &(s, _) in list {
                owners.insert(s, Ownership { server, epoch: 1 });
            }
        }
        (peers, owners)
    }

    #[test]
    fn moves_the_sector_that_evens_the_load_most() {
        let (s1, s2, s3, s4) = (
            SectorId::new(0, 0, 3),
            SectorId::new(1, 0, 3),
            SectorId::new(2, 0, 3),
            SectorId::new(9, 9, 3),
        );
        let (peers, owners) = setup(&[(s1, 500), (s2, 350), (s3, 50)], &[(s4, 100)]);
        // 900 vs 100: moving s2 (350) gives 550 vs 450, the closest.
        assert_eq!(
            plan_move(&peers, &owners, 100),
            Some(PlannedMove {
                sector: s2,
                from: 1,
                to: 2,
                units: 350
            })
        );
    }

    #[test]
    fn leaves_a_balanced_cluster_or_a_last_sector_alone() {
        let (s1, s2, s3) = (
            SectorId::new(0, 0, 3),
            SectorId::new(1, 0, 3),
            SectorId::new(5, 0, 3),
        );
        // Under the gap.
        let (peers, owners) = setup(&[(s1, 150), (s2, 100)], &[(s3, 200)]);
        assert_eq!(plan_move(&peers, &owners, 100), None);
        // Its only sector: moving it would just swap the imbalance.
        let (peers, owners) = setup(&[(s1, 900)], &[(s3, 10)]);
        assert_eq!(plan_move(&peers, &owners, 100), None);
        // A move that would not make it more even (one huge sector).
        let (peers, owners) = setup(&[(s1, 1000), (s2, 0)], &[(s3, 0)]);
        assert_eq!(plan_move(&peers, &owners, 100), None);
    }
}
