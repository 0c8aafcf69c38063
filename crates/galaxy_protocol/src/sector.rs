//! The sector hierarchy that partitions the universe.
//!
//! Scale 0 sectors are 1 km x 1 km; a scale `n` sector is `2^n` km on a side
//! and holds exactly the four scale `n-1` sectors below it. Sector
//! coordinates are floor divisions of centimetre positions, computed in
//! `i128` so every answer is exact over the whole `i64` world and no input
//! can overflow or panic.
//!
//! Usable world: every `WorldPos` (±9.2 x 10^16 m per axis). At
//! [`MAX_SCALE`] the world is covered by 2 x 2 sectors; coarser scales would
//! add nothing, so they are not valid.

use serde::{Deserialize, Serialize};

use crate::position::{WorldPos, WorldRect};

/// Side of a scale-0 sector in centimetres (1 km).
pub const SECTOR_SIZE_CM: i64 = 100_000;

/// The coarsest scale: a sector of `2^47` km, twice the world on each axis.
pub const MAX_SCALE: u8 = 47;

/// One cell of the sector hierarchy (the design's `SectorId`).
///
/// Fields are public as in the design; a hand-built value may lie outside the
/// world, which [`SectorId::is_valid`] reports and the codec rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SectorId {
    /// Column: `floor(x_cm / size)`.
    pub x: i64,
    /// Row: `floor(y_cm / size)`.
    pub y: i64,
    /// 0 = 1 km sectors; each step up doubles the side.
    pub scale: u8,
}

/// Side of a sector at `scale` in centimetres (exact in i128 for valid scales).
pub fn sector_size_cm(scale: u8) -> i128 {
    (SECTOR_SIZE_CM as i128) << scale.min(MAX_SCALE)
}

/// Inclusive range of sector coordinates that contain some world position at `scale`.
fn coord_range(scale: u8) -> (i64, i64) {
    let size = sector_size_cm(scale);
    (
        (i64::MIN as i128).div_euclid(size) as i64,
        (i64::MAX as i128).div_euclid(size) as i64,
    )
}

fn sector_coord(cm: i64, scale: u8) -> i64 {
    // Floor division; the quotient always fits in i64 because size >= 1.
    (cm as i128).div_euclid(sector_size_cm(scale)) as i64
}

impl SectorId {
    /// A sector from raw coordinates (not checked; see [`SectorId::is_valid`]).
    pub const fn new(x: i64, y: i64, scale: u8) -> Self {
        Self { x, y, scale }
    }

    /// The scale-0 sector containing `pos`.
    pub fn at(pos: WorldPos) -> Self {
        Self::new(sector_coord(pos.x, 0), sector_coord(pos.y, 0), 0)
    }

    /// The sector at `scale` containing `pos`, or `None` if `scale > MAX_SCALE`.
    pub fn containing(pos: WorldPos, scale: u8) -> Option<Self> {
        (scale <= MAX_SCALE).then(|| {
            Self::new(
                sector_coord(pos.x, scale),
                sector_coord(pos.y, scale),
                scale,
            )
        })
    }

    /// True if this sector exists: its scale is at most [`MAX_SCALE`] and it
    /// contains at least one world position.
    pub fn is_valid(&self) -> bool {
        if self.scale > MAX_SCALE {
            return false;
        }
        let (lo, hi) = coord_range(self.scale);
        (lo..=hi).contains(&self.x) && (lo..=hi).contains(&self.y)
    }

    /// Side length in centimetres.
    pub fn size_cm(&self) -> i128 {
        sector_size_cm(self.scale)
    }

    /// The world positions inside this sector, clipped to the world; `None` if invalid.
    pub fn bounds(&self) -> Option<WorldRect> {
        if !self.is_valid() {
            return None;
        }
        let size = self.size_cm();
        let axis = |c: i64| {
            let lo = (c as i128 * size).max(i64::MIN as i128);
            let hi = (c as i128 * size + size - 1).min(i64::MAX as i128);
            (lo as i64, hi as i64)
        };
        let (x0, x1) = axis(self.x);
        let (y0, y1) = axis(self.y);
        Some(WorldRect {
            min: WorldPos::new(x0, y0),
            max: WorldPos::new(x1, y1),
        })
    }

    /// True if `pos` lies in this sector.
    pub fn contains(&self, pos: WorldPos) -> bool {
        Self::containing(pos, self.scale) == Some(*self)
    }

    /// The sector one scale up that contains this one; `None` at [`MAX_SCALE`] or if invalid.
    pub fn parent(&self) -> Option<Self> {
        self.ancestor(self.scale.checked_add(1)?)
    }

    /// The sector at the coarser `scale` that contains this one.
    pub fn ancestor(&self, scale: u8) -> Option<Self> {
        if !self.is_valid() || scale < self.scale || scale > MAX_SCALE {
            return None;
        }
        let shift = u32::from(scale - self.scale);
        // Arithmetic shift is floor division by 2^shift; shift <= 47.
        Some(Self::new(self.x >> shift, self.y >> shift, scale))
    }

    /// The (up to four) valid sectors one scale down that this one contains.
    ///
    /// Empty at scale 0 or if invalid; at the world's edge, children that
    /// contain no world position are left out.
    pub fn children(&self) -> impl Iterator<Item = SectorId> + use<> {
        let parent = *self;
        let ok = parent.scale > 0 && parent.is_valid();
        let scale = parent.scale.saturating_sub(1);
        (0..4u8)
            .filter(move |_| ok)
            .map(move |i| {
                let x = (parent.x as i128 * 2 + i128::from(i & 1)) as i64;
                let y = (parent.y as i128 * 2 + i128::from(i >> 1)) as i64;
                SectorId::new(x, y, scale)
            })
            .filter(SectorId::is_valid)
    }

    /// The (up to eight) valid sectors at the same scale touching this one.
    pub fn neighbours(&self) -> impl Iterator<Item = SectorId> + use<> {
        let me = *self;
        let ok = me.is_valid();
        (-1i64..=1)
            .flat_map(|dy| (-1i64..=1).map(move |dx| (dx, dy)))
            .filter(move |&(dx, dy)| ok && (dx, dy) != (0, 0))
            .filter_map(move |(dx, dy)| {
                Some(SectorId::new(
                    me.x.checked_add(dx)?,
                    me.y.checked_add(dy)?,
                    me.scale,
                ))
            })
            .filter(SectorId::is_valid)
    }

    /// Chebyshev distance in sectors to `other` at the same scale (`None` across scales).
    pub fn ring_distance(&self, other: &SectorId) -> Option<u64> {
        (self.scale == other.scale).then(|| self.x.abs_diff(other.x).max(self.y.abs_diff(other.y)))
    }

    /// The sectors at `scale` that cover `rect`, as a lazy row-major iterator.
    ///
    /// `None` if `scale > MAX_SCALE` or the rectangle is not well formed.
    pub fn covering(rect: WorldRect, scale: u8) -> Option<SectorRange> {
        if !rect.is_well_formed() {
            return None;
        }
        let a = Self::containing(rect.min, scale)?;
        let b = Self::containing(rect.max, scale)?;
        Some(SectorRange {
            scale,
            x0: a.x,
            x1: b.x,
            y1: b.y,
            next: Some((a.x, a.y)),
        })
    }
}

impl std::fmt::Display for SectorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S{}({}, {})", self.scale, self.x, self.y)
    }
}

/// Row-major iterator over a rectangle of sectors; see [`SectorId::covering`].
#[derive(Clone, Debug)]
pub struct SectorRange {
    scale: u8,
    x0: i64,
    x1: i64,
    y1: i64,
    next: Option<(i64, i64)>,
}

impl SectorRange {
    /// Sectors left to yield; may exceed `usize` for world-sized rectangles.
    pub fn remaining(&self) -> u128 {
        let Some((x, y)) = self.next else { return 0 };
        let width = (self.x1 as i128 - self.x0 as i128 + 1) as u128;
        let full_rows = (self.y1 as i128 - y as i128) as u128;
        full_rows * width + (self.x1 as i128 - x as i128 + 1) as u128
    }
}

impl Iterator for SectorRange {
    type Item = SectorId;

    fn next(&mut self) -> Option<SectorId> {
        let (x, y) = self.next?;
        self.next = if x < self.x1 {
            Some((x + 1, y))
        } else if y < self.y1 {
            Some((self.x0, y + 1))
        } else {
            None
        };
        Some(SectorId::new(x, y, self.scale))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining();
        (n.min(usize::MAX as u128) as usize, usize::try_from(n).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KM: i64 = SECTOR_SIZE_CM;

    #[test]
    fn floor_division_for_negative_positions() {
        assert_eq!(SectorId::at(WorldPos::new(0, 0)), SectorId::new(0, 0, 0));
        assert_eq!(SectorId::at(WorldPos::new(-1, KM)), SectorId::new(-1, 1, 0));
        assert_eq!(
            SectorId::at(WorldPos::new(-KM, -KM - 1)),
            SectorId::new(-1, -2, 0)
        );
        assert_eq!(
            SectorId::containing(WorldPos::new(3 * KM, -1), 1),
            Some(SectorId::new(1, -1, 1))
        );
        assert_eq!(
            SectorId::containing(WorldPos::new(0, 0), MAX_SCALE + 1),
            None
        );
    }

    #[test]
    fn extremes_of_i64_are_exact() {
        let max = WorldPos::new(i64::MAX, i64::MAX);
        let min = WorldPos::new(i64::MIN, i64::MIN);
        let s = SectorId::at(max);
        assert_eq!(s.x, i64::MAX / KM);
        assert_eq!(
            SectorId::at(min).x,
            (i64::MIN as i128).div_euclid(KM as i128) as i64
        );
        assert!(s.is_valid() && s.contains(max));
        assert_eq!(s.bounds().unwrap().max, max);
        assert_eq!(SectorId::at(min).bounds().unwrap().min, min);
        // The whole world is 2 x 2 sectors at the coarsest scale.
        assert_eq!(
            SectorId::containing(max, MAX_SCALE),
            Some(SectorId::new(0, 0, MAX_SCALE))
        );
        assert_eq!(
            SectorId::containing(min, MAX_SCALE),
            Some(SectorId::new(-1, -1, MAX_SCALE))
        );
        assert_eq!(SectorId::new(0, 0, MAX_SCALE).parent(), None);
        // Neighbours stop at the edge of the world.
        assert_eq!(s.neighbours().count(), 3);
        assert!(!SectorId::new(i64::MAX, 0, 0).is_valid());
        assert_eq!(SectorId::new(i64::MAX, i64::MIN, 0).neighbours().count(), 0);
    }

    #[test]
    fn parents_and_children_are_inverse() {
        for &(x, y) in &[(0, 0), (-1, -1), (5, -7), (-1_000_001, 999_999)] {
            let s = SectorId::new(x, y, 0);
            let p = s.parent().unwrap();
            assert_eq!(p, SectorId::new(x.div_euclid(2), y.div_euclid(2), 1));
            assert!(p.children().any(|c| c == s));
            assert_eq!(p.children().count(), 4);
            assert!(p.children().all(|c| c.parent() == Some(p)));
            assert_eq!(
                s.ancestor(10),
                Some(SectorId::new(x.div_euclid(1024), y.div_euclid(1024), 10))
            );
        }
        assert_eq!(SectorId::new(0, 0, 0).children().count(), 0);
        // Every child of the top-level sectors is inside the world.
        let top: Vec<_> = SectorId::new(-1, -1, MAX_SCALE).children().collect();
        assert_eq!(top.len(), 4);
    }

    #[test]
    fn covering_rectangles() {
        let r = WorldRect::from_corners(WorldPos::new(-1, -1), WorldPos::new(KM, 2 * KM));
        let v: Vec<_> = SectorId::covering(r, 0).unwrap().collect();
        assert_eq!(v.len(), 3 * 4);
        assert_eq!(v[0], SectorId::new(-1, -1, 0));
        assert_eq!(*v.last().unwrap(), SectorId::new(1, 2, 0));
        let at1: Vec<_> = SectorId::covering(r, 1).unwrap().collect();
        assert_eq!(at1.len(), 2 * 3);
        let world = WorldRect::from_corners(
            WorldPos::new(i64::MIN, i64::MIN),
            WorldPos::new(i64::MAX, i64::MAX),
        );
        let range = SectorId::covering(world, 0).unwrap();
        assert!(range.remaining() > u64::MAX as u128);
        assert_eq!(SectorId::covering(world, MAX_SCALE).unwrap().count(), 4);
    }
}
