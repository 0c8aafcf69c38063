//! How long the server's tick frames take, whole and part by part, so a
//! server (or a load test) can show where a slow tick goes. The plugin
//! marks its own parts; a game marks its simulation's with [`mark`].

use std::collections::VecDeque;
use std::time::Instant;

use bevy::prelude::*;

use crate::replication::ServerTick;

/// The parts of a server frame [`TickTimes`] times, in frame order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickPhase {
    /// renet's receive, then decoding acks and commands (PreUpdate).
    Receive,
    /// The game applying the commands received (each fixed tick).
    Commands,
    /// The game stepping its simulation (each fixed tick).
    Step,
    /// The game writing what its simulation changed into components.
    Mirror,
    /// Snapshots of the changed units, sector index, departed units (PostUpdate).
    Tag,
    /// Budgets, events and every client's updates (PostUpdate).
    Replicate,
    /// Handing messages to renet and sending them (the rest of the frame).
    Send,
    /// Everything between those (other plugins' systems, schedule overhead).
    Other,
}

impl TickPhase {
    /// Every phase, in frame order.
    pub const ALL: [TickPhase; 8] = [
        TickPhase::Receive,
        TickPhase::Commands,
        TickPhase::Step,
        TickPhase::Mirror,
        TickPhase::Tag,
        TickPhase::Replicate,
        TickPhase::Send,
        TickPhase::Other,
    ];

    /// A short lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            TickPhase::Receive => "receive",
            TickPhase::Commands => "commands",
            TickPhase::Step => "step",
            TickPhase::Mirror => "mirror",
            TickPhase::Tag => "tag",
            TickPhase::Replicate => "replicate",
            TickPhase::Send => "send",
            TickPhase::Other => "other",
        }
    }
}

/// Milliseconds per [`TickPhase`] of one frame, in [`TickPhase::ALL`] order.
pub type PhaseMs = [f32; TickPhase::ALL.len()];

/// How long the server frames that ran a simulation tick took, newest
/// last: everything the frame did (receive, simulate, tag, replicate,
/// send), and how that splits into [`TickPhase`]s.
#[derive(Resource, Default)]
pub struct TickTimes {
    samples: VecDeque<f32>,
    phases: VecDeque<PhaseMs>,
    /// Simulation ticks each frame ran (more than one: catching up).
    ticks: VecDeque<u32>,
    frame_start: Option<Instant>,
    last_mark: Option<Instant>,
    frame_phases: PhaseMs,
    last_tick: u64,
    /// Samples ever pushed (the window keeps the newest `CAP`).
    total: u64,
}

impl TickTimes {
    /// Most samples kept (one minute at 20 Hz).
    const CAP: usize = 1200;

    fn push(&mut self, ms: f32, phases: PhaseMs, ticks: u32) {
        if self.samples.len() == Self::CAP {
            self.samples.pop_front();
            self.phases.pop_front();
            self.ticks.pop_front();
        }
        self.samples.push_back(ms);
        self.phases.push_back(phases);
        self.ticks.push_back(ticks);
        self.total += 1;
    }

    /// Tick frames measured since the start (or the last [`TickTimes::clear`]),
    /// including those the window no longer holds.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1) of recent tick times in milliseconds.
    pub fn quantile(&self, q: f32) -> f32 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let mut v: Vec<f32> = self.samples.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        v[((v.len() - 1) as f32 * q.clamp(0.0, 1.0)).round() as usize]
    }

    /// The recent tick times in milliseconds, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = f32> + '_ {
        self.samples.iter().copied()
    }

    /// The mean milliseconds per [`TickPhase`] over the newest `last` tick
    /// frames (all kept, if fewer), in [`TickPhase::ALL`] order.
    pub fn phase_means(&self, last: usize) -> PhaseMs {
        let n = last.min(self.phases.len());
        self.means(self.phases.len() - n..self.phases.len()).1
    }

    /// Mean simulation ticks and mean milliseconds per [`TickPhase`] of
    /// the kept frames `frames` (indices); zeros for none.
    fn means(&self, frames: impl IntoIterator<Item = usize>) -> (f32, PhaseMs) {
        let (mut n, mut ticks, mut sum) = (0usize, 0u64, PhaseMs::default());
        for i in frames {
            for (s, v) in sum.iter_mut().zip(&self.phases[i]) {
                *s += v;
            }
            ticks += u64::from(self.ticks[i]);
            n += 1;
        }
        let d = n.max(1) as f32;
        (ticks as f32 / d, sum.map(|s| s / d))
    }

    /// The slowest `fraction` (0..=1) of the recent tick frames (at least
    /// one, if any): how many, their mean simulation ticks per frame, and
    /// their mean milliseconds per [`TickPhase`]. What the tail (p99) of
    /// tick times is made of.
    pub fn slowest(&self, fraction: f32) -> (usize, f32, PhaseMs) {
        let mut order: Vec<usize> = (0..self.samples.len()).collect();
        order.sort_by(|&a, &b| self.samples[b].total_cmp(&self.samples[a]));
        let n = ((order.len() as f32 * fraction.clamp(0.0, 1.0)).ceil() as usize)
            .max(1)
            .min(order.len());
        let (ticks, phases) = self.means(order[..n].iter().copied());
        (n, ticks, phases)
    }

    /// Number of ticks measured.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True before the first tick.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Forgets all samples (e.g. after warm-up).
    pub fn clear(&mut self) {
        self.samples.clear();
        self.phases.clear();
        self.ticks.clear();
        self.total = 0;
    }

    /// Charges the time since the last mark to `phase`.
    fn mark(&mut self, phase: TickPhase) {
        let now = Instant::now();
        if let Some(last) = self.last_mark {
            // Variants are declared in `ALL` order.
            self.frame_phases[phase as usize] += now.duration_since(last).as_secs_f32() * 1000.0;
        }
        self.last_mark = Some(now);
    }
}

/// A system that charges the time since the last mark to `phase`: put one
/// after each part of the frame to time (the plugin marks its own).
pub fn mark(phase: TickPhase) -> impl FnMut(ResMut<TickTimes>) {
    move |mut times: ResMut<TickTimes>| times.mark(phase)
}

pub(crate) fn frame_start(mut times: ResMut<TickTimes>) {
    let now = Instant::now();
    times.frame_start = Some(now);
    times.last_mark = Some(now);
    times.frame_phases = PhaseMs::default();
}

/// Records the frame's time if the server tick advanced.
pub(crate) fn frame_end(mut times: ResMut<TickTimes>, tick: Res<ServerTick>) {
    times.mark(TickPhase::Send);
    let tick = tick.0;
    if tick != times.last_tick {
        let ran = tick
            .saturating_sub(times.last_tick)
            .min(u64::from(u32::MAX)) as u32;
        times.last_tick = tick;
        if let Some(start) = times.frame_start {
            let phases = times.frame_phases;
            times.push(start.elapsed().as_secs_f32() * 1000.0, phases, ran);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks split a frame among the phases, and the means follow the
    /// newest frames.
    #[test]
    fn phases_add_up_to_the_frame() {
        let mut t = TickTimes::default();
        for (i, ms) in [2.0f32, 4.0, 6.0].into_iter().enumerate() {
            let mut phases = PhaseMs::default();
            phases[i] = ms;
            phases[7] = 1.0;
            t.push(ms + 1.0, phases, i as u32 + 1);
        }
        // The slowest 34 %: two of the three frames (7 and 5 ms; 3 and 2 ticks).
        let (n, ticks, slow) = t.slowest(0.34);
        assert_eq!((n, ticks), (2, 2.5));
        assert_eq!(slow, [0.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(t.slowest(0.0).0, 1);
        assert_eq!(t.slowest(0.0).1, 3.0);
        assert_eq!(t.phase_means(2), [0.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(t.phase_means(100)[0], 2.0 / 3.0);
        assert_eq!(t.phase_means(0), PhaseMs::default());
        // A real frame: the marks charge elapsed time, and nothing is lost.
        t.last_mark = Some(Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(2));
        t.mark(TickPhase::Step);
        t.mark(TickPhase::Mirror);
        assert!(t.frame_phases[2] >= 2.0, "{:?}", t.frame_phases);
        assert!(t.frame_phases[3] < t.frame_phases[2]);
        t.clear();
        assert!(t.is_empty() && t.phase_means(10) == PhaseMs::default());
    }
}
