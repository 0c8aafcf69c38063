//! The bandwidth report's targets hold on shortened runs of its own
//! scenarios (the same code as `examples/bandwidth.rs`): at most 6 bytes
//! per moving unit in `march` and `battle`, at least 3x below the naive
//! encoding, and convergence under loss.

#[allow(dead_code)]
#[path = "../../examples/bandwidth.rs"]
mod bandwidth;

#[test]
fn march_battle_and_lossy_meet_the_report_targets() {
    for mut s in bandwidth::standard_scenarios() {
        if s.name == "idle" {
            continue;
        }
        s.ticks = 200;
        let r = bandwidth::run(&s, 7);
        assert!(r.converged, "{} did not converge", s.name);
        if s.down.loss == 0.0 {
            let ours = r.bytes_per_moving_unit.expect("units moved");
            let naive = r.naive_bytes_per_moving_unit.expect("units moved");
            assert!(ours <= 6.0, "{}: {ours:.2} bytes per moving unit", s.name);
            assert!(
                ours * 3.0 <= naive,
                "{}: {ours:.2} vs naive {naive:.2}",
                s.name
            );
        }
    }
}

#[test]
fn idle_units_cost_nothing_after_join() {
    let mut s = bandwidth::standard_scenarios()
        .into_iter()
        .find(|s| s.name == "idle")
        .unwrap();
    s.units = 2000;
    s.ticks = 40;
    let r = bandwidth::run(&s, 7);
    assert!(r.converged);
    assert_eq!(r.kbps, 0.0);
    assert!(r.join_bytes > 0);
}
