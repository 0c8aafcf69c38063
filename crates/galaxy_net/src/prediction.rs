//! Reconciling the player's own predicted units with the server: the
//! simulation takes the server's state at once, while what is drawn keeps a
//! visual error offset that decays to zero, never moving by more than a
//! set bound in one frame, so corrections are smooth, not snaps.

/// Smooths the gap between a predicted and an authoritative position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reconciler {
    /// Drawn position minus simulated position, in centimetres.
    error: (f64, f64),
    /// Seconds for the error to halve.
    pub half_life: f64,
    /// Most the correction may move the drawing in one frame, in centimetres.
    pub max_correction_per_frame: f64,
    /// Errors beyond this (centimetres) are not smoothed: the unit was
    /// really elsewhere (e.g. after a reconnect), so it is drawn there at once.
    pub snap_distance: f64,
}

impl Default for Reconciler {
    fn default() -> Self {
        Self {
            error: (0.0, 0.0),
            half_life: 0.1,
            max_correction_per_frame: 25.0,
            snap_distance: 5_000.0,
        }
    }
}

impl Reconciler {
    /// The server says the unit is at `authoritative` where we predicted
    /// `predicted` (same tick): keep drawing where we were, and let
    /// [`Reconciler::advance`] walk the drawing to the truth.
    pub fn correct(&mut self, predicted: (f64, f64), authoritative: (f64, f64)) {
        let e = (
            self.error.0 + predicted.0 - authoritative.0,
            self.error.1 + predicted.1 - authoritative.1,
        );
        self.error = if e.0.hypot(e.1) > self.snap_distance {
            (0.0, 0.0)
        } else {
            e
        };
    }

    /// Decays the error over `dt` seconds (at most `max_correction_per_frame`).
    pub fn advance(&mut self, dt: f64) {
        let (ex, ey) = self.error;
        let len = ex.hypot(ey);
        if len < 0.01 {
            self.error = (0.0, 0.0);
            return;
        }
        let decayed = len * 0.5f64.powf(dt.max(0.0) / self.half_life.max(1e-6));
        let step = (len - decayed).min(self.max_correction_per_frame);
        let k = (len - step) / len;
        self.error = (ex * k, ey * k);
    }

    /// Where to draw a unit the simulation has at `simulated`.
    pub fn drawn(&self, simulated: (f64, f64)) -> (f64, f64) {
        (simulated.0 + self.error.0, simulated.1 + self.error.1)
    }

    /// Remaining error in centimetres.
    #[cfg(test)]
    pub fn error(&self) -> f64 {
        self.error.0.hypot(self.error.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit predicted 3 m off is walked back to the truth within half a
    /// second, moving at most 25 cm per frame on top of its own motion.
    #[test]
    fn error_goes_to_zero_without_jumps() {
        let mut r = Reconciler::default();
        let frame = 1.0 / 60.0;
        let mut sim = (0.0, 0.0);
        r.correct((300.0, 0.0), (0.0, 0.0));
        let mut drawn = r.drawn(sim);
        assert_eq!(
            drawn,
            (300.0, 0.0),
            "the drawing does not jump at the correction"
        );
        for _ in 0..60 {
            sim.0 += 8.0; // the unit keeps walking
            r.advance(frame);
            let now = r.drawn(sim);
            let moved = (now.0 - drawn.0).hypot(now.1 - drawn.1);
            assert!(
                moved <= 8.0 + r.max_correction_per_frame + 1e-9,
                "jumped {moved}"
            );
            drawn = now;
        }
        assert!(r.error() < 1.0, "error left: {}", r.error());
    }

    #[test]
    fn far_off_units_snap_and_corrections_accumulate() {
        let mut r = Reconciler::default();
        r.correct((0.0, 0.0), (10_000.0, 0.0));
        assert_eq!(r.error(), 0.0);
        r.correct((10.0, 0.0), (0.0, 0.0));
        r.correct((10.0, 0.0), (0.0, 0.0));
        assert!((r.error() - 20.0).abs() < 1e-9);
    }
}
