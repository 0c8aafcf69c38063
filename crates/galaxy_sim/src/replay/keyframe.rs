//! A [`WorldState`] in bytes, small: the units go column by column (ids,
//! owners, x, y, ...), each value as the difference from what it is
//! expected to be, in a zigzag varint. The expectation is the same unit in
//! the previous keyframe when the keyframe is a delta and the unit was
//! there, else the unit before it in this one (units of one army, spawned
//! together, are alike); a walker's position and velocity are expected on
//! its leg, where the simulation puts them. Columns of small, repetitive
//! bytes (mostly zeros) are what deflate (in [`super::file`]) packs best.

use galaxy_protocol::bits::{unzigzag, zigzag};
use galaxy_protocol::codec::{decode_value, encode_value};
use galaxy_protocol::geometry::distance_cm;
use galaxy_protocol::{UnitId, UnitState, Velocity, WorldPos};
use serde::{Deserialize, Serialize};

use super::ReplayError;
use crate::behaviour::Leg;
use crate::geometry::velocity_towards;
use crate::kinds::Kinds;
use crate::state::{WorldState, order_words};
use crate::world::{Base, Order, Resource, SimUnit};

/// The columns, in the order they are written.
#[derive(Clone, Copy)]
enum Col {
    Id,
    Owner,
    Kind,
    X,
    Y,
    Health,
    OrderTag,
    OrderA,
    OrderB,
    Target,
    Cooldown,
    State,
    VelX,
    VelY,
    LegTag,
    LegFromX,
    LegFromY,
    LegToX,
    LegToY,
    LegTicks,
    LegLength,
    LegVelX,
    LegVelY,
}

const COLUMNS: usize = Col::LegVelY as usize + 1;

/// The state besides the units, in bincode (few entries).
#[derive(Serialize, Deserialize)]
struct Rest {
    tick: u64,
    next_id: UnitId,
    id_end: UnitId,
    resources: Vec<(UnitId, Resource)>,
    bases: Vec<(UnitId, Base)>,
    last_battle: Vec<(galaxy_protocol::SectorId, u64)>,
}

/// A unit of nothing: the reference of the first unit of a full keyframe.
const ZERO: SimUnit = SimUnit {
    owner: 0,
    kind: 0,
    position: WorldPos::new(0, 0),
    health: 0,
    order: Order::Idle,
    target: None,
    cooldown: 0,
    state: UnitState::IDLE,
    velocity: Velocity::ZERO,
    leg: None,
};

/// Walks a keyframe's units in id order alongside the base's, giving each
/// unit's reference, and whether it is the same unit in the base.
struct References<'a> {
    base: &'a [(UnitId, SimUnit)],
    at: usize,
    prev: SimUnit,
}

impl<'a> References<'a> {
    fn new(base: Option<&'a WorldState>) -> Self {
        Self {
            base: base.map_or(&[], |b| &b.units),
            at: 0,
            prev: ZERO,
        }
    }

    fn of(&mut self, id: UnitId) -> (SimUnit, bool) {
        while self.base.get(self.at).is_some_and(|b| b.0 < id) {
            self.at += 1;
        }
        match self.base.get(self.at) {
            Some(&(b, u)) if b == id => (u, true),
            _ => (self.prev, false),
        }
    }
}

/// What a unit's fields are written against: the reference unit's, and
/// what follows exactly from its walk (the simulation puts a walker on
/// its leg, at the leg's velocity), so a walker costs next to nothing.
struct Expect {
    r: SimUnit,
    same: bool,
    /// Ticks between the base and this keyframe.
    dt: u64,
}

/// Legs longer than this (~11,000 km) are not projected (keeps the
/// projection's arithmetic in range for any bytes a file may hold).
const MAX_PROJECTED_LEG_CM: u64 = 1 << 40;

impl Expect {
    fn leg(&self) -> Option<Leg> {
        self.same.then_some(self.r.leg).flatten()
    }

    fn leg_to(&self, order: Order) -> WorldPos {
        match (self.leg(), order, self.r.leg) {
            (Some(l), _, _) => l.to,
            (None, Order::Move(p) | Order::AttackMove(p), _) => p,
            (None, _, Some(l)) => l.to,
            _ => self.r.position,
        }
    }

    /// The same leg as in the base, or a new one started `ticks` ago
    /// where the unit was heading then, or (no base) its end.
    fn leg_from(&self, to: WorldPos, ticks: u64) -> WorldPos {
        match self.leg() {
            Some(l) if l.to == to => l.from,
            _ if self.same => {
                let n = self.dt.saturating_sub(ticks).min(1 << 24) as i64;
                let along = |p: i64, v: i32| p.wrapping_add(i64::from(v).wrapping_mul(n) >> 4);
                WorldPos::new(
                    along(self.r.position.x, self.r.velocity.x),
                    along(self.r.position.y, self.r.velocity.y),
                )
            }
            _ => to,
        }
    }

    fn leg_ticks(&self, to: WorldPos) -> u64 {
        match self.leg() {
            Some(l) if l.to == to => l.ticks.wrapping_add(self.dt),
            _ => 0,
        }
    }

    /// A target as a code: 0 none, 1 the reference's, else the
    /// difference from the unit before's target.
    fn target_code(&self, t: Option<UnitId>, prev: Option<UnitId>) -> u64 {
        match t {
            None => 0,
            Some(t) if Some(t) == self.r.target => 1,
            Some(t) => zigzag((t as i64).wrapping_sub(prev.unwrap_or(0) as i64)).wrapping_add(2),
        }
    }

    fn target(&self, code: u64, prev: Option<UnitId>) -> Result<Option<UnitId>, ReplayError> {
        Ok(match code {
            0 => None,
            1 => Some(
                self.r
                    .target
                    .ok_or(ReplayError::Corrupt("a unit's target"))?,
            ),
            c => Some((prev.unwrap_or(0) as i64).wrapping_add(unzigzag(c - 2)) as UnitId),
        })
    }

    fn position(&self, leg: Option<Leg>, speed: u64) -> WorldPos {
        match leg {
            Some(l) if l.length <= MAX_PROJECTED_LEG_CM => l.position(speed),
            _ => self.r.position,
        }
    }

    fn velocity(&self, leg: Option<Leg>) -> Velocity {
        leg.map_or(self.r.velocity, |l| l.velocity)
    }
}

/// Appends `v - r` as a zigzag varint.
pub(crate) fn put(col: &mut Vec<u8>, v: i64, r: i64) {
    let mut z = zigzag(v.wrapping_sub(r));
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            col.push(byte);
            return;
        }
        col.push(byte | 0x80);
    }
}

/// The reference words of an order with tag `tag`: the reference unit's
/// own when it has the same order kind, else the reference's position.
fn order_reference(r: &SimUnit, tag: u64) -> (i64, i64) {
    let (rt, a, b) = order_words(r.order);
    if rt == tag {
        (a as i64, b as i64)
    } else {
        (r.position.x, r.position.y)
    }
}

/// Appends `state` to `out`, as a delta from `base` if given.
pub(crate) fn encode_state(
    state: &WorldState,
    base: Option<&WorldState>,
    kinds: &Kinds,
    out: &mut Vec<u8>,
) {
    let rest = Rest {
        tick: state.tick,
        next_id: state.next_id,
        id_end: state.id_end,
        resources: state.resources.clone(),
        bases: state.bases.clone(),
        last_battle: state.last_battle.clone(),
    };
    let mut rest_bytes = Vec::new();
    // Resources, bases and sectors are a few hundred entries at most; a
    // world whose rest does not fit a message is not recordable.
    if encode_value(0, &rest, &mut rest_bytes).is_err() {
        rest_bytes.clear();
    }
    let mut cols: [Vec<u8>; COLUMNS] = std::array::from_fn(|_| Vec::new());
    let mut refs = References::new(base);
    let dt = base.map_or(0, |b| state.tick.wrapping_sub(b.tick));
    let mut last_id = 0;
    for &(id, u) in &state.units {
        let (r, same) = refs.of(id);
        let e = Expect { r, same, dt };
        let speed = kinds.get(u.kind).speed_cm_per_tick;
        let c = &mut cols;
        put(&mut c[Col::Id as usize], id as i64, last_id as i64);
        last_id = id;
        put(&mut c[Col::Owner as usize], u.owner as i64, r.owner as i64);
        put(
            &mut c[Col::Kind as usize],
            i64::from(u.kind),
            i64::from(r.kind),
        );
        let (tag, a, b) = order_words(u.order);
        put(&mut c[Col::OrderTag as usize], tag as i64, 0);
        if tag != 0 {
            let (ra, rb) = order_reference(&r, tag);
            put(&mut c[Col::OrderA as usize], a as i64, ra);
            if tag != 3 {
                put(&mut c[Col::OrderB as usize], b as i64, rb);
            }
        }
        match u.leg {
            None => put(&mut c[Col::LegTag as usize], 0, 0),
            Some(l) => {
                put(&mut c[Col::LegTag as usize], 1, 0);
                let to = e.leg_to(u.order);
                put(&mut c[Col::LegToX as usize], l.to.x, to.x);
                put(&mut c[Col::LegToY as usize], l.to.y, to.y);
                put(
                    &mut c[Col::LegTicks as usize],
                    l.ticks as i64,
                    e.leg_ticks(l.to) as i64,
                );
                let from = e.leg_from(l.to, l.ticks);
                put(&mut c[Col::LegFromX as usize], l.from.x, from.x);
                put(&mut c[Col::LegFromY as usize], l.from.y, from.y);
                put(
                    &mut c[Col::LegLength as usize],
                    l.length as i64,
                    distance_cm(l.from, l.to) as i64,
                );
                let v = velocity_towards(l.from, l.to, speed);
                put(
                    &mut c[Col::LegVelX as usize],
                    i64::from(l.velocity.x),
                    i64::from(v.x),
                );
                put(
                    &mut c[Col::LegVelY as usize],
                    i64::from(l.velocity.y),
                    i64::from(v.y),
                );
            }
        }
        let p = e.position(u.leg, speed);
        put(&mut c[Col::X as usize], u.position.x, p.x);
        put(&mut c[Col::Y as usize], u.position.y, p.y);
        let v = e.velocity(u.leg);
        put(
            &mut c[Col::VelX as usize],
            i64::from(u.velocity.x),
            i64::from(v.x),
        );
        put(
            &mut c[Col::VelY as usize],
            i64::from(u.velocity.y),
            i64::from(v.y),
        );
        put(
            &mut c[Col::Health as usize],
            i64::from(u.health),
            i64::from(r.health),
        );
        let code = e.target_code(u.target, refs.prev.target);
        put(&mut c[Col::Target as usize], code as i64, 0);
        put(
            &mut c[Col::Cooldown as usize],
            i64::from(u.cooldown),
            i64::from(r.cooldown),
        );
        put(
            &mut c[Col::State as usize],
            i64::from(u.state.0),
            i64::from(r.state.0),
        );
        refs.prev = u;
    }
    put_len(out, rest_bytes.len());
    out.extend_from_slice(&rest_bytes);
    put_len(out, state.units.len());
    for c in &cols {
        put_len(out, c.len());
    }
    for c in &cols {
        out.extend_from_slice(c);
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put(out, n as i64, 0);
}

/// Reads varints off a slice; running out is [`ReplayError::Corrupt`].
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// The next zigzag varint, as the difference it encodes.
    pub(crate) fn diff(&mut self) -> Result<i64, ReplayError> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or(ReplayError::Corrupt("a keyframe ends early"))?;
            self.at += 1;
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(unzigzag(z));
            }
        }
        Err(ReplayError::Corrupt("a varint is too long"))
    }

    /// `r` plus the next difference.
    fn value(&mut self, r: i64) -> Result<i64, ReplayError> {
        Ok(r.wrapping_add(self.diff()?))
    }

    /// A count or length (not negative, not beyond what is left).
    pub(crate) fn len(&mut self) -> Result<usize, ReplayError> {
        let n = self.diff()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.at)
            .ok_or(ReplayError::Corrupt("a length is out of range"))
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ReplayError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(ReplayError::Corrupt("a keyframe ends early"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// True when every byte was read.
    pub(crate) fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

fn narrow<T: TryFrom<i64>>(v: i64) -> Result<T, ReplayError> {
    T::try_from(v).map_err(|_| ReplayError::Corrupt("a unit field is out of range"))
}

/// Reads a state written by [`encode_state`] with the same `base`.
pub(crate) fn decode_state(
    bytes: &[u8],
    base: Option<&WorldState>,
    kinds: &Kinds,
) -> Result<WorldState, ReplayError> {
    let mut r = Reader::new(bytes);
    let rest_len = r.len()?;
    let rest_bytes = r.take(rest_len)?;
    let rest: Rest = match rest_bytes.split_first() {
        Some((0, body)) => {
            decode_value(body).map_err(|_| ReplayError::Corrupt("a keyframe's structures"))?
        }
        _ => return Err(ReplayError::Corrupt("a keyframe's structures")),
    };
    let count = r.diff()?;
    let mut lens = [0usize; COLUMNS];
    for l in &mut lens {
        *l = r.len()?;
    }
    let mut cols: Vec<Reader<'_>> = Vec::with_capacity(COLUMNS);
    for l in lens {
        cols.push(Reader::new(r.take(l)?));
    }
    if !r.done() {
        return Err(ReplayError::Corrupt("bytes after a keyframe"));
    }
    // Every unit takes at least one byte of the id column.
    let count = usize::try_from(count)
        .ok()
        .filter(|&n| n <= lens[Col::Id as usize])
        .ok_or(ReplayError::Corrupt("a keyframe's unit count"))?;
    let mut units = Vec::with_capacity(count);
    let mut refs = References::new(base);
    let dt = base.map_or(0, |b| rest.tick.wrapping_sub(b.tick));
    let mut last_id: i64 = 0;
    for _ in 0..count {
        let c = &mut cols;
        let idv = c[Col::Id as usize].value(last_id)?;
        if idv <= last_id && !units.is_empty() {
            return Err(ReplayError::Corrupt("unit ids out of order"));
        }
        last_id = idv;
        let id = idv as UnitId;
        let (r, same) = refs.of(id);
        let e = Expect { r, same, dt };
        let owner = c[Col::Owner as usize].value(r.owner as i64)? as u64;
        let kind = narrow(c[Col::Kind as usize].value(i64::from(r.kind))?)?;
        let speed = kinds.get(kind).speed_cm_per_tick;
        let tag = c[Col::OrderTag as usize].diff()?;
        let order = match tag {
            0 => Order::Idle,
            1..=3 => {
                let (ra, rb) = order_reference(&r, tag as u64);
                let a = c[Col::OrderA as usize].value(ra)?;
                match tag {
                    3 => Order::Attack(a as UnitId),
                    _ => {
                        let p = WorldPos::new(a, c[Col::OrderB as usize].value(rb)?);
                        if tag == 1 {
                            Order::Move(p)
                        } else {
                            Order::AttackMove(p)
                        }
                    }
                }
            }
            _ => return Err(ReplayError::Corrupt("an unknown order")),
        };
        let leg = match c[Col::LegTag as usize].diff()? {
            0 => None,
            1 => {
                let to = e.leg_to(order);
                let to = WorldPos::new(
                    c[Col::LegToX as usize].value(to.x)?,
                    c[Col::LegToY as usize].value(to.y)?,
                );
                let ticks = c[Col::LegTicks as usize].value(e.leg_ticks(to) as i64)? as u64;
                let from = e.leg_from(to, ticks);
                let from = WorldPos::new(
                    c[Col::LegFromX as usize].value(from.x)?,
                    c[Col::LegFromY as usize].value(from.y)?,
                );
                let length = c[Col::LegLength as usize].value(distance_cm(from, to) as i64)? as u64;
                let v = velocity_towards(from, to, speed);
                let velocity = Velocity {
                    x: narrow(c[Col::LegVelX as usize].value(i64::from(v.x))?)?,
                    y: narrow(c[Col::LegVelY as usize].value(i64::from(v.y))?)?,
                };
                Some(Leg {
                    from,
                    to,
                    ticks,
                    length,
                    velocity,
                })
            }
            _ => return Err(ReplayError::Corrupt("an unknown leg tag")),
        };
        let p = e.position(leg, speed);
        let position = WorldPos::new(
            c[Col::X as usize].value(p.x)?,
            c[Col::Y as usize].value(p.y)?,
        );
        let v = e.velocity(leg);
        let velocity = Velocity {
            x: narrow(c[Col::VelX as usize].value(i64::from(v.x))?)?,
            y: narrow(c[Col::VelY as usize].value(i64::from(v.y))?)?,
        };
        let health = narrow(c[Col::Health as usize].value(i64::from(r.health))?)?;
        let code = c[Col::Target as usize].diff()? as u64;
        let target = e.target(code, refs.prev.target)?;
        let cooldown = narrow(c[Col::Cooldown as usize].value(i64::from(r.cooldown))?)?;
        let state = UnitState(narrow(c[Col::State as usize].value(i64::from(r.state.0))?)?);
        let u = SimUnit {
            owner,
            kind,
            position,
            health,
            order,
            target,
            cooldown,
            state,
            velocity,
            leg,
        };
        refs.prev = u;
        units.push((id, u));
    }
    if cols.iter().any(|c| !c.done()) {
        return Err(ReplayError::Corrupt("bytes left in a keyframe's columns"));
    }
    Ok(WorldState {
        tick: rest.tick,
        next_id: rest.next_id,
        id_end: rest.id_end,
        units,
        resources: rest.resources,
        bases: rest.bases,
        last_battle: rest.last_battle,
    })
}
