//! Order ids and what stands for them where other people look. An order id is a capability:
//! whoever holds it can read and cancel the order, so it is random and shown to its customer
//! only. Screens show the order's ticket, logs its reference.

/// Characters of an order id: 26 symbols of 5 bits, 130 bits from the OS's random source.
pub const ORDER_ID_CHARS: usize = 26;
/// The symbols of an order id (RFC 4648 base32, lower case: URL-, subject- and key-safe).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// An order id made of `random` bytes, 5 bits of each (the caller draws them from the OS).
pub fn order_id_from(random: &[u8; ORDER_ID_CHARS]) -> String {
    random.iter().map(|byte| ALPHABET[usize::from(byte & 31)] as char).collect()
}

/// The key that turns an order request without an idempotency key into its order id
/// ([`OrderIdKey::order_id`]). Every controller holds the same one, and no one else: a
/// request that two controllers both place (one taking it, one standing by for it) is one
/// order, and nobody without the key can tell the ids from random ones or link two of them.
#[derive(Clone)]
pub struct OrderIdKey(ring::hmac::Key);

impl OrderIdKey {
    /// A key derived from a secret the controllers share (256 bits from the OS's random
    /// source, such as their credential's seed), under a label of its own.
    pub fn derived_from(secret: &[u8]) -> OrderIdKey {
        let label = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"brewq order ids");
        let derived = ring::hmac::sign(&label, secret);
        OrderIdKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// A key of its own, from the OS's random source: for a controller that runs alone.
    pub fn random() -> OrderIdKey {
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret).expect("the OS's random source answers");
        OrderIdKey::derived_from(&secret)
    }

    /// The id of the order a request asks for: HMAC-SHA-256 of its reply subject (unique to
    /// one request of one client) and its body, 130 of its bits as an order id.
    pub fn order_id(&self, request: &RequestRef) -> String {
        let tag = ring::hmac::sign(&self.0, request.to_string().as_bytes());
        let random: [u8; ORDER_ID_CHARS] = tag.as_ref()[..ORDER_ID_CHARS].try_into().expect("a SHA-256 tag has 32 bytes");
        order_id_from(&random)
    }
}

impl std::fmt::Debug for OrderIdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrderIdKey(<redacted>)")
    }
}

/// What names one request among the controllers: the first 16 bytes of the SHA-256 of its
/// reply subject and its body, written as 32 hex digits between controllers. The same request
/// heard twice has the same reference. Sixteen bytes in place, nothing on the heap: a
/// controller remembers one for every request taken in the last 30 s, thousands in a burst.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestRef([u8; 16]);

impl RequestRef {
    /// The reference of a request: from the id its sender gave it
    /// ([`crate::subjects::REQUEST_ID_HEADER`]) when that is well formed, or else its reply
    /// subject; and its body.
    pub fn of_request(request_id: Option<&str>, reply: &str, body: &[u8]) -> RequestRef {
        match request_id.filter(|id| is_order_id(id)) {
            Some(id) => RequestRef::of(&format!("request-id:{id}"), body),
            None => RequestRef::of(reply, body),
        }
    }

    /// The reference of the request with this reply subject (or sender's id) and body.
    pub fn of(reply: &str, body: &[u8]) -> RequestRef {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(reply.as_bytes());
        context.update(&[0]);
        context.update(body);
        let digest = context.finish();
        RequestRef(digest.as_ref()[..16].try_into().expect("a SHA-256 digest has 32 bytes"))
    }

    /// A reference as another controller sent it (32 lower-case hex digits), if it is one.
    pub fn parse(text: &str) -> Option<RequestRef> {
        let well_formed = text.len() == 32 && text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        well_formed.then(|| RequestRef(std::array::from_fn(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex digits"))))
    }
}

impl std::fmt::Display for RequestRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Hex(&self.0).fmt(f)
    }
}

/// Bytes written as lower-case hex digits, two per byte: digests and tokens where people and
/// keys read them.
pub struct Hex<'a>(pub &'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl std::fmt::Debug for RequestRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestRef({self})")
    }
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
    format!("o-{}", Hex(&digest.as_ref()[..6]))
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
        // The first 6 bytes of the SHA-256, as Python's `hashlib` gives them.
        assert_eq!(reference, "o-71c480df93d6");
        assert_ne!(reference, order_ref("abcdefghijklmnopqrstuvwxy2"));
        assert!(!reference.contains("abcdef"));
    }

    /// Controllers of different releases standing by for one another must give a request the
    /// same id: these values were computed apart from this code (Python's `hmac` and
    /// `hashlib`), from the rule the doc comments state.
    #[test]
    fn a_request_s_reference_and_id_are_those_the_rule_gives() {
        let request = RequestRef::of("_INBOX_web.abc.1", b"{\"name\":\"Ada\"}");
        assert_eq!(request.to_string(), "58f469cbfe1b9ba1f22aab246758a1a3");
        assert_eq!(OrderIdKey::derived_from(b"shared secret").order_id(&request), "6x6zi7wzkixjju7xwlt7bghsdt");
    }

    #[test]
    fn a_request_gives_one_id_under_one_key_and_unrelated_ids_otherwise() {
        let (key, other_key) = (OrderIdKey::derived_from(b"shared secret"), OrderIdKey::derived_from(b"another secret"));
        let request = RequestRef::of("_INBOX_web.abc.1", b"{\"name\":\"Ada\"}");
        let id = key.order_id(&request);
        assert!(is_order_id(&id) && id.len() == ORDER_ID_CHARS);
        assert_eq!(id, OrderIdKey::derived_from(b"shared secret").order_id(&RequestRef::of("_INBOX_web.abc.1", b"{\"name\":\"Ada\"}")));
        assert_ne!(id, other_key.order_id(&request));
        assert_ne!(id, key.order_id(&RequestRef::of("_INBOX_web.abc.2", b"{\"name\":\"Ada\"}")));
        assert_ne!(id, key.order_id(&RequestRef::of("_INBOX_web.abc.1", b"{\"name\":\"Bob\"}")));
        // The reply subject and the body are kept apart: moving a byte from one to the other
        // makes another request.
        assert_ne!(RequestRef::of("ab", b"c"), RequestRef::of("a", b"bc"));
        assert_ne!(key.order_id(&request), OrderIdKey::random().order_id(&request));
    }

    #[test]
    fn a_request_id_names_the_request_whatever_its_reply_subject() {
        let (first, again) =
            (RequestRef::of_request(Some("abc"), "_INBOX_web.a.1", b"{}"), RequestRef::of_request(Some("abc"), "_INBOX_web.b.7", b"{}"));
        assert_eq!(first, again);
        assert_ne!(first, RequestRef::of_request(Some("abd"), "_INBOX_web.a.1", b"{}"));
        assert_ne!(first, RequestRef::of_request(Some("abc"), "_INBOX_web.a.1", b"{ }"));
        // A malformed id is ignored: the reply subject names the request.
        assert_eq!(RequestRef::of_request(Some("a b"), "_INBOX_web.a.1", b"{}"), RequestRef::of("_INBOX_web.a.1", b"{}"));
        assert_ne!(RequestRef::of_request(Some("_INBOX_web.a.1"), "x", b"{}"), RequestRef::of("_INBOX_web.a.1", b"{}"));
    }

    #[test]
    fn request_references_parse_back_and_nothing_else_does() {
        let request = RequestRef::of("_INBOX_web.abc.1", b"{}");
        assert_eq!(RequestRef::parse(&request.to_string()), Some(request));
        for bad in ["", "abc", &"g".repeat(32), &"A".repeat(32), &"a".repeat(33)] {
            assert_eq!(RequestRef::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tickets_cycle_from_1_to_999() {
        assert_eq!([ticket(1), ticket(2), ticket(999), ticket(1000), ticket(0)], [1, 2, 999, 1, 1]);
    }
}
