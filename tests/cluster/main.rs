//! The dedicated server as a cluster member, as real processes: three
//! `galaxy_rts server --cluster` children sharing one `nats-server` (with
//! JetStream, on a free port, with a temporary store), a game client on
//! real UDP, planned migration, kill -9 and SIGSTOP.

mod failover;
mod harness;
mod migration;
