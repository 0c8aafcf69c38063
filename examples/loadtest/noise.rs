//! The machine's own steadiness: how long one fixed computation of about
//! 10 ms takes, again and again, on one thread while nothing else of ours
//! runs. On a shared virtual machine the same work sometimes takes several
//! times longer, and no tick can be steadier than the machine it runs on,
//! so a run can report this beside its tick times (`--noise-probe S`).

use std::time::{Duration, Instant};

use galaxy_protocol::link_model::SplitMix64;

use crate::report::quantile;

/// `iters` steps of integer work that touch no memory.
fn chunk(iters: u64) -> u64 {
    let mut rng = SplitMix64::new(7);
    let mut acc = 0u64;
    for _ in 0..iters {
        acc = acc.rotate_left(5) ^ rng.next_u64();
    }
    std::hint::black_box(acc)
}

/// What `seconds` of probing saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Noise {
    /// Chunks timed.
    pub(crate) chunks: usize,
    /// Milliseconds one chunk took: median, 99th percentile, slowest.
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// Milliseconds each of `n` chunks of `iters` steps took.
fn time_chunks(iters: u64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            chunk(iters);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

/// Times a chunk sized to take 10 ms at the machine's usual speed (its
/// median over three rounds of sizing), over and over for `seconds`.
pub(crate) fn probe(seconds: f64) -> Noise {
    let mut iters = 100_000u64;
    for _ in 0..3 {
        let usual = quantile(&mut time_chunks(iters, 21), 0.5).max(1e-6);
        iters = ((iters as f64 * 10.0 / usual) as u64).max(1);
    }
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut ms = Vec::new();
    while Instant::now() < end {
        ms.extend(time_chunks(iters, 1));
    }
    Noise {
        chunks: ms.len(),
        p50_ms: quantile(&mut ms, 0.5),
        p99_ms: quantile(&mut ms, 0.99),
        max_ms: quantile(&mut ms, 1.0),
    }
}

/// The machine's CPU time so far (`/proc/stat`): `(steal, total)` in
/// jiffies; `None` where there is no `/proc/stat`.
pub(crate) fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((*v.get(7)?, v.iter().sum()))
}

/// Percent of the machine's CPU time between two [`cpu_jiffies`] readings
/// that the hypervisor gave to other guests (steal): on a shared VM, the
/// time our threads were ready to run and did not.
pub(crate) fn steal_pct(from: Option<(u64, u64)>, to: Option<(u64, u64)>) -> Option<f64> {
    let ((s0, t0), (s1, t1)) = (from?, to?);
    (t1 > t0).then(|| (s1 - s0) as f64 * 100.0 / (t1 - t0) as f64)
}
