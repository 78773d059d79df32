//! Order ids and what stands for them where other people look. An order id is a capability:
//! whoever holds it can read and cancel the order, so it is random and shown to its customer
//! only. Screens show the order's ticket, logs its reference.

use std::fmt::Write;

/// Characters of an order id: 26 symbols of 5 bits, 130 bits from the OS's random source.
pub const ORDER_ID_CHARS: usize = 26;
/// The symbols of an order id (RFC 4648 base32, lower case: URL-, subject- and key-safe).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// An order id made of `random` bytes, 5 bits of each (the caller draws them from the OS).
pub fn order_id_from(random: &[u8; ORDER_ID_CHARS]) -> String {
    random.iter().map(|byte| ALPHABET[usize::from(byte & 31)] as char).collect()
}

/// Whether `text` can name an order: a KV key of at most 64 letters, digits, `-` and `_`.
/// (Ids made by [`order_id_from`] are such; so are the ids tests and tools choose.)
pub fn is_order_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// What logs say instead of the id: `o-` and 12 hex digits of the id's SHA-256. Every service
/// derives the same reference, so a grep follows an order through all their logs, and a log
/// shared with others gives nobody the order (`brewq status ID` prints the reference).
pub fn order_ref(order_id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, order_id.as_bytes());
    let mut reference = String::from("o-");
    for byte in &digest.as_ref()[..6] {
        let _ = write!(reference, "{byte:02x}");
    }
    reference
}

/// Tickets run from 1 to this, then start again: three digits a person reads from 3 m.
pub const TICKETS: u64 = 999;

/// The order's ticket, the short public number a pickup board and the operator's lists show:
/// from its place in the work queue, so orders placed close together never share one.
pub fn ticket(queue_sequence: u64) -> u32 {
    (queue_sequence.saturating_sub(1) % TICKETS + 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_id_uses_every_random_bit_it_is_given_and_is_a_valid_id() {
        let zeros = order_id_from(&[0; ORDER_ID_CHARS]);
        let ones = order_id_from(&[31; ORDER_ID_CHARS]);
        assert_eq!(zeros, "a".repeat(ORDER_ID_CHARS));
        assert_eq!(ones, "7".repeat(ORDER_ID_CHARS));
        assert!(is_order_id(&zeros) && is_order_id(&ones));
    }

    #[test]
    fn ids_that_cannot_be_keys_are_refused() {
        for bad in ["", "a.b", "a b", "a\nb", "a*", "a>", "é", &"a".repeat(65)] {
            assert!(!is_order_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_reference_is_stable_short_and_not_the_id() {
        let reference = order_ref("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(reference, order_ref("abcdefghijklmnopqrstuvwxyz"));
        assert_eq!(reference.len(), 14);
        assert_ne!(reference, order_ref("abcdefghijklmnopqrstuvwxy2"));
        assert!(!reference.contains("abcdef"));
    }

    #[test]
    fn tickets_cycle_from_1_to_999() {
        assert_eq!([ticket(1), ticket(2), ticket(999), ticket(1000), ticket(0)], [1, 2, 999, 1, 1]);
    }
}
