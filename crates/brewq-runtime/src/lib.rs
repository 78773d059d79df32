//! What every brewq service needs and no domain logic: tracing set-up, the shutdown signal,
//! NATS connections with credentials, JSON request/reply, compare-and-swap on KV (alone or in
//! atomic batches), streams read by direct gets, the Prometheus metrics endpoint, and freed
//! memory given back.

pub mod batch;
pub mod connect;
pub mod direct;
pub mod follow;
pub mod jetstream;
pub mod kv;
pub mod memory;
pub mod prometheus;
pub mod refresh;
pub mod request;
pub mod respond;
pub mod shutdown;
pub mod telemetry;

pub use connect::{Credentials, NatsConfig, connect};
pub use shutdown::shutdown_signal;
