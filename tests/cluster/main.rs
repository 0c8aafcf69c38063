//! The dedicated server as a cluster member, as real processes: three
//! `galaxy_rts server --cluster` children sharing one `nats-server` (with
//! JetStream, on a free port, with a temporary store), a game client on
//! real UDP, planned migration, a walk across a server border, kill -9
//! and SIGSTOP. One test runs at a time (`harness::serial`).

mod boundary;
mod failover;
mod harness;
mod migration;
