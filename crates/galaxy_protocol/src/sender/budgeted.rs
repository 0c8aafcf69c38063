//! The budgeted half of [`DeltaSender`]: which waiting units fit this
//! tick's bytes, by accumulated priority, in work that follows what changed
//! and what fits rather than how long the queue is.

use super::{Candidate, DeltaSender, Sink};
use crate::codec::unit_update_overhead;
use crate::delta::{DeltaBody, write_delta};
use crate::priority::PriorityClass;
use crate::sector::SectorId;
use crate::snapshot::UnitSnapshot;

/// Priority weight of a unit the client does not have yet, relative to 1.0
/// for a unit whose picture on the client is right.
const NEW_UNIT_WEIGHT: f32 = 4.0;
/// Centimetres of error on the client that add 1.0 to a unit's weight.
const ERROR_CM_PER_WEIGHT: f32 = 100.0;
/// Most weight error adds (so a teleport cannot starve the rest for long).
const MAX_ERROR_WEIGHT: f32 = 10.0;
/// Candidates in a row that did not fit the budget after which a budgeted
/// tick stops looking further down the priority order (bounds the work a
/// long backlog costs; the next tick starts from the top again).
const MAX_SKIPS: usize = 64;
/// Candidates of the priority order sorted first; the walk sorts a four
/// times longer head whenever it gets past this one.
const FIRST_HEAD: usize = 256;

impl<S: UnitSnapshot> DeltaSender<S> {
    /// Chooses, packs and sends what fits `available` bytes; returns the
    /// bytes sent. Units not sent wait in the priority accumulator.
    ///
    /// The work follows what changed and what fits, not the backlog: a
    /// unit enters the accumulator when it changes (or its packet is lost)
    /// and waits there, gaining priority, without being looked at again;
    /// each tick only the head of the priority order is sorted and turned
    /// into records, and the walk down it stops after [`MAX_SKIPS`] records
    /// in a row that do not fit. When nothing waits and all that changed
    /// fits, it is sent without ranking.
    pub(super) fn produce_within(
        &mut self,
        tick: u64,
        available: usize,
        sink: &mut Sink<'_, S>,
    ) -> usize {
        self.collect_due(tick);
        let mut chosen = std::mem::take(&mut self.batch);
        // Nothing waits and all that changed fits: no ranking needed.
        let all_fit = self.priority.is_empty() && self.fits(tick, &chosen, available);
        if !all_fit {
            for c in &chosen {
                let (class, weight) = self.priority_of(tick, c);
                self.priority.push(c.id, class, weight, 0);
            }
            chosen.clear();
            if available > 0 {
                self.choose(tick, available, &mut chosen);
            }
        }
        // Pack the chosen in (sector, id) order; the rest wait.
        chosen.sort_unstable_by_key(|c| (c.sector, c.id));
        let hard_limit = available.saturating_add(self.config.max_message_bytes);
        let before = self.stats.bytes;
        let packed = self.pack(tick, &chosen, hard_limit, sink);
        if all_fit {
            for c in &chosen[packed..] {
                let (class, weight) = self.priority_of(tick, c);
                self.priority.push(c.id, class, weight, 0);
            }
        } else {
            for c in &chosen[..packed] {
                self.priority.remove(&c.id);
            }
        }
        self.stats.deferred += self.priority.len() as u64;
        chosen.clear();
        self.batch = chosen;
        (self.stats.bytes - before) as usize
    }

    /// True if all of `batch` fits `available` bytes, headers included
    /// (measured only until it is known not to).
    fn fits(&mut self, tick: u64, batch: &[Candidate<S>], available: usize) -> bool {
        let header = unit_update_overhead(SectorId::new(0, 0, 0), 0, tick);
        let mut bits = 0usize;
        for c in batch {
            bits += self.measure(tick, c);
            if bits.div_ceil(8) + header > available {
                return false;
            }
        }
        let mut sectors: Vec<SectorId> = batch.iter().map(|c| c.sector).collect();
        sectors.sort_unstable();
        sectors.dedup();
        let headers = header * (sectors.len() + batch.len() / 150 + 1);
        bits.div_ceil(8) + headers <= available
    }

    /// Bits of one record, written with a one-group id gap (wider gaps make
    /// the packed total a little larger; the budget's debt repays it).
    fn measure(&mut self, tick: u64, c: &Candidate<S>) -> usize {
        self.scratch.clear();
        let _ = write_delta(&mut self.scratch, c.id.checked_sub(1), tick, &c.delta);
        self.scratch.bit_len()
    }

    /// One round of the accumulator, then down its order: each waiting unit
    /// that still fits `available` with its sector's header goes into
    /// `chosen`, until [`MAX_SKIPS`] in a row did not (or none is left).
    fn choose(&mut self, tick: u64, available: usize, chosen: &mut Vec<Candidate<S>>) {
        let header = unit_update_overhead(SectorId::new(0, 0, 0), 0, tick);
        self.priority.accumulate();
        let mut ranked = std::mem::take(&mut self.ranked);
        let mut sectors: Vec<SectorId> = Vec::new();
        let (mut used_bits, mut skips) = (0usize, 0usize);
        // Sort a head of the order; a longer head if the walk gets past it
        // (`walked` of them looked at, of which `gone` left the accumulator).
        let (mut head, mut walked, mut gone) = (FIRST_HEAD, 0usize, 0usize);
        'walk: loop {
            let waiting = self.priority.len();
            ranked.clear();
            self.priority.ranked_prefix(head, &mut ranked);
            for &id in ranked.get(walked - gone..).unwrap_or_default() {
                walked += 1;
                let Some(c) = self.candidate(id, tick) else {
                    gone += 1; // settled or gone meanwhile: it left the accumulator
                    continue;
                };
                let bits = self.measure(tick, &c);
                let new_sector = !sectors.contains(&c.sector);
                let would = (used_bits + bits).div_ceil(8)
                    + header * (sectors.len() + usize::from(new_sector));
                // Over budget: skip it, unless nothing was taken yet and it
                // fits one message (a record larger than the whole budget
                // must not block the queue; the overshoot is one message).
                let oversized_first =
                    chosen.is_empty() && bits.div_ceil(8) + header <= self.config.max_message_bytes;
                if would > available && !oversized_first {
                    skips += 1;
                    if skips >= MAX_SKIPS {
                        break 'walk;
                    }
                    continue;
                }
                skips = 0;
                used_bits += bits;
                if new_sector {
                    sectors.push(c.sector);
                }
                chosen.push(c);
            }
            if head >= waiting {
                break;
            }
            head = head.saturating_mul(4);
        }
        self.ranked = ranked;
    }

    /// Priority class and weight of a candidate for the accumulator.
    fn priority_of(&self, tick: u64, c: &Candidate<S>) -> (PriorityClass, f32) {
        let Some(t) = self.units.get(&c.id) else {
            return (PriorityClass::Normal, 1.0);
        };
        match (&c.delta.body, t.current) {
            (DeltaBody::Removed, _) => (PriorityClass::Critical(0), 0.0),
            (DeltaBody::Full(_), _) => (PriorityClass::Normal, t.weight * NEW_UNIT_WEIGHT),
            (DeltaBody::Changes { .. }, Some(cur)) => {
                let error_cm = t.believed().map_or(0.0, |b| {
                    let (p, q) = (cur.position_at(tick), b.position_at(tick));
                    (p.x.abs_diff(q.x) + p.y.abs_diff(q.y)) as f32
                });
                let w = 1.0 + (error_cm / ERROR_CM_PER_WEIGHT).min(MAX_ERROR_WEIGHT);
                (PriorityClass::Normal, t.weight * w)
            }
            (DeltaBody::Changes { .. }, None) => (PriorityClass::Normal, t.weight),
        }
    }
}
