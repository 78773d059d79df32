//! Fuzz target: every wire type a service reads from NATS or a bucket. The first byte picks the
//! type (`checks::PAYLOADS`), the rest is its payload. The checks are the property tests' own.

#![no_main]

#[path = "../../crates/brewq-protocol/tests/proptests/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Some((first, payload)) = bytes.split_first() else { return };
    let (_, check) = checks::PAYLOADS[usize::from(*first) % checks::PAYLOADS.len()];
    check(payload);
});
