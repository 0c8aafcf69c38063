//! Client smoke test: the real client, with its embedded server, in a real
//! window under Xvfb with Mesa's software Vulkan; the screenshot must show
//! units in several owner colours. `scripts/test.sh` installs `xvfb` and
//! `mesa-vulkan-drivers`; without them this test fails, it is never skipped.

use std::process::Command;

/// Counts pixels close to a colour.
fn count(pixels: &[[u8; 3]], target: [u8; 3]) -> usize {
    pixels
        .iter()
        .filter(|p| p.iter().zip(target).all(|(&a, b)| a.abs_diff(b) <= 40))
        .count()
}

#[test]
fn client_renders_units_from_its_embedded_server() {
    let dir = std::env::temp_dir().join(format!("galaxy-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("shot.png");
    let record = dir.join("game.rpl");
    let out = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x720x24"])
        .arg(env!("CARGO_BIN_EXE_galaxy_rts"))
        .args(["--screenshot", shot.to_str().unwrap(), "--exit-after", "8"])
        .args(["--record", record.to_str().unwrap()])
        .output()
        .expect("xvfb-run must be installed (scripts/test.sh installs it)");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client failed ({:?}):\n{log}",
        out.status
    );
    let pixels = read_png(&shot);
    // Not blank: more than the clear colour.
    let distinct: std::collections::HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(
        distinct.len() > 3,
        "blank screenshot: {} colours",
        distinct.len()
    );
    // The local player's green army is on screen, with units of another owner.
    let green = count(&pixels, [51, 242, 77]);
    // The first bot's raiders (cyan) are coming from 110 m away.
    let others = count(&pixels, [51, 230, 230]);
    assert!(
        green > 2_000,
        "local units not drawn: {green} green pixels\n{log}"
    );
    assert!(
        others > 200,
        "the other owner's units are not drawn: {others} cyan pixels\n{log}"
    );
    let panels = panel_pixels(&pixels);
    assert!(
        panels > 20_000,
        "HUD not drawn: {panels} panel pixels\n{log}"
    );
    check_replay_of(&record, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Pixels of the egui panels (dark grey, 27).
fn panel_pixels(pixels: &[[u8; 3]]) -> usize {
    pixels
        .iter()
        .filter(|p| p.iter().all(|&c| c.abs_diff(27) <= 2))
        .count()
}

/// The screenshot's pixels (it must be 1280x720).
fn read_png(path: &std::path::Path) -> Vec<[u8; 3]> {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("screenshot written"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 720));
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// The game the client recorded plays in the replay viewer: connected,
/// units drawn (the screenshot exits 0 only then), player 1's army (blue
/// to a viewer who is not player 1) on screen, the replay panel up.
fn check_replay_of(record: &std::path::Path, dir: &std::path::Path) {
    let shot = dir.join("replay.png");
    let out = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x720x24"])
        .arg(env!("CARGO_BIN_EXE_galaxy_rts"))
        .args(["replay", record.to_str().unwrap(), "--speed", "2"])
        .args(["--screenshot", shot.to_str().unwrap(), "--exit-after", "6"])
        .output()
        .expect("xvfb-run");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "replay viewer failed ({:?}):\n{log}",
        out.status
    );
    let pixels = read_png(&shot);
    let blue = count(&pixels, [64, 128, 255]);
    assert!(
        blue > 500,
        "the recorded army is not drawn: {blue} blue pixels\n{log}"
    );
    let panels = panel_pixels(&pixels);
    assert!(
        panels > 20_000,
        "panels not drawn: {panels} panel pixels\n{log}"
    );
}
