//! One run's numbers: the JSON line, the table and the statistics behind them.

/// One run's numbers (the JSON line has exactly these fields).
#[derive(serde::Serialize)]
pub(crate) struct LoadReport {
    pub(crate) units: u64,
    pub(crate) idle_units: u64,
    pub(crate) clients: u64,
    pub(crate) battles: u64,
    pub(crate) seconds: f64,
    pub(crate) loss: f64,
    pub(crate) budget_kbps: f64,
    pub(crate) ticks_measured: usize,
    pub(crate) tick_ms_p50: f32,
    pub(crate) tick_ms_p99: f32,
    pub(crate) tick_ms_max: f32,
    pub(crate) kbps_per_client_p50: f64,
    pub(crate) kbps_per_client_max: f64,
    pub(crate) desynced_units: u64,
    pub(crate) checked_units: u64,
    /// Acknowledged states the client had already replaced and dropped.
    pub(crate) superseded_units: u64,
    pub(crate) rejected_commands: u64,
    pub(crate) orders_for_dead_units: u64,
    pub(crate) units_alive_at_end: usize,
    pub(crate) respawned: u64,
    pub(crate) rss_mb_after_warmup: f64,
    pub(crate) rss_mb_end: f64,
    pub(crate) rss_growth_mb: f64,
    pub(crate) server_heap_mb_after_warmup: f64,
    pub(crate) server_heap_mb_end: f64,
    pub(crate) server_heap_growth_mb: f64,
    /// A fixed 10 ms computation's time on this machine before the runs
    /// (`--noise-probe`): median, 99th percentile, slowest; null if not probed.
    pub(crate) noise_chunk_ms_p50: Option<f64>,
    pub(crate) noise_chunk_ms_p99: Option<f64>,
    pub(crate) noise_chunk_ms_max: Option<f64>,
}

pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

pub(crate) fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub(crate) fn header() {
    println!(
        "{:>7} {:>7} {:>7} {:>7} {:>5} {:>9} {:>9} {:>9} {:>11} {:>11} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "units",
        "idle",
        "clients",
        "battles",
        "loss",
        "tick p50",
        "tick p99",
        "tick max",
        "kbps/cl p50",
        "kbps/cl max",
        "desync",
        "checked",
        "RSS MB",
        "RSS grew",
        "heap MB",
        "heap grew"
    );
}

pub(crate) fn row(r: &LoadReport) {
    println!(
        "{:>7} {:>7} {:>7} {:>7} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>11.1} {:>11.1} {:>8} {:>8} {:>9.0} {:>9.1} {:>9.0} {:>9.1}",
        r.units,
        r.idle_units,
        r.clients,
        r.battles,
        r.loss,
        r.tick_ms_p50,
        r.tick_ms_p99,
        r.tick_ms_max,
        r.kbps_per_client_p50,
        r.kbps_per_client_max,
        r.desynced_units,
        r.checked_units,
        r.rss_mb_end,
        r.rss_growth_mb,
        r.server_heap_mb_end,
        r.server_heap_growth_mb
    );
}
