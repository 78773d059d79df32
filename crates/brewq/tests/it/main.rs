//! The end-to-end suite: every test starts its own real 3-node nats-server cluster and real
//! brewq service processes on free loopback ports, drives them, and checks the invariants.
//! Run through `scripts/test.sh`, which installs nats-server and bounds the parallelism.

mod availability;
mod board;
mod browser;
mod chaos;
mod deploy;
mod fleet;
mod harness;
mod kv;
mod lan;
mod observe;
mod operator;
mod pipeline;
mod privacy;
mod reconcile;
mod restart;
mod security;
mod shops;
mod shops_chaos;
mod shops_lan;
mod stock;
mod up;
mod web;
