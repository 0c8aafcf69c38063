//! When and where a client tries to (re)connect: exponential backoff with a
//! cap, rotating through fallback servers. Pure state, driven by the client
//! plugin with real time, tested on its own.

/// First wait after a failure, in seconds.
pub const FIRST_BACKOFF_SECS: f64 = 0.5;
/// Longest wait between attempts, in seconds.
pub const MAX_BACKOFF_SECS: f64 = 8.0;

/// Retry schedule over `targets` fallback choices.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    targets: usize,
    current: usize,
    wait: f64,
    next_at: Option<f64>,
    failures: u32,
}

impl Backoff {
    /// A schedule over `targets` servers (at least one).
    pub fn new(targets: usize) -> Self {
        Self {
            targets: targets.max(1),
            current: 0,
            wait: FIRST_BACKOFF_SECS,
            next_at: None,
            failures: 0,
        }
    }

    /// The server to use now (index into the caller's list).
    pub fn target(&self) -> usize {
        self.current
    }

    /// Consecutive failed attempts since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The connection was lost or an attempt failed at `now`: wait, then try
    /// the next server. Idempotent until the next attempt is due.
    pub fn on_failure(&mut self, now: f64) {
        if self.next_at.is_some() {
            return;
        }
        self.failures += 1;
        self.next_at = Some(now + self.wait);
        self.wait = (self.wait * 2.0).min(MAX_BACKOFF_SECS);
        self.current = (self.current + 1) % self.targets;
    }

    /// True (once) when the next attempt should start.
    pub fn due(&mut self, now: f64) -> bool {
        match self.next_at {
            Some(t) if now >= t => {
                self.next_at = None;
                true
            }
            _ => false,
        }
    }

    /// Seconds until the next attempt, if one is scheduled.
    pub fn wait_left(&self, now: f64) -> Option<f64> {
        self.next_at.map(|t| (t - now).max(0.0))
    }

    /// Connected: the next loss starts from a short wait again.
    pub fn on_connected(&mut self) {
        self.wait = FIRST_BACKOFF_SECS;
        self.next_at = None;
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_rotates_and_resets() {
        let mut b = Backoff::new(2);
        assert_eq!(b.target(), 0);
        b.on_failure(10.0);
        b.on_failure(10.1); // repeated reports of the same loss change nothing
        assert_eq!(b.target(), 1);
        assert!(!b.due(10.4));
        assert!(b.due(10.5));
        assert!(!b.due(10.6), "due only once");
        let mut waits = Vec::new();
        let mut now = 11.0;
        for _ in 0..6 {
            b.on_failure(now);
            let w = b.wait_left(now).unwrap();
            waits.push(w);
            now += w;
            assert!(b.due(now));
        }
        assert_eq!(waits, vec![1.0, 2.0, 4.0, 8.0, 8.0, 8.0]);
        assert_eq!(b.failures(), 7);
        b.on_connected();
        b.on_failure(100.0);
        assert_eq!(b.wait_left(100.0), Some(FIRST_BACKOFF_SECS));
    }
}
