//! Galaxy RTS: `cargo run` will start the client (with an embedded server)
//! and `cargo run --features headless` the dedicated server.
//!
//! Neither exists yet: the protocol crate is the first piece. Until the
//! `galaxy_net` and client issues land, this binary says so and prints what
//! the protocol can already do, so the README's play command never fails.

use galaxy_protocol::{NetworkMessage, SectorId, UnitUpdate, WorldPos, codec};

fn main() {
    let mode = if cfg!(feature = "headless") {
        "dedicated server"
    } else {
        "client"
    };
    println!("Galaxy RTS {} ({mode})", env!("CARGO_PKG_VERSION"));
    println!("The playable {mode} is not built yet; the wire protocol is.");
    let sector = SectorId::at(WorldPos::from_metres(1_234.5, -42.0));
    let msg = NetworkMessage::UnitUpdate(UnitUpdate {
        sector_id: sector,
        sequence: 0,
        timestamp: 0,
        updates: Vec::new(),
    });
    match codec::encode(&msg) {
        Ok(bytes) => println!(
            "An empty UnitUpdate for sector {sector} is {} bytes on the wire.",
            bytes.len()
        ),
        Err(e) => eprintln!("encode failed: {e}"),
    }
    println!("Try: cargo run --release -p galaxy_protocol --example bandwidth");
}
