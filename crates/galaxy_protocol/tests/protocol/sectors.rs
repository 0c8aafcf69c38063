//! Sector maths over the whole i64 world, including huge and negative coordinates.

use galaxy_protocol::*;
use proptest::prelude::*;

use crate::strategies::world_pos;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn a_position_is_in_its_sector_at_every_scale(p in world_pos(), scale in 0..=MAX_SCALE) {
        let s = SectorId::containing(p, scale).unwrap();
        prop_assert!(s.is_valid());
        prop_assert!(s.contains(p));
        prop_assert!(s.bounds().unwrap().contains(p));
        // Floor division: the sector's corner is at or below the position.
        let size = s.size_cm();
        prop_assert!(s.x as i128 * size <= p.x as i128 && (p.x as i128) < (s.x as i128 + 1) * size);
        prop_assert!(s.y as i128 * size <= p.y as i128 && (p.y as i128) < (s.y as i128 + 1) * size);
        if let Some(parent) = s.parent() {
            prop_assert_eq!(Some(parent), SectorId::containing(p, scale + 1));
            prop_assert!(parent.children().any(|c| c == s));
        } else {
            prop_assert_eq!(scale, MAX_SCALE);
        }
        prop_assert_eq!(s.ancestor(MAX_SCALE), SectorId::containing(p, MAX_SCALE));
    }

    #[test]
    fn neighbours_touch(p in world_pos(), scale in 0..=MAX_SCALE) {
        let s = SectorId::containing(p, scale).unwrap();
        let n: Vec<_> = s.neighbours().collect();
        prop_assert!(n.len() <= 8 && n.len() >= 3);
        for m in &n {
            prop_assert!(m.is_valid());
            prop_assert_eq!(m.ring_distance(&s), Some(1));
        }
    }

    #[test]
    fn covering_is_exact(a in world_pos(), dx in 0i64..400_000, dy in 0i64..400_000, scale in 0u8..3) {
        let b = WorldPos::new(a.x.saturating_add(dx), a.y.saturating_add(dy));
        let rect = WorldRect::from_corners(a, b);
        let range = SectorId::covering(rect, scale).unwrap();
        let n = range.remaining();
        let sectors: Vec<_> = range.collect();
        prop_assert_eq!(sectors.len() as u128, n);
        // Every corner and the centre are covered; every sector overlaps the rect.
        for p in [rect.min, rect.max, WorldPos::new(rect.min.x, rect.max.y), WorldPos::new(a.x + (b.x - a.x) / 2, a.y + (b.y - a.y) / 2)] {
            prop_assert!(sectors.iter().any(|s| s.contains(p)));
        }
        for s in &sectors {
            let r = s.bounds().unwrap();
            prop_assert!(r.min.x <= rect.max.x && r.max.x >= rect.min.x && r.min.y <= rect.max.y && r.max.y >= rect.min.y);
        }
    }
}

#[test]
fn named_extremes() {
    let km = SECTOR_SIZE_CM;
    assert_eq!(
        SectorId::at(WorldPos::new(-1, -1)),
        SectorId::new(-1, -1, 0)
    );
    assert_eq!(SectorId::at(WorldPos::new(-km, 0)), SectorId::new(-1, 0, 0));
    assert_eq!(
        SectorId::at(WorldPos::new(-km - 1, 0)),
        SectorId::new(-2, 0, 0)
    );
    let min = SectorId::at(WorldPos::new(i64::MIN, i64::MIN));
    assert_eq!(
        min,
        SectorId::new(-92_233_720_368_548, -92_233_720_368_548, 0)
    );
    assert_eq!(min.neighbours().count(), 3);
    assert_eq!(min.parent().unwrap().children().count(), 4);
    // Scales above the maximum and coordinates outside the world are invalid, never a panic.
    assert!(!SectorId::new(0, 0, MAX_SCALE + 1).is_valid());
    assert_eq!(SectorId::new(0, 0, 200).bounds(), None);
    assert_eq!(SectorId::new(i64::MIN, 0, 0).parent(), None);
    assert_eq!(SectorId::new(i64::MIN, 0, 5).children().count(), 0);
    assert_eq!(SectorId::new(i64::MAX, i64::MAX, 0).neighbours().count(), 0);
}
