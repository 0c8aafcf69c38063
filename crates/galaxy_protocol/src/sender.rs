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
//!
//! With a [`ByteBudget`] ([`DeltaSender::write_updates_within`]) only what
//! fits goes, chosen by a [`PriorityAccumulator`]: removals first, then by
//! priority accumulated while waiting (the caller's nearness weight times
//! how far the client's picture of the unit is off, more for units the
//! client does not have yet). Units left out keep their priority and grow
//! it every tick, so nothing starves; they wait in the accumulator, so a
//! long queue is not looked at again every tick (`budgeted.rs`).
//!
//! Units of a packet lost while the client acked nothing at all are not
//! resent into the silence: they wait for its next ack, and an empty probe
//! asks for one every `resend_after_ticks`. A client that never acks costs
//! what it is sent once, not a resend of everything every few ticks.

use std::collections::VecDeque;

use crate::ack::{RECEIVE_WINDOW, UpdateAck, sequence_greater};
use crate::bits::BitWriter;
use crate::budget::ByteBudget;
use crate::codec::{
    MAX_UNIT_UPDATE_BYTES, encode_packed_unit_update, unit_update_header_len, unit_update_overhead,
};
use crate::delta::{DeltaBody, UnitDelta, write_delta};
use crate::hash::IdHashMap;
use crate::message::UnitUpdate;
use crate::priority::PriorityAccumulator;
use crate::sector::SectorId;
use crate::snapshot::UnitSnapshot;
use crate::unit::{QuantizedUnit, UnitId};
use crate::verify::{StateDigest, Verification, digest_bucket, digest_units};

mod budgeted;

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
    /// On a tick with nothing to send while the newest packet is not yet
    /// acknowledged, send an empty one: its ack reveals at once whether the
    /// one before was lost. With dead reckoning a lone update (a unit that
    /// turned) is often followed by silence, and would otherwise wait
    /// `resend_after_ticks` to be found lost.
    pub probe_unacked: bool,
    /// Most units a receiver holds; an update that would add more is
    /// refused (a server sends a client only what is in its view).
    pub max_units: usize,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: MAX_UNIT_UPDATE_BYTES,
            history_cap: 32,
            baseline_window_ticks: 256,
            resend_after_ticks: 8,
            deltas: true,
            probe_unacked: true,
            max_units: 1 << 18,
        }
    }
}

/// Counters of what a sender did, for `NetworkStats` and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// `UnitUpdate`s produced.
    pub messages: u64,
    /// Bytes of those messages (tag, header and packed records).
    pub bytes: u64,
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
    /// Unit sends a byte budget put off to a later tick.
    pub deferred: u64,
    /// Empty updates sent to learn sooner whether the one before arrived.
    pub probes: u64,
}

/// Smallest caller weight: far units still accumulate and get their turn.
const MIN_WEIGHT: f32 = 0.01;
/// Empty probes sent after a packet with units, at most (one lost probe
/// must not leave the packet to the timeout; more would be waste).
const MAX_PROBES: u8 = 2;

/// One unit as seen by one client's sender.
#[derive(Clone, Debug)]
struct Tracked<S> {
    /// What the client should have: `None` = remove it.
    current: Option<S>,
    /// Newest acknowledged `(tick, state)`.
    acked: Option<(u64, Option<S>)>,
    /// Sent but not yet superseded by an ack, oldest first.
    in_flight: VecDeque<(u64, Option<S>)>,
    /// A packet carrying it was lost: send even if unchanged.
    resend: bool,
    /// Already in the due list.
    queued: bool,
    /// The caller's priority weight (nearness); see [`DeltaSender::set_unit_weighted`].
    weight: f32,
    /// `acked` may no longer be in the client's history (or was found
    /// wrong): send whole until the next ack.
    baseline_dropped: bool,
}

impl<S: UnitSnapshot> Tracked<S> {
    fn settled(&self) -> bool {
        !self.baseline_dropped
            && self.in_flight.is_empty()
            && self.acked.map(|a| a.1) == Some(self.current)
    }

    /// What the client has, or will have once what is in flight arrives.
    fn believed(&self) -> Option<S> {
        self.in_flight
            .back()
            .map(|e| e.1)
            .or(self.acked.map(|a| a.1))
            .flatten()
    }
}

#[derive(Clone, Debug)]
struct SentPacket {
    seq: u16,
    tick: u64,
    units: Vec<UnitId>,
    /// A later ack skipped it: its units were queued again, but a late ack
    /// may still arrive and advance the baselines.
    skipped: bool,
}

/// A unit that is due this tick, with the delta it would be sent as.
#[derive(Clone, Copy, Debug)]
struct Candidate<S: UnitSnapshot> {
    sector: SectorId,
    id: UnitId,
    delta: UnitDelta<S>,
    /// Sending it drops the baseline (too many states in flight).
    drops_baseline: bool,
    /// It is sent only because its last packet was lost.
    resend: bool,
}

/// Where packed messages go: decoded (tests, reports) or as wire bytes.
enum Sink<'a, S: UnitSnapshot> {
    Decoded(&'a mut Vec<UnitUpdate<S>>),
    Encoded(&'a mut Vec<Vec<u8>>),
}

/// Delta-compresses one client's view of the world; see the module docs.
/// A clone continues the same stream (see [`crate::shared`]).
#[derive(Clone, Debug)]
pub struct DeltaSender<S: UnitSnapshot = QuantizedUnit> {
    config: DeltaConfig,
    units: IdHashMap<UnitId, Tracked<S>>,
    due: Vec<UnitId>,
    sent: VecDeque<SentPacket>,
    next_seq: u16,
    last_tick: Option<u64>,
    /// Tick of the newest update sent before the newest ack arrived.
    last_ack_tick: Option<u64>,
    /// The newest `latest` of any ack received.
    newest_ack: Option<u16>,
    /// Units of packets lost while the client acked nothing: resent once
    /// it acks again (see [`DeltaSender::receive_ack`]).
    parked: Vec<UnitId>,
    pool: Vec<Vec<UnitId>>,
    writer: BitWriter,
    scratch: BitWriter,
    batch: Vec<Candidate<S>>,
    ranked: Vec<UnitId>,
    priority: PriorityAccumulator<UnitId>,
    /// Sector of the last message (where a probe goes).
    last_sector: SectorId,
    /// Probes sent since the last message with units.
    probes_since_data: u8,
    stats: SenderStats,
}

impl<S: UnitSnapshot> Default for DeltaSender<S> {
    fn default() -> Self {
        Self::new(DeltaConfig::default())
    }
}

impl<S: UnitSnapshot> DeltaSender<S> {
    /// A sender for a client that has nothing yet.
    pub fn new(config: DeltaConfig) -> Self {
        Self {
            config,
            units: IdHashMap::default(),
            due: Vec::new(),
            sent: VecDeque::new(),
            next_seq: 0,
            last_tick: None,
            last_ack_tick: None,
            newest_ack: None,
            parked: Vec::new(),
            pool: Vec::new(),
            writer: BitWriter::new(),
            scratch: BitWriter::new(),
            batch: Vec::new(),
            ranked: Vec::new(),
            priority: PriorityAccumulator::new(),
            last_sector: SectorId::new(0, 0, 0),
            probes_since_data: 0,
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

    fn enqueue(due: &mut Vec<UnitId>, id: UnitId, t: &mut Tracked<S>) {
        if !t.queued {
            t.queued = true;
            due.push(id);
        }
    }

    /// Declares that the client should see unit `id` in state `unit`
    /// (call for new and changed units; unchanged calls cost a comparison).
    pub fn set_unit(&mut self, id: UnitId, unit: S) {
        self.set(id, unit, None);
    }

    /// Like [`DeltaSender::set_unit`], with the unit's priority weight for
    /// a byte budget (e.g. 1.0 near the client's view, less farther out;
    /// at least 0.01). The weight is kept until set again.
    pub fn set_unit_weighted(&mut self, id: UnitId, unit: S, weight: f32) {
        self.set(id, unit, Some(weight));
    }

    fn set(&mut self, id: UnitId, unit: S, weight: Option<f32>) {
        let t = self.units.entry(id).or_insert_with(|| Tracked {
            current: None,
            acked: None,
            in_flight: VecDeque::new(),
            resend: false,
            queued: false,
            weight: 1.0,
            baseline_dropped: false,
        });
        if let Some(w) = weight {
            t.weight = if w.is_finite() {
                w.max(MIN_WEIGHT)
            } else {
                1.0
            };
        }
        if t.current != Some(unit) {
            t.current = Some(unit);
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
    pub fn unit(&self, id: UnitId) -> Option<&S> {
        self.units.get(&id).and_then(|t| t.current.as_ref())
    }

    /// The newest state the client acknowledged for unit `id`, with its tick
    /// (`None` state: an acknowledged removal). For diagnostics and load tests.
    pub fn acked(&self, id: UnitId) -> Option<(u64, Option<&S>)> {
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
    pub fn visible_units(&self) -> impl Iterator<Item = (UnitId, &S)> {
        self.units
            .iter()
            .filter_map(|(&id, t)| t.current.as_ref().map(|u| (id, u)))
    }

    /// True when the client has acknowledged the current state of every unit.
    pub fn is_settled(&self) -> bool {
        self.units.values().all(Tracked::<S>::settled)
    }

    /// Units whose current state the client has not acknowledged yet.
    pub fn unsettled_units(&self) -> usize {
        self.units.values().filter(|t| !t.settled()).count()
    }

    /// Packets sent and not yet acknowledged or given up as lost: nonzero
    /// while the client owes an ack (a server disconnects a client that
    /// owes one for too long; it would otherwise keep every unit it sent).
    pub fn packets_in_flight(&self) -> usize {
        self.sent.len()
    }

    /// Units waiting to be sent (changed, lost, or put off by a budget;
    /// a unit lost while the client acked nothing may count twice).
    pub fn pending_units(&self) -> usize {
        self.due.len() + self.priority.len() + self.parked.len()
    }

    /// Takes an acknowledgement from the client: acked packets become
    /// baselines; unacked packets the ack skips over are probably lost, and
    /// their units are sent again next tick (the record stays until it
    /// expires, in case the packet was only reordered).
    ///
    /// An ack also shows the client is there again: units of packets lost
    /// while it acked nothing were held back (resending into silence only
    /// costs the server; a client that never acks would keep every unit it
    /// was ever sent cycling) and are queued now.
    pub fn receive_ack(&mut self, ack: &UpdateAck) {
        self.last_ack_tick = self.last_tick;
        if self
            .newest_ack
            .is_none_or(|n| sequence_greater(ack.latest, n))
        {
            self.newest_ack = Some(ack.latest);
        }
        for id in std::mem::take(&mut self.parked) {
            if let Some(t) = self.units.get_mut(&id) {
                Self::enqueue(&mut self.due, id, t);
            }
        }
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

    /// A receiver with nothing joins this stream (see [`crate::shared`]):
    /// packets in flight are forgotten, every unit the client should see
    /// is sent again whole and every removal again, and baselines start
    /// over from the next acknowledgements. Unlike
    /// [`DeltaSender::reset_client`], the receivers already there may
    /// hold anything sent so far.
    pub fn restart_receiver(&mut self) {
        for mut rec in self.sent.drain(..) {
            rec.units.clear();
            self.pool.push(rec.units);
        }
        self.parked.clear();
        self.probes_since_data = 0;
        for (&id, t) in self.units.iter_mut() {
            // Whole until a packet sent from now on is acked by all; a
            // removal still goes (the old receivers may hold the unit).
            t.in_flight.clear();
            t.baseline_dropped = true;
            t.resend = true;
            Self::enqueue(&mut self.due, id, t);
        }
    }

    /// Checks a client's [`StateDigest`] (see [`crate::verify`]): applies
    /// its ack, then compares it with the digest of the states the client
    /// acknowledged. Every unit of a bucket that differs is sent whole
    /// again, so a corrupted replica heals within a round trip.
    pub fn verify(&mut self, digest: &StateDigest) -> Verification {
        self.receive_ack(&digest.ack);
        if self.newest_ack != Some(digest.ack.latest) {
            return Verification::Stale;
        }
        let held = self.units.iter().filter_map(|(&id, t)| match &t.acked {
            Some((_, Some(s))) => Some((id, s)),
            _ => None,
        });
        let (units, buckets) = digest_units(held, digest.tick);
        let differing = digest.differing_buckets(&buckets);
        if differing == 0 && units == digest.units {
            return Verification::Match;
        }
        let mut resent = 0;
        for (&id, t) in self.units.iter_mut() {
            if differing & (1 << digest_bucket(id)) != 0 && t.current.is_some() {
                t.baseline_dropped = true;
                t.resend = true;
                Self::enqueue(&mut self.due, id, t);
                resent += 1;
            }
        }
        Verification::Mismatch {
            buckets: differing,
            resent,
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
            t.baseline_dropped = false;
            t.in_flight.drain(..=pos);
            if t.current.is_none() && t.settled() && !t.queued {
                self.units.remove(&id);
                self.priority.remove(&id);
            }
        }
        rec.units.clear();
        self.pool.push(rec.units);
    }

    fn on_lost(&mut self, mut rec: SentPacket) {
        if !rec.skipped {
            self.stats.lost_packets += 1;
            // No ack at all since it was sent: the client is silent, not
            // the packet lost; hold its units until the client acks again.
            let silent = self.last_ack_tick.is_none_or(|t| t < rec.tick);
            for &id in &rec.units {
                if let Some(t) = self.units.get_mut(&id) {
                    t.resend = true;
                    if silent {
                        self.parked.push(id);
                    } else {
                        Self::enqueue(&mut self.due, id, t);
                    }
                }
            }
            // A unit lost again is held once (bounds the list by the units).
            if self.parked.len() > 2 * self.units.len() + 64 {
                self.parked.sort_unstable();
                self.parked.dedup();
            }
        }
        rec.units.clear();
        self.pool.push(rec.units);
    }

    /// Encodes this tick's updates (call once per tick, `tick` increasing;
    /// a repeated or older tick produces nothing). Every due unit goes.
    /// Returns the messages to send on an unreliable channel.
    pub fn write_updates(&mut self, tick: u64) -> Vec<UnitUpdate<S>> {
        let mut out = Vec::new();
        self.produce(tick, None, &mut Sink::Decoded(&mut out));
        out
    }

    /// Like [`DeltaSender::write_updates`], but sends only what fits in
    /// `budget` (refilled by the caller for this tick), in priority order,
    /// and spends what it sent. The rest waits, gaining priority. The bytes
    /// may exceed what was available by at most one message.
    pub fn write_updates_within(
        &mut self,
        tick: u64,
        budget: &mut ByteBudget,
    ) -> Vec<UnitUpdate<S>> {
        let mut out = Vec::new();
        self.produce(tick, Some(budget), &mut Sink::Decoded(&mut out));
        out
    }

    /// Like [`DeltaSender::write_updates_within`], appending each message
    /// already encoded (what [`crate::encode_server`] would give for it) to `out`:
    /// the records are packed once, to measure them, and those bits are sent.
    pub fn write_messages_within(
        &mut self,
        tick: u64,
        budget: &mut ByteBudget,
        out: &mut Vec<Vec<u8>>,
    ) {
        self.produce(tick, Some(budget), &mut Sink::Encoded(out));
    }

    fn produce(&mut self, tick: u64, budget: Option<&mut ByteBudget>, sink: &mut Sink<'_, S>) {
        if self.last_tick.is_some_and(|t| t >= tick) {
            return;
        }
        self.last_tick = Some(tick);
        self.expire_unacked(tick);
        let messages_before = self.stats.messages;
        let mut limit = match budget {
            Some(b) if !b.is_unlimited() => Some(b),
            _ => None,
        };
        match limit.as_deref_mut() {
            None => {
                // Units a budget put off earlier go now with the rest.
                let waiting = std::mem::take(&mut self.priority);
                for id in waiting.keys() {
                    if let Some(t) = self.units.get_mut(&id) {
                        Self::enqueue(&mut self.due, id, t);
                    }
                }
                self.collect_due(tick);
                let mut batch = std::mem::take(&mut self.batch);
                batch.sort_unstable_by_key(|c| (c.sector, c.id));
                let used = self.pack(tick, &batch, usize::MAX, sink);
                debug_assert_eq!(used, batch.len());
                batch.clear();
                self.batch = batch;
            }
            Some(budget) => {
                let available = budget.available();
                let spent = self.produce_within(tick, available, sink);
                budget.spend(spent);
            }
        }
        if self.stats.messages != messages_before {
            self.probes_since_data = 0;
            return;
        }
        // The newest packet with units in it is not acknowledged yet.
        let unacked = self
            .sent
            .iter()
            .rev()
            .find(|p| !p.units.is_empty())
            .is_some_and(|p| !p.skipped && p.tick < tick);
        let affordable = limit.as_ref().is_none_or(|b| b.available() > 0);
        let probe_lost =
            self.config.probe_unacked && unacked && self.probes_since_data < MAX_PROBES;
        // Units wait for an ack (see `parked`) and nothing in flight would
        // bring one: ask for it, once per `resend_after_ticks`.
        let quiet = self
            .sent
            .back()
            .is_none_or(|p| p.tick.saturating_add(self.config.resend_after_ticks) <= tick);
        let probe_parked = !self.parked.is_empty() && quiet;
        if (probe_lost || probe_parked) && affordable {
            self.probes_since_data += 1;
            let sector = self.last_sector;
            let seq = self.next_seq;
            self.writer.clear();
            let bytes = self.finish_message(sector, seq, tick, &[], sink);
            self.stats.probes += 1;
            if let Some(b) = limit {
                b.spend(bytes);
            }
        }
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

    /// Turns every due unit into a candidate (without committing anything).
    fn collect_due(&mut self, tick: u64) {
        self.batch.clear();
        for id in std::mem::take(&mut self.due) {
            if let Some(t) = self.units.get_mut(&id) {
                t.queued = false;
            }
            if let Some(c) = self.candidate(id, tick) {
                self.batch.push(c);
            }
        }
    }

    /// What unit `id` would be sent as at `tick`, or `None` when nothing
    /// is to be sent (the client has it, or it is in flight unchanged);
    /// forgets a removed unit the client never had.
    fn candidate(&mut self, id: UnitId, tick: u64) -> Option<Candidate<S>> {
        let cap = self.config.history_cap.max(2);
        let Some(t) = self.units.get_mut(&id) else {
            self.priority.remove(&id);
            return None;
        };
        if t.settled() || (t.acked.is_none() && t.in_flight.is_empty() && t.current.is_none()) {
            if t.current.is_none() {
                self.units.remove(&id);
            }
            self.priority.remove(&id);
            return None;
        }
        let unchanged = t.in_flight.back().map(|e| e.1).or(t.acked.map(|a| a.1)) == Some(t.current);
        if unchanged && !t.resend {
            self.priority.remove(&id);
            return None; // in flight already; wait for its ack or loss
        }
        // The client may have pushed the baseline out of its history:
        // such a send forgets it, so only whole states go until a new ack.
        let drops_baseline = t.in_flight.len() + 1 >= cap;
        let acked = if drops_baseline || t.baseline_dropped {
            None
        } else {
            t.acked
        };
        let body = match (t.current, acked) {
            (None, _) => DeltaBody::Removed,
            (Some(cur), Some((bt, Some(base))))
                if self.config.deltas
                    && (tick.saturating_sub(bt) <= self.config.baseline_window_ticks
                        || t.in_flight.is_empty()) =>
            {
                S::diff(&base, &cur, tick).map_or(DeltaBody::Full(cur), |changes| {
                    DeltaBody::Changes {
                        baseline_tick: bt,
                        changes,
                    }
                })
            }
            (Some(cur), _) => DeltaBody::Full(cur),
        };
        // Group by where the client will draw it now (a removal: where it was).
        let sector = t
            .current
            .or(t.believed())
            .map_or(SectorId::new(0, 0, 0), |u| {
                SectorId::at(u.position_at(tick))
            });
        Some(Candidate {
            sector,
            id,
            delta: UnitDelta { unit_id: id, body },
            drops_baseline,
            resend: unchanged,
        })
    }

    /// Commits a candidate that is being sent.
    fn commit(&mut self, c: &Candidate<S>) {
        if let Some(t) = self.units.get_mut(&c.id) {
            if c.resend {
                self.stats.resends += 1;
            }
            t.resend = false;
            if c.drops_baseline {
                t.in_flight.pop_front();
                t.baseline_dropped = true;
            }
        }
    }

    /// Packs `batch` (sorted by sector, then id) into messages of one
    /// sector each, stopping before the total would pass `limit` bytes;
    /// returns how many candidates were packed.
    fn pack(
        &mut self,
        tick: u64,
        batch: &[Candidate<S>],
        limit: usize,
        sink: &mut Sink<'_, S>,
    ) -> usize {
        let mut i = 0;
        let mut total = 0usize;
        while i < batch.len() {
            let sector = batch[i].sector;
            let seq = self.next_seq;
            let overhead = unit_update_overhead(sector, seq, tick);
            let room = self.config.max_message_bytes.saturating_sub(overhead);
            self.writer.clear();
            let start = i;
            let mut prev = None;
            while let Some(c) = batch.get(i) {
                if c.sector != sector {
                    break;
                }
                let mark = self.writer.bit_len();
                if write_delta(&mut self.writer, prev, tick, &c.delta).is_err() {
                    // Unreachable for a sorted, de-duplicated batch; skip rather than corrupt.
                    self.writer.truncate(mark);
                    i += 1;
                    continue;
                }
                let first = i == start;
                let over_message = self.writer.byte_len() > room && !first;
                let over_limit = total + overhead + self.writer.byte_len() > limit;
                if over_message || over_limit {
                    self.writer.truncate(mark);
                    break;
                }
                prev = Some(c.id);
                i += 1;
            }
            if i == start {
                break; // the limit is reached
            }
            total += self.finish_message(sector, seq, tick, &batch[start..i], sink);
        }
        i
    }

    fn finish_message(
        &mut self,
        sector: SectorId,
        seq: u16,
        tick: u64,
        records: &[Candidate<S>],
        sink: &mut Sink<'_, S>,
    ) -> usize {
        let mut ids = self.pool.pop().unwrap_or_default();
        for c in records {
            self.commit(c);
            let Some(t) = self.units.get_mut(&c.id) else {
                continue;
            };
            t.in_flight.push_back((tick, t.current));
            ids.push(c.id);
            match c.delta.body {
                DeltaBody::Full(_) => self.stats.full_units += 1,
                DeltaBody::Changes { .. } => self.stats.delta_units += 1,
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
        self.last_sector = sector;
        let len = match sink {
            Sink::Decoded(out) => {
                out.push(UnitUpdate {
                    sector_id: sector,
                    sequence: seq,
                    timestamp: tick,
                    updates: records.iter().map(|c| c.delta).collect(),
                });
                unit_update_header_len(sector, seq, tick, records.len()) + self.writer.byte_len()
            }
            Sink::Encoded(out) => {
                let mut bytes = Vec::with_capacity(self.writer.byte_len() + 24);
                let encoded = encode_packed_unit_update(
                    sector,
                    seq,
                    tick,
                    records.len(),
                    self.writer.as_bytes(),
                    &mut bytes,
                );
                debug_assert!(encoded.is_ok(), "one sector's records always fit a message");
                let len = bytes.len();
                out.push(bytes);
                len
            }
        };
        self.stats.bytes += len as u64;
        len
    }

    /// Forgets everything the client had (e.g. after it reconnected): every
    /// visible unit will be sent whole again.
    pub fn reset_client(&mut self) {
        self.sent.clear();
        self.parked.clear();
        self.due.clear();
        self.priority = PriorityAccumulator::new();
        self.units.retain(|_, t| t.current.is_some());
        for (&id, t) in self.units.iter_mut() {
            t.acked = None;
            t.baseline_dropped = false;
            t.in_flight.clear();
            t.resend = false;
            t.queued = true;
            self.due.push(id);
        }
    }
}
