//! The replicated units as the client draws them: each unit is an entity
//! with its [`NetUnit`], the [`Replica`] of its newest state and, from
//! `galaxy_net`'s smoothing, the [`DrawnPosition`] of this frame.
//! [`DrawnUnits`] reads them together for the client's systems.

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use galaxy_net::{ClientUnits, DrawnPosition, NetUnit, Replica, TickRate};
use galaxy_protocol::{QuantizedUnit, UnitId};
use galaxy_sim::KindStats;

/// A unit as drawn this frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnUnit {
    /// Where to draw it, in world centimetres.
    pub position: (f64, f64),
    /// Its newest authoritative state (owner, kind, health, ...).
    pub state: QuantizedUnit,
    /// Whether it is being predicted locally right now.
    pub predicted: bool,
}

/// Every replicated unit with its drawn position (units not yet drawn are
/// left out until the smoothing has placed them).
#[derive(SystemParam)]
pub struct DrawnUnits<'w, 's> {
    units: Res<'w, ClientUnits>,
    query: Query<
        'w,
        's,
        (
            &'static NetUnit,
            &'static Replica<QuantizedUnit>,
            &'static DrawnPosition,
        ),
    >,
}

impl DrawnUnits<'_, '_> {
    /// Every unit drawn this frame.
    pub fn iter(&self) -> impl Iterator<Item = (UnitId, DrawnUnit)> + '_ {
        self.query.iter().map(|(id, r, d)| (id.0, drawn(r, d)))
    }

    /// One unit as drawn this frame.
    pub fn get(&self, id: UnitId) -> Option<DrawnUnit> {
        let e = self.units.get(id)?;
        self.query.get(e).ok().map(|(_, r, d)| drawn(r, d))
    }
}

fn drawn(r: &Replica<QuantizedUnit>, d: &DrawnPosition) -> DrawnUnit {
    DrawnUnit {
        position: d.position,
        state: r.state,
        predicted: d.predicted,
    }
}

/// Kind stats at the server's tick rate (speeds per tick).
pub fn kind_stats(kind: u8, rate: &TickRate) -> KindStats {
    KindStats::at(kind, rate.0.round().max(1.0) as u32)
}
