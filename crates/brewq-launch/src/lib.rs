//! Everything that brings a brewq system up on one machine: per-role credentials, the
//! `nats-server` cluster (configs and processes), the JetStream topology (provisioning), and
//! the service processes, supervised together. `brewq up` and the end-to-end tests both use it.

pub mod chain;
pub mod cluster;
pub mod config;
pub mod jwt;
pub mod keys;
pub mod permissions;
pub mod process;
pub mod provision;
mod readiness;
pub mod security;
pub mod shops;
pub mod system;
pub mod tls;
pub mod trust;

pub use cluster::{ClusterInfo, NatsCluster};
pub use keys::{Keys, Role};
pub use provision::Topology;
pub use system::{ServiceKind, System, SystemConfig};
