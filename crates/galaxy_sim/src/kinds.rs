//! What each unit kind can do.

/// Per-kind constants, in ticks and centimetres.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindStats {
    /// Distance moved per tick.
    pub speed_cm_per_tick: u64,
    /// Hit points when spawned.
    pub max_health: u16,
    /// Reach of its weapon.
    pub attack_range_cm: u64,
    /// Distance at which it notices enemies on its own.
    pub sight_cm: u64,
    /// Hit points removed per shot.
    pub damage: u16,
    /// Ticks between shots.
    pub cooldown_ticks: u16,
}

const KINDS: [KindStats; 3] = [
    // 0: infantry, 5 m/s at 20 Hz.
    KindStats {
        speed_cm_per_tick: 25,
        max_health: 100,
        attack_range_cm: 2_500,
        sight_cm: 6_000,
        damage: 8,
        cooldown_ticks: 10,
    },
    // 1: tank, 4 m/s.
    KindStats {
        speed_cm_per_tick: 20,
        max_health: 400,
        attack_range_cm: 4_000,
        sight_cm: 8_000,
        damage: 30,
        cooldown_ticks: 30,
    },
    // 2: scout, 12 m/s.
    KindStats {
        speed_cm_per_tick: 60,
        max_health: 60,
        attack_range_cm: 1_500,
        sight_cm: 12_000,
        damage: 4,
        cooldown_ticks: 8,
    },
];

/// The fastest any kind moves, per tick.
pub const MAX_SPEED_CM: u64 = {
    let mut max = 0;
    let mut i = 0;
    while i < KINDS.len() {
        if KINDS[i].speed_cm_per_tick > max {
            max = KINDS[i].speed_cm_per_tick;
        }
        i += 1;
    }
    max
};

/// Stats of `kind`; unknown kinds behave as infantry.
pub fn kind_stats(kind: u8) -> KindStats {
    KINDS.get(usize::from(kind)).copied().unwrap_or(KINDS[0])
}
