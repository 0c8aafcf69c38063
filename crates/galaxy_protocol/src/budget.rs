//! A per-client byte budget: a token bucket refilled every tick.
//!
//! The server gives each client `bytes_per_tick` (its kbps budget at the
//! tick rate). Critical traffic (combat events) is spent first; the delta
//! sender fills what is left with unit updates in priority order
//! ([`crate::DeltaSender::write_updates_within`]). Whatever a tick did not
//! use is saved for up to `max_saved_ticks` (so a client updated every
//! other tick still gets its whole rate), and a tick that overshot (by at
//! most one message) is repaid by the next ones. So over any run of `T`
//! ticks from the start, the bytes sent are at most `T * bytes_per_tick`
//! plus one message, and over any window at most the saved credit more.

/// A token bucket of bytes; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteBudget {
    per_tick: usize,
    max_saved_ticks: u32,
    credit: i64,
}

impl Default for ByteBudget {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl ByteBudget {
    /// `bytes_per_tick` every tick, nothing saved beyond one tick.
    pub fn per_tick(bytes_per_tick: usize) -> Self {
        Self {
            per_tick: bytes_per_tick,
            max_saved_ticks: 1,
            credit: 0,
        }
    }

    /// A budget of `kbps` (1,000 bits per second) at `tick_hz` ticks per
    /// second. Non-finite or non-positive rates give an empty budget.
    pub fn from_kbps(kbps: f64, tick_hz: f64) -> Self {
        let per_tick = if kbps.is_finite() && tick_hz.is_finite() && kbps > 0.0 && tick_hz > 0.0 {
            (kbps * 1000.0 / 8.0 / tick_hz).floor() as usize
        } else {
            0
        };
        Self::per_tick(per_tick)
    }

    /// No limit (every changed unit goes every tick).
    pub fn unlimited() -> Self {
        Self {
            per_tick: usize::MAX,
            max_saved_ticks: 1,
            credit: i64::MAX,
        }
    }

    /// True for [`ByteBudget::unlimited`].
    pub fn is_unlimited(&self) -> bool {
        self.per_tick == usize::MAX
    }

    /// Bytes granted per tick.
    pub fn bytes_per_tick(&self) -> usize {
        self.per_tick
    }

    /// Keeps up to `ticks` ticks of unused budget (at least 1), e.g. the
    /// number of ticks between two updates of a client on a reduced rate.
    pub fn set_max_saved_ticks(&mut self, ticks: u32) {
        self.max_saved_ticks = ticks.max(1);
    }

    /// Adds one tick's bytes (call once per tick, before spending).
    pub fn refill(&mut self) {
        if self.is_unlimited() {
            return;
        }
        let per = i64::try_from(self.per_tick).unwrap_or(i64::MAX);
        let cap = per.saturating_mul(i64::from(self.max_saved_ticks));
        self.credit = self.credit.saturating_add(per).min(cap);
    }

    /// Bytes that may still be sent this tick.
    pub fn available(&self) -> usize {
        usize::try_from(self.credit.max(0)).unwrap_or(usize::MAX)
    }

    /// Records `bytes` sent. May leave a debt (negative credit), which the
    /// next refills repay before anything else is sent.
    pub fn spend(&mut self, bytes: usize) {
        if !self.is_unlimited() {
            self.credit = self
                .credit
                .saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_saves_and_repays() {
        let mut b = ByteBudget::from_kbps(256.0, 20.0);
        assert_eq!(b.bytes_per_tick(), 1600);
        assert_eq!(b.available(), 0);
        b.refill();
        assert_eq!(b.available(), 1600);
        b.refill();
        assert_eq!(b.available(), 1600, "one tick saved by default");
        b.set_max_saved_ticks(3);
        b.refill();
        b.refill();
        assert_eq!(b.available(), 4800);
        b.spend(6000);
        assert_eq!(b.available(), 0);
        b.refill();
        assert_eq!(b.available(), 400, "the debt of 1,200 is repaid first");
    }

    #[test]
    fn unlimited_and_nonsense_rates() {
        let mut u = ByteBudget::unlimited();
        u.spend(usize::MAX);
        u.refill();
        assert!(u.is_unlimited() && u.available() > 1 << 40);
        for (kbps, hz) in [(f64::NAN, 20.0), (-5.0, 20.0), (256.0, 0.0)] {
            let mut b = ByteBudget::from_kbps(kbps, hz);
            b.refill();
            assert_eq!(b.available(), 0);
        }
    }
}
