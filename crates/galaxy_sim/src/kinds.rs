//! What each unit kind can do. Designers write speeds and cooldowns per
//! second ([`KindSpec`]); a world converts them to its tick rate once
//! ([`Kinds::at`]), so a unit covers the same ground per second whatever
//! the server's tick rate.

/// Per-kind constants as a designer writes them: per second and in centimetres.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSpec {
    /// Distance moved per second.
    pub speed_cm_per_sec: u64,
    /// Hit points when spawned.
    pub max_health: u16,
    /// Reach of its weapon.
    pub attack_range_cm: u64,
    /// Distance at which it notices enemies on its own.
    pub sight_cm: u64,
    /// Hit points removed per shot.
    pub damage: u16,
    /// Milliseconds between shots.
    pub cooldown_ms: u64,
}

/// Per-kind constants at one tick rate, in ticks and centimetres: what a
/// tick uses.
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

const KINDS: [KindSpec; 3] = [
    // 0: infantry, 5 m/s.
    KindSpec {
        speed_cm_per_sec: 500,
        max_health: 100,
        attack_range_cm: 2_500,
        sight_cm: 6_000,
        damage: 8,
        cooldown_ms: 500,
    },
    // 1: tank, 4 m/s.
    KindSpec {
        speed_cm_per_sec: 400,
        max_health: 400,
        attack_range_cm: 4_000,
        sight_cm: 8_000,
        damage: 30,
        cooldown_ms: 1_500,
    },
    // 2: scout, 12 m/s.
    KindSpec {
        speed_cm_per_sec: 1_200,
        max_health: 60,
        attack_range_cm: 1_500,
        sight_cm: 12_000,
        damage: 4,
        cooldown_ms: 400,
    },
];

/// The spec of `kind`; unknown kinds behave as infantry.
pub fn kind_spec(kind: u8) -> KindSpec {
    KINDS.get(usize::from(kind)).copied().unwrap_or(KINDS[0])
}

/// Hit points of a fresh unit of `kind` (the same at every tick rate).
pub fn max_health(kind: u8) -> u16 {
    kind_spec(kind).max_health
}

impl KindStats {
    /// `kind`'s stats at `tick_hz` ticks per second: speeds and cooldowns
    /// rounded to whole centimetres and ticks, never below one.
    pub fn at(kind: u8, tick_hz: u32) -> Self {
        let spec = kind_spec(kind);
        let hz = u64::from(tick_hz.max(1));
        let per_tick = |per_sec: u64| ((per_sec + hz / 2) / hz).max(1);
        let ticks = (spec.cooldown_ms * hz + 500) / 1000;
        Self {
            speed_cm_per_tick: per_tick(spec.speed_cm_per_sec),
            max_health: spec.max_health,
            attack_range_cm: spec.attack_range_cm,
            sight_cm: spec.sight_cm,
            damage: spec.damage,
            cooldown_ticks: ticks.clamp(1, u64::from(u16::MAX)) as u16,
        }
    }
}

/// Every kind's stats at one tick rate: a world's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kinds {
    stats: [KindStats; KINDS.len()],
    max_speed_cm: u64,
}

impl Kinds {
    /// The table at `tick_hz` ticks per second.
    pub fn at(tick_hz: u32) -> Self {
        let stats: [KindStats; KINDS.len()] =
            std::array::from_fn(|k| KindStats::at(k as u8, tick_hz));
        let max_speed_cm = stats.iter().map(|s| s.speed_cm_per_tick).max().unwrap_or(1);
        Self {
            stats,
            max_speed_cm,
        }
    }

    /// Stats of `kind`; unknown kinds behave as infantry.
    pub fn get(&self, kind: u8) -> KindStats {
        self.stats
            .get(usize::from(kind))
            .copied()
            .unwrap_or(self.stats[0])
    }

    /// The fastest any kind moves, per tick.
    pub fn max_speed_cm(&self) -> u64 {
        self.max_speed_cm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At 20 Hz the table is the one the game was tuned with; at other
    /// rates a unit covers the same ground per second and fires as often.
    #[test]
    fn speeds_follow_the_tick_rate() {
        let at20 = Kinds::at(20);
        assert_eq!(at20.get(0).speed_cm_per_tick, 25);
        assert_eq!(at20.get(1).cooldown_ticks, 30);
        assert_eq!(at20.get(2).speed_cm_per_tick, 60);
        assert_eq!(at20.max_speed_cm(), 60);
        for hz in [10, 20, 30, 60] {
            let k = Kinds::at(hz);
            for kind in 0..3 {
                let per_sec = k.get(kind).speed_cm_per_tick * u64::from(hz);
                let spec = kind_spec(kind).speed_cm_per_sec;
                assert!(
                    per_sec.abs_diff(spec) <= u64::from(hz) / 2,
                    "{hz} Hz kind {kind}"
                );
                let ms = u64::from(k.get(kind).cooldown_ticks) * 1000 / u64::from(hz);
                assert!(ms.abs_diff(kind_spec(kind).cooldown_ms) <= 1000 / u64::from(hz));
            }
        }
        assert_eq!(
            Kinds::at(20).get(9),
            Kinds::at(20).get(0),
            "unknown kinds are infantry"
        );
    }
}
