//! Galaxy RTS. `cargo run` starts the client with an embedded server;
//! `cargo run --features headless` starts the dedicated server
//! (`galaxy_rts server` does in any build; a build without the `client`
//! feature is the dedicated server only); `galaxy_rts token ...` issues
//! connect tokens from the server's key file.

use std::process::ExitCode;

use galaxy_net::ServerKey;
use galaxy_net::tokens::{issue_token, token_to_bytes};
use galaxy_rts::cli::{self, ClientOptions, Command, ReplayOptions};
use galaxy_rts::{cluster_status, server};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server_only = cfg!(feature = "headless") || !cfg!(feature = "client");
    let result = match cli::parse(&args, server_only) {
        Ok(Command::Help) => {
            print!("{}", cli::usage());
            Ok(())
        }
        Ok(Command::Token(t)) => make_token(&t),
        Ok(Command::Client(opts)) => run_client(opts),
        Ok(Command::Server(opts)) => server::run(opts),
        Ok(Command::ClusterStatus(opts)) => cluster_status::run(&opts),
        Ok(Command::Replay(opts)) if opts.verify => server::replay::verify(&opts.file),
        Ok(Command::Replay(opts)) => run_replay(opts),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "client")]
fn run_client(opts: ClientOptions) -> Result<(), String> {
    galaxy_rts::client::run(opts)
}

#[cfg(not(feature = "client"))]
fn run_client(_: ClientOptions) -> Result<(), String> {
    Err("this build has no client (built without the `client` feature)".into())
}

#[cfg(feature = "client")]
fn run_replay(opts: ReplayOptions) -> Result<(), String> {
    galaxy_rts::client::replay::run(opts)
}

#[cfg(not(feature = "client"))]
fn run_replay(_: ReplayOptions) -> Result<(), String> {
    Err("this build has no client to show a replay in (`replay FILE --verify` checks one)".into())
}

fn make_token(t: &cli::TokenOptions) -> Result<(), String> {
    let key = std::fs::read(&t.key_file)
        .map_err(|e| format!("key file {}: {e}", t.key_file.display()))?;
    let key: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| format!("key file {} must hold 32 bytes", t.key_file.display()))?;
    let token = issue_token(
        &ServerKey(key),
        t.protocol_id,
        if t.spectator {
            galaxy_net::tokens::spectator_id(t.player)
        } else {
            t.player
        },
        t.servers.clone(),
        t.valid_secs,
        15,
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(&t.out, token_to_bytes(&token))
        .map_err(|e| format!("{}: {e}", t.out.display()))?;
    println!(
        "token for {} {} written to {}",
        if t.spectator { "spectator" } else { "player" },
        t.player,
        t.out.display()
    );
    Ok(())
}
