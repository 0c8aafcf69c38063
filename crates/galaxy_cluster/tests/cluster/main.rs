//! Cluster coordination against a real `nats-server` with JetStream.

mod ownership;
