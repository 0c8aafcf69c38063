//! `examples/own_components.rs` end to end: a small non-RTS game's own
//! components replicated over real UDP; the client's entities converge to
//! the server's values for the ships in its view, and only those.

use std::time::Duration;

#[allow(dead_code)] // its `main` runs as the example, not here
#[path = "../../../../examples/own_components.rs"]
mod own_components;

use own_components::*;

#[test]
fn a_games_own_components_converge_on_the_client() {
    let (mut server, addr) = server();
    let mut client = client(addr);
    assert!(
        run_until_converged(&mut server, &mut client, Duration::from_secs(30)),
        "the client's ships {:?}\nthe server's {:?}",
        ships(&mut client),
        ships(&mut server)
    );
    let seen = ships(&mut client);
    assert_eq!(seen.len(), 12);
    // The 5 ships 50 km away are outside the view's interest: never sent.
    assert!(seen.keys().all(|&id| id <= 12), "{seen:?}");
    let on_server = ships(&mut server);
    for (id, s) in &seen {
        assert_eq!(on_server[id], *s, "ship {id}");
        assert_eq!(s.2, Shield(100));
        assert_ne!(s.0, Position(galaxy_net::WorldPos::new(0, 0)), "it flew");
    }
}
