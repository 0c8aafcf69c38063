//! One run's numbers: the JSON line, the table and the statistics behind them.

use std::collections::BTreeMap;

use crate::hostile::AttackCounts;

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
    /// Share of the machine's CPU time stolen by other guests during the
    /// run (percent; null where `/proc/stat` is missing).
    pub(crate) cpu_steal_pct: Option<f64>,
    /// Attacking clients (`--hostile`).
    pub(crate) hostile: u64,
    /// Spectators watching beside the players (`--spectators`).
    pub(crate) spectators: u64,
    /// The spectators' broadcast delay in seconds (`--spectator-delay`).
    pub(crate) spectator_delay_secs: f64,
    /// Spectators of one view shared one encoding (`--no-sharing`: false).
    pub(crate) shared_spectators: bool,
    /// Times a fair client lost its connection (0 when attacks do not reach them).
    pub(crate) fair_reconnects: u64,
    /// The attackers' thread's CPU, percent of one core (null: no attackers).
    pub(crate) attackers_cpu_pct: Option<f64>,
    /// Mean ms per measured tick frame of each phase of the server's frame
    /// (`receive`: renet, decoding, validation, where the attacks land).
    pub(crate) phase_ms_mean: BTreeMap<&'static str, f32>,
    /// Per attack: attackers, connections, disconnects by the server, messages.
    pub(crate) attacks: BTreeMap<&'static str, AttackCounts>,
    /// The server's counters at the end.
    pub(crate) server_refusals: Refusals,
}

/// What the server refused, by reason, and how many clients it disconnected.
#[derive(serde::Serialize, Default)]
pub(crate) struct Refusals {
    pub(crate) rejected: BTreeMap<String, u64>,
    pub(crate) decode_errors: BTreeMap<String, u64>,
    pub(crate) disconnected: u64,
    /// Clients' replica digests the server checked (state verification).
    pub(crate) state_checks: u64,
    /// Of those, how many did not match what it believed the client held.
    pub(crate) state_mismatches: u64,
    /// Units resent whole to heal the mismatches.
    pub(crate) units_healed: u64,
    /// Updates encoded once for the server's clients (every client's
    /// own, or a spectator group's).
    pub(crate) unit_updates: u64,
    /// Copies of a group's updates sent to its other spectators.
    pub(crate) shared_updates: u64,
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

/// The attacks of a `--hostile` run and what the server counted.
pub(crate) fn attack_table(r: &LoadReport) {
    println!(
        "{:>16} {:>9} {:>11} {:>13} {:>13}",
        "attack", "attackers", "connections", "disconnected", "messages"
    );
    for (name, c) in &r.attacks {
        println!(
            "{:>16} {:>9} {:>11} {:>13} {:>13}",
            name, c.attackers, c.connections, c.disconnected_by_server, c.messages_sent
        );
    }
    let s = &r.server_refusals;
    println!(
        "server: {} clients disconnected; rejected {:?}; decode errors {:?}; fair clients reconnected {} times; mean ms per tick frame {:?}; attackers' thread {:?} % of a core; replica digests checked {}, mismatched {} ({} units resent)",
        s.disconnected,
        s.rejected,
        s.decode_errors,
        r.fair_reconnects,
        r.phase_ms_mean,
        r.attackers_cpu_pct,
        s.state_checks,
        s.state_mismatches,
        s.units_healed
    );
}
