//! Fuzz target: the body of an order, as `POST /api/orders` and `coffee.web.requests` take it
//! and a machine reads it from the work queue. The checks are the property tests' own.

#![no_main]

#[allow(dead_code)]
#[path = "../../crates/brewq-protocol/tests/proptests/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::order_request(bytes));
