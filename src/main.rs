//! Galaxy RTS. `cargo run` starts the client with an embedded server;
//! `cargo run --features headless` starts the dedicated server
//! (`galaxy_rts server` does in any build); `galaxy_rts token ...` issues
//! connect tokens from the server's key file.

mod cli;
mod client;
mod cluster_status;
mod server;

use std::process::ExitCode;

use cli::Command;
use galaxy_net::ServerKey;
use galaxy_net::tokens::{issue_token, token_to_bytes};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match cli::parse(&args, cfg!(feature = "headless")) {
        Ok(Command::Help) => {
            print!("{}", cli::usage());
            Ok(())
        }
        Ok(Command::Token(t)) => make_token(&t),
        Ok(Command::Client(opts)) => client::run(opts),
        Ok(Command::Server(opts)) => server::run(opts),
        Ok(Command::ClusterStatus(opts)) => cluster_status::run(&opts),
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
        t.player,
        t.servers.clone(),
        t.valid_secs,
        15,
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(&t.out, token_to_bytes(&token))
        .map_err(|e| format!("{}: {e}", t.out.display()))?;
    println!(
        "token for player {} written to {}",
        t.player,
        t.out.display()
    );
    Ok(())
}
