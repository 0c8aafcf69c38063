//! The per-client sending half of acked-baseline delta compression.
//!
//! For each unit in a client's interest the sender remembers the newest
//! state that client acknowledged (the baseline) and the states still in
//! flight. Each tick it encodes every unit whose state differs from what was
//! last sent, or whose last packet was lost, as a [`UnitDelta`] against its
//! baseline (or whole when it has none), groups them by sector and packs
//! them into `UnitUpdate`s of at most `max_message_bytes`. A lost packet is
//! never resent as such: the next delta is taken against the older baseline
//! and heals the receiver.

use std::collections::{HashMap, VecDeque};

use crate::ack::{RECEIVE_WINDOW, UpdateAck, sequence_greater};
use crate::bits::BitWriter;
use crate::codec::{MAX_UNIT_UPDATE_BYTES, unit_update_overhead};
use crate::delta::{DeltaBody, FieldChanges, UnitDelta, write_delta};
use crate::message::UnitUpdate;
use crate::sector::SectorId;
use crate::unit::{QuantizedUnit, UnitId};

/// Tuning shared by a [`DeltaSender`] and its [`crate::DeltaReceiver`]; both
/// sides must use the same `history_cap` and `baseline_window_ticks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaConfig {
    /// Largest encoded `UnitUpdate` in bytes.
    pub max_message_bytes: usize,
    /// States the receiver keeps per unit; the sender never uses a baseline
    /// that could have been pushed out of that history.
    pub history_cap: usize,
    /// Oldest baseline, in ticks, a delta may refer to (older: send whole).
    pub baseline_window_ticks: u64,
    /// Ticks without any ack after which a packet counts as lost.
    pub resend_after_ticks: u64,
    /// Encode changes as deltas against acked baselines; off sends every
    /// changed unit whole (the design's `compression_enabled`, for comparison).
    pub deltas: bool,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: MAX_UNIT_UPDATE_BYTES,
            history_cap: 32,
            baseline_window_ticks: 256,
            resend_after_ticks: 8,
            deltas: true,
        }
    }
}

/// Counters of what a sender did, for `NetworkStats` and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// `UnitUpdate`s produced.
    pub messages: u64,
    /// Units sent whole.
    pub full_units: u64,
    /// Units sent as field deltas.
    pub delta_units: u64,
    /// Removals sent.
    pub removals: u64,
    /// Units sent again, unchanged, because their packet was lost.
    pub resends: u64,
    /// Packets acknowledged.
    pub acked_packets: u64,
    /// Packets judged lost (no ack in time, or skipped by a later ack).
    pub lost_packets: u64,
}

/// One unit as seen by one client's sender.
#[derive(Clone, Debug)]
struct Tracked {
    /// What the client should have: `None` = remove it.
    current: Option<QuantizedUnit>,
    /// Sector of the last known position (removals are grouped there).
    sector: SectorId,
    /// Newest acknowledged `(tick, state)`.
    acked: Option<(u64, Option<QuantizedUnit>)>,
    /// Sent but not yet superseded by an ack, oldest first.
    in_flight: VecDeque<(u64, Option<QuantizedUnit>)>,
    /// A packet carrying it was lost: send even if unchanged.
    resend: bool,
    /// Already in the due list.
    queued: bool,
}

impl Tracked {
    fn settled(&self) -> bool {
        self.in_flight.is_empty() && self.acked.map(|a| a.1) == Some(self.current)
    }
}

#[derive(Debug)]
struct SentPacket {
    seq: u16,
    tick: u64,
    units: Vec<UnitId>,
    /// A later ack skipped it: its units were queued again, but a late ack
    /// may still arrive and advance the baselines.
    skipped: bool,
}

/// Delta-compresses one client's view of the world; see the module docs.
#[derive(Debug)]
pub struct DeltaSender {
    config: DeltaConfig,
    units: HashMap<UnitId, Tracked>,
    due: Vec<UnitId>,
    sent: VecDeque<SentPacket>,
    next_seq: u16,
    last_tick: Option<u64>,
    pool: Vec<Vec<UnitId>>,
    writer: BitWriter,
    batch: Vec<(SectorId, UnitId, UnitDelta)>,
    stats: SenderStats,
}

impl Default for DeltaSender {
    fn default() -> Self {
        Self::new(DeltaConfig::default())
    }
}

impl DeltaSender {
    /// A sender for a client that has nothing yet.
    pub fn new(config: DeltaConfig) -> Self {
        Self {
            config,
            units: HashMap::new(),
            due: Vec::new(),
            sent: VecDeque::new(),
            next_seq: 0,
            last_tick: None,
            pool: Vec::new(),
            writer: BitWriter::new(),
            batch: Vec::new(),
            stats: SenderStats::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DeltaConfig {
        &self.config
    }

    /// What the sender has done so far.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    fn enqueue(due: &mut Vec<UnitId>, id: UnitId, t: &mut Tracked) {
        if !t.queued {
            t.queued = true;
            due.push(id);
        }
    }

    /// Declares that the client should see unit `id` in state `unit`
    /// (call for new and changed units; unchanged calls cost a comparison).
    pub fn set_unit(&mut self, id: UnitId, unit: QuantizedUnit) {
        let t = self.units.entry(id).or_insert_with(|| Tracked {
            current: None,
            sector: SectorId::at(unit.position()),
            acked: None,
            in_flight: VecDeque::new(),
            resend: false,
            queued: false,
        });
        if t.current != Some(unit) {
            t.current = Some(unit);
            t.sector = SectorId::at(unit.position());
            Self::enqueue(&mut self.due, id, t);
        }
    }

    /// Declares that unit `id` left the client's interest or died.
    pub fn remove_unit(&mut self, id: UnitId) {
        if let Some(t) = self.units.get_mut(&id).filter(|t| t.current.is_some()) {
            t.current = None;
            Self::enqueue(&mut self.due, id, t);
        }
    }

    /// The state the client should converge to, if the unit is in its view.
    pub fn unit(&self, id: UnitId) -> Option<&QuantizedUnit> {
        self.units.get(&id).and_then(|t| t.current.as_ref())
    }

    /// The newest state the client acknowledged for unit `id`, with its tick
    /// (`None` state: an acknowledged removal). For diagnostics and load tests.
    pub fn acked(&self, id: UnitId) -> Option<(u64, Option<&QuantizedUnit>)> {
        self.units
            .get(&id)?
            .acked
            .as_ref()
            .map(|(tick, state)| (*tick, state.as_ref()))
    }

    /// Ids of every unit this sender tracks.
    pub fn tracked_units(&self) -> impl Iterator<Item = UnitId> + '_ {
        self.units.keys().copied()
    }

    /// Every unit the client should see.
    pub fn visible_units(&self) -> impl Iterator<Item = (UnitId, &QuantizedUnit)> {
        self.units
            .iter()
            .filter_map(|(&id, t)| t.current.as_ref().map(|u| (id, u)))
    }

    /// True when the client has acknowledged the current state of every unit.
    pub fn is_settled(&self) -> bool {
        self.units.values().all(Tracked::settled)
    }

    /// Units whose current state the client has not acknowledged yet.
    pub fn unsettled_units(&self) -> usize {
        self.units.values().filter(|t| !t.settled()).count()
    }

    /// Takes an acknowledgement from the client: acked packets become
    /// baselines; unacked packets the ack skips over are probably lost, and
    /// their units are sent again next tick (the record stays until it
    /// expires, in case the packet was only reordered).
    pub fn receive_ack(&mut self, ack: &UpdateAck) {
        let mut i = 0;
        while i < self.sent.len() {
            let rec = &mut self.sent[i];
            if ack.acks(rec.seq) {
                let rec = self.sent.remove(i).expect("index checked");
                self.on_acked(rec);
                continue;
            }
            if !rec.skipped && ack.covers(rec.seq) && sequence_greater(ack.latest, rec.seq) {
                rec.skipped = true;
                self.stats.lost_packets += 1;
                for &id in &rec.units {
                    if let Some(t) = self.units.get_mut(&id) {
                        t.resend = true;
                        Self::enqueue(&mut self.due, id, t);
                    }
                }
            }
            i += 1;
        }
    }

    fn on_acked(&mut self, mut rec: SentPacket) {
        self.stats.acked_packets += 1;
        for &id in &rec.units {
            let Some(t) = self.units.get_mut(&id) else {
                continue;
            };
            let Some(pos) = t.in_flight.iter().position(|e| e.0 == rec.tick) else {
                continue;
            };
            t.acked = Some(t.in_flight[pos]);
            t.in_flight.drain(..=pos);
            if t.current.is_none() && t.settled() && !t.queued {
                self.units.remove(&id);
            }
        }
        rec.units.clear();
        self.pool.push(rec.units);
    }

    fn on_lost(&mut self, mut rec: SentPacket) {
        if !rec.skipped {
            self.stats.lost_packets += 1;
            for &id in &rec.units {
                if let Some(t) = self.units.get_mut(&id) {
                    t.resend = true;
                    Self::enqueue(&mut self.due, id, t);
                }
            }
        }
        rec.units.clear();
        self.pool.push(rec.units);
    }

    /// Encodes this tick's updates (call once per tick, `tick` increasing;
    /// a repeated or older tick produces nothing). Returns the messages to
    /// send on an unreliable channel.
    pub fn write_updates(&mut self, tick: u64) -> Vec<UnitUpdate> {
        let mut out = Vec::new();
        if self.last_tick.is_some_and(|t| t >= tick) {
            return out;
        }
        self.last_tick = Some(tick);
        self.expire_unacked(tick);
        self.collect_due(tick);
        self.pack(tick, &mut out);
        out
    }

    /// Packets with no ack for too long, or too many outstanding, count as lost.
    fn expire_unacked(&mut self, tick: u64) {
        while let Some(front) = self.sent.front() {
            let too_old = front.tick.saturating_add(self.config.resend_after_ticks) <= tick;
            let too_many = self.sent.len() >= usize::from(RECEIVE_WINDOW);
            if !(too_old || too_many) {
                break;
            }
            let rec = self.sent.pop_front().expect("front exists");
            self.on_lost(rec);
        }
    }

    fn collect_due(&mut self, tick: u64) {
        let cap = self.config.history_cap.max(2);
        for id in std::mem::take(&mut self.due) {
            let Some(t) = self.units.get_mut(&id) else {
                continue;
            };
            t.queued = false;
            if t.settled() || (t.acked.is_none() && t.in_flight.is_empty() && t.current.is_none()) {
                if t.current.is_none() {
                    self.units.remove(&id);
                }
                continue;
            }
            let unchanged =
                t.in_flight.back().map(|e| e.1).or(t.acked.map(|a| a.1)) == Some(t.current);
            if unchanged && !t.resend {
                continue; // in flight already; wait for its ack or loss
            }
            if unchanged {
                self.stats.resends += 1;
            }
            t.resend = false;
            if t.in_flight.len() + 1 >= cap {
                // The client may have pushed the baseline out of its history:
                // forget it, so only whole states go until a new ack arrives.
                t.in_flight.pop_front();
                t.acked = None;
            }
            let body = match (t.current, t.acked) {
                (None, _) => DeltaBody::Removed,
                (Some(cur), Some((bt, Some(base))))
                    if self.config.deltas
                        && (tick - bt <= self.config.baseline_window_ticks
                            || t.in_flight.is_empty()) =>
                {
                    FieldChanges::between(bt, &base, &cur)
                        .map_or(DeltaBody::Full(cur), DeltaBody::Changes)
                }
                (Some(cur), _) => DeltaBody::Full(cur),
            };
            self.batch
                .push((t.sector, id, UnitDelta { unit_id: id, body }));
        }
        self.batch.sort_unstable_by_key(|&(s, id, _)| (s, id));
    }

    fn pack(&mut self, tick: u64, out: &mut Vec<UnitUpdate>) {
        let batch = std::mem::take(&mut self.batch);
        let mut i = 0;
        while i < batch.len() {
            let sector = batch[i].0;
            let seq = self.next_seq;
            let limit = self
                .config
                .max_message_bytes
                .saturating_sub(unit_update_overhead(sector, seq, tick));
            self.writer.clear();
            let mut updates = Vec::new();
            let mut prev = None;
            while let Some(&(s, id, delta)) = batch.get(i) {
                if s != sector {
                    break;
                }
                let mark = self.writer.bit_len();
                if write_delta(&mut self.writer, prev, tick, &delta).is_err() {
                    // Unreachable for a sorted, de-duplicated batch; skip rather than corrupt.
                    self.writer.truncate(mark);
                    i += 1;
                    continue;
                }
                if self.writer.byte_len() > limit && !updates.is_empty() {
                    self.writer.truncate(mark);
                    break;
                }
                updates.push(delta);
                prev = Some(id);
                i += 1;
            }
            self.finish_message(sector, seq, tick, updates, out);
        }
        let mut batch = batch;
        batch.clear();
        self.batch = batch;
    }

    fn finish_message(
        &mut self,
        sector: SectorId,
        seq: u16,
        tick: u64,
        updates: Vec<UnitDelta>,
        out: &mut Vec<UnitUpdate>,
    ) {
        let mut ids = self.pool.pop().unwrap_or_default();
        for d in &updates {
            let Some(t) = self.units.get_mut(&d.unit_id) else {
                continue;
            };
            t.in_flight.push_back((tick, t.current));
            ids.push(d.unit_id);
            match d.body {
                DeltaBody::Full(_) => self.stats.full_units += 1,
                DeltaBody::Changes(_) => self.stats.delta_units += 1,
                DeltaBody::Removed => self.stats.removals += 1,
            }
        }
        self.sent.push_back(SentPacket {
            seq,
            tick,
            units: ids,
            skipped: false,
        });
        self.next_seq = self.next_seq.wrapping_add(1);
        self.stats.messages += 1;
        out.push(UnitUpdate {
            sector_id: sector,
            sequence: seq,
            timestamp: tick,
            updates,
        });
    }

    /// Forgets everything the client had (e.g. after it reconnected): every
    /// visible unit will be sent whole again.
    pub fn reset_client(&mut self) {
        self.sent.clear();
        self.due.clear();
        self.units.retain(|_, t| t.current.is_some());
        for (&id, t) in self.units.iter_mut() {
            t.acked = None;
            t.in_flight.clear();
            t.resend = false;
            t.queued = true;
            self.due.push(id);
        }
    }
}
