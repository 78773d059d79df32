//! How commands print: JSON only on stdout with `--json`, words for a person otherwise.

use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) {
    // Our API types are plain data and always serialize.
    println!("{}", serde_json::to_string_pretty(value).expect("API types serialize"));
}

/// An error and its causes on one line, like `{:#}`, without a cause that only repeats the end
/// of the one before it (NATS errors often end with their own cause).
pub fn chain(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|last| last.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_that_repeats_the_error_before_it_is_left_out() {
        let error = anyhow::anyhow!("deadline has elapsed")
            .context("request timed out: deadline has elapsed")
            .context("timed out: request timed out: deadline has elapsed")
            .context("reading the stream");
        assert_eq!(super::chain(&error), "reading the stream: timed out: request timed out: deadline has elapsed");
        let plain = anyhow::anyhow!("refused").context("writing the hold");
        assert_eq!(super::chain(&plain), "writing the hold: refused");
    }
}
