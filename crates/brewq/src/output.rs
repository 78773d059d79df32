//! How commands print: JSON only on stdout with `--json`, words for a person otherwise.

use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) {
    // Our API types are plain data and always serialize.
    println!("{}", serde_json::to_string_pretty(value).expect("API types serialize"));
}
