//! The bandwidth report's targets hold on shortened runs of its own
//! scenarios (the same code as `examples/bandwidth.rs`): the 1,000-unit
//! battle within 256 kbps and 5 cm of the truth, at least 3x below the
//! naive encoding; convergence under loss; and under a 256 kbps budget the
//! budget holding within one message while every unit's news reaches the
//! client within a second, and the same for the mobile profile at 32 kbps.

#[allow(dead_code)]
#[path = "../../examples/bandwidth.rs"]
mod bandwidth;

fn scenario(name: &str) -> bandwidth::Scenario {
    bandwidth::standard_scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .expect("a standard scenario")
}

#[test]
fn battle_fits_256_kbps_within_5_cm() {
    let mut s = scenario("battle");
    s.ticks = 200;
    let r = bandwidth::run(&s, 7);
    assert!(r.converged);
    assert!(r.kbps <= 256.0, "{} kbps", r.kbps);
    assert!(r.error_cm_max <= 5.0, "drawn {} cm off", r.error_cm_max);
    let ours = r.bytes_per_moving_unit.expect("units moved");
    let naive = r.naive_bytes_per_moving_unit.expect("units moved");
    assert!(ours * 3.0 <= naive, "{ours:.2} vs naive {naive:.2}");
}

#[test]
fn march_lossy_and_no_dead_reckoning_converge() {
    for name in ["march", "lossy", "battle-nodr"] {
        let mut s = scenario(name);
        s.ticks = 200;
        let r = bandwidth::run(&s, 7);
        assert!(r.converged, "{name} did not converge");
        if name == "march" {
            // Straight columns cost (almost) nothing once the client has them.
            assert!(r.kbps < 10.0, "march: {} kbps", r.kbps);
            assert!(r.error_cm_max <= 5.0);
        }
    }
}

/// Runs a budgeted scenario: it converges, the budget
/// binds and holds within one message, and no unit waits a second.
fn budget_holds_within_a_second(s: &bandwidth::Scenario) {
    let r = bandwidth::run(s, 7);
    assert!(r.converged);
    assert!(
        r.budget_overshoot_bytes <= galaxy_protocol::MAX_UNIT_UPDATE_BYTES as i64,
        "{} bytes over the budget",
        r.budget_overshoot_bytes
    );
    assert!(r.deferred > 0, "the budget never bound");
    assert!(
        r.max_stale_ticks <= s.hz,
        "a unit waited {} ticks",
        r.max_stale_ticks
    );
}

#[test]
fn the_budget_holds_and_nothing_waits_a_second() {
    let mut s = scenario("budget");
    s.ticks = 200;
    budget_holds_within_a_second(&s);
}

/// The mobile profile (32 kbps, 10 updates a second) watching a 400-unit
/// battle: the budget holds within one message and no unit in view is more
/// than a second stale.
#[test]
fn the_mobile_profile_holds_32_kbps_and_nothing_waits_a_second() {
    let mut s = scenario("mobile");
    assert_eq!(s.hz, u64::from(galaxy_protocol::LinkProfile::MOBILE_HZ));
    assert_eq!(s.budget_kbps, Some(32.0));
    s.ticks = 150;
    budget_holds_within_a_second(&s);
}

#[test]
fn idle_units_cost_nothing_after_join() {
    let mut s = scenario("idle");
    s.units = 2000;
    s.ticks = 40;
    let r = bandwidth::run(&s, 7);
    assert!(r.converged);
    assert_eq!(r.kbps, 0.0);
    assert!(r.join_bytes > 0);
}
