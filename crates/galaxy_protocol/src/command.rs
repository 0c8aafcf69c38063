//! Player orders: `BatchCommand`, `CompressedCommand` and compact unit-id lists.

use serde::{Deserialize, Serialize};

use crate::position::WorldPos;
use crate::sector::SectorId;
use crate::unit::{PlayerId, UnitId};

/// Most units one command may name: bounds the work a single order can cause.
pub const MAX_COMMAND_UNITS: u64 = 65_536;

/// Most commands in one `BatchCommand`.
pub const MAX_BATCH_COMMANDS: usize = 256;

/// A set of unit ids stored as sorted runs of consecutive ids, so a
/// selection of 500 units spawned together costs a few bytes.
///
/// On the wire it is `[first, run_len - 1, gap, run_len - 1, ...]` as
/// varints, where `gap >= 1` is the distance from the end of the previous run. Decoding never expands runs, so a tiny input cannot claim a huge list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UnitIdList {
    /// `(first id, number of consecutive ids)`, sorted and non-touching.
    runs: Vec<(UnitId, u64)>,
}

/// Why a unit-id list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitIdListError {
    /// More than [`MAX_COMMAND_UNITS`] ids.
    #[error("more than {MAX_COMMAND_UNITS} units in one command")]
    TooMany,
    /// A run overflowed the id space.
    #[error("unit id run overflows u64")]
    Overflow,
    /// An odd number of encoded fields, or runs that touch.
    #[error("unit id runs are malformed")]
    Malformed,
}

impl UnitIdList {
    /// Builds a list from ids in any order (duplicates are dropped).
    /// Fails if more than [`MAX_COMMAND_UNITS`] distinct ids are given.
    pub fn from_ids(ids: impl IntoIterator<Item = UnitId>) -> Result<Self, UnitIdListError> {
        let mut ids: Vec<UnitId> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() as u64 > MAX_COMMAND_UNITS {
            return Err(UnitIdListError::TooMany);
        }
        let mut runs: Vec<(UnitId, u64)> = Vec::new();
        for id in ids {
            match runs.last_mut() {
                Some((start, len)) if start.checked_add(*len) == Some(id) => *len += 1,
                _ => runs.push((id, 1)),
            }
        }
        Ok(Self { runs })
    }

    /// Number of ids.
    pub fn len(&self) -> u64 {
        self.runs.iter().map(|r| r.1).sum()
    }

    /// True if no ids.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// True if `id` is in the list.
    pub fn contains(&self, id: UnitId) -> bool {
        let i = self.runs.partition_point(|&(s, _)| s <= id);
        i > 0 && id - self.runs[i - 1].0 < self.runs[i - 1].1
    }

    /// The ids in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = UnitId> + '_ {
        self.runs
            .iter()
            .flat_map(|&(s, n)| (0..n).map(move |i| s + i))
    }

    /// Number of runs (what the wire size depends on).
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    fn to_fields(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.runs.len() * 2);
        let mut next = 0u64;
        for (i, &(start, len)) in self.runs.iter().enumerate() {
            out.push(if i == 0 { start } else { start - next });
            out.push(len - 1);
            next = start.wrapping_add(len);
        }
        out
    }

    fn from_fields(fields: &[u64]) -> Result<Self, UnitIdListError> {
        if !fields.len().is_multiple_of(2) {
            return Err(UnitIdListError::Malformed);
        }
        let mut runs = Vec::with_capacity(fields.len() / 2);
        // One past the end of the previous run; u128 so a run may end at u64::MAX.
        let mut next = 0u128;
        let mut total = 0u64;
        for (i, pair) in fields.chunks_exact(2).enumerate() {
            // After the first run, the gap is at least 1 so runs never touch.
            let start = if i == 0 {
                u128::from(pair[0])
            } else if pair[0] == 0 {
                return Err(UnitIdListError::Malformed);
            } else {
                next + u128::from(pair[0])
            };
            let len = u128::from(pair[1]) + 1;
            total = total
                .checked_add(len as u64)
                .filter(|&t| len <= u128::from(MAX_COMMAND_UNITS) && t <= MAX_COMMAND_UNITS)
                .ok_or(UnitIdListError::TooMany)?;
            next = start + len;
            if next > u128::from(u64::MAX) + 1 {
                return Err(UnitIdListError::Overflow);
            }
            runs.push((start as u64, len as u64));
        }
        Ok(Self { runs })
    }
}

impl Serialize for UnitIdList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_fields().serialize(s)
    }
}

impl<'de> Deserialize<'de> for UnitIdList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields: Vec<u64> =
            crate::codec::bounded::vec::<_, _, { 2 * MAX_COMMAND_UNITS as usize }>(d)?;
        Self::from_fields(&fields).map_err(serde::de::Error::custom)
    }
}

/// One order in a `BatchCommand`, naming many units at once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CompressedCommand {
    /// Move to a point.
    Move {
        /// Units ordered.
        units: UnitIdList,
        /// Destination.
        to: WorldPos,
    },
    /// Move to a point, engaging enemies on the way.
    AttackMove {
        /// Units ordered.
        units: UnitIdList,
        /// Destination.
        to: WorldPos,
    },
    /// Attack one unit.
    Attack {
        /// Units ordered.
        units: UnitIdList,
        /// The unit to attack.
        target: UnitId,
    },
    /// Stop and hold.
    Stop {
        /// Units ordered.
        units: UnitIdList,
    },
}

impl CompressedCommand {
    /// The units this command orders.
    pub fn units(&self) -> &UnitIdList {
        match self {
            Self::Move { units, .. }
            | Self::AttackMove { units, .. }
            | Self::Attack { units, .. }
            | Self::Stop { units } => units,
        }
    }

    /// The same order given to other units (to split a command between
    /// the servers that simulate its units).
    pub fn with_units(&self, units: UnitIdList) -> Self {
        match *self {
            Self::Move { to, .. } => Self::Move { units, to },
            Self::AttackMove { to, .. } => Self::AttackMove { units, to },
            Self::Attack { target, .. } => Self::Attack { units, target },
            Self::Stop { .. } => Self::Stop { units },
        }
    }
}

/// A player's orders for one tick (the design's `BatchCommand`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchCommand {
    /// The sector the player is acting in (routing hint for clusters).
    pub sector_id: SectorId,
    /// The orders, applied in order.
    #[serde(deserialize_with = "crate::codec::bounded::vec::<_, _, MAX_BATCH_COMMANDS>")]
    pub commands: Vec<CompressedCommand>,
    /// Who claims to send it; servers trust the connection's id, not this.
    pub player_id: PlayerId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_compress_and_iterate() {
        let l = UnitIdList::from_ids([7, 3, 4, 5, 100, 101, 4]).unwrap();
        assert_eq!(l.run_count(), 3);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![3, 4, 5, 7, 100, 101]);
        assert_eq!(l.len(), 6);
        assert!(
            l.contains(4)
                && l.contains(101)
                && !l.contains(6)
                && !l.contains(2)
                && !l.contains(102)
        );
        assert_eq!(UnitIdList::from_fields(&l.to_fields()), Ok(l));
        let top = UnitIdList::from_ids([u64::MAX - 1, u64::MAX]).unwrap();
        assert_eq!(UnitIdList::from_fields(&top.to_fields()), Ok(top));
    }

    #[test]
    fn hostile_runs_are_refused() {
        assert_eq!(
            UnitIdList::from_fields(&[0, u64::MAX]),
            Err(UnitIdListError::TooMany)
        );
        assert_eq!(
            UnitIdList::from_fields(&[0, MAX_COMMAND_UNITS]),
            Err(UnitIdListError::TooMany)
        );
        assert_eq!(
            UnitIdList::from_fields(&[u64::MAX, 1]),
            Err(UnitIdListError::Overflow)
        );
        assert_eq!(
            UnitIdList::from_fields(&[5, 0, 0, 0]),
            Err(UnitIdListError::Malformed)
        );
        assert_eq!(
            UnitIdList::from_fields(&[5]),
            Err(UnitIdListError::Malformed)
        );
        assert!(UnitIdList::from_ids(0..MAX_COMMAND_UNITS + 1).is_err());
    }
}
