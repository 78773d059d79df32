//! Property tests on every wire type: arbitrary bytes, and JSON objects made of the type's own
//! field names holding good values, wrong types, huge strings and tricky Unicode, either parse
//! (and an order validates) or are refused, an order naming its field; nothing panics. The
//! checks themselves are in `checks.rs`, which the fuzz targets share.

mod checks;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value};

/// Characters that have broken parsers and screens: bidirectional controls, zero-width ones,
/// combining marks, variation selectors, surrogate-range escapes' neighbours, quotes, escapes.
const TRICKY: &[char] = &[
    '\u{202E}',
    '\u{2066}',
    '\u{200B}',
    '\u{200D}',
    '\u{FEFF}',
    '\u{00AD}',
    '\u{0301}',
    '\u{FE0F}',
    '\u{E0041}',
    '\u{3164}',
    '\u{2028}',
    '\u{0000}',
    '\u{001B}',
    '\u{007F}',
    '\u{FFFD}',
    '\u{10FFFF}',
    '"',
    '\\',
    'é',
    '李',
    '🏴',
    ' ',
    '\t',
];

/// Strings: short arbitrary Unicode, plain words, tricky characters among letters, and now
/// and then a huge one.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<String>(),
        3 => "[a-zA-Z0-9 _.-]{0,12}",
        3 => ("[a-zA-Zé ]{0,6}", select(TRICKY), "[a-zA-Z ]{0,6}").prop_map(|(before, c, after)| format!("{before}{c}{after}")),
        1 => (select(TRICKY), 0..64usize).prop_map(|(c, count)| c.to_string().repeat(count)),
        1 => ("[a-zA-Z]{1,3}", 1_000..70_000usize).prop_map(|(piece, count)| piece.repeat(count)),
    ]
    .boxed()
}

/// Numbers at and around the edges of every integer type a field might have.
fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (0..5u64).prop_map(Value::from),
        2 => select(vec![u64::MAX, u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::from(u8::MAX) + 1]).prop_map(Value::from),
        2 => any::<u64>().prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        2 => any::<f64>().prop_map(Value::from),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
fn json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String),];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4).prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
    .boxed()
}

/// One of `words`, as a JSON string, now and then in another case or with spaces around.
fn word(words: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        8 => select(words).prop_map(Value::from),
        1 => select(words).prop_map(|word| Value::from(format!(" {} ", word.to_uppercase()))),
    ]
    .boxed()
}

fn string_of(strategy: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Value> {
    strategy.prop_map(Value::from).boxed()
}

/// An RFC 3339 timestamp: mostly well formed, from year 0 to 9999, and now and then with
/// components at and past their limits.
fn timestamp() -> BoxedStrategy<Value> {
    let zone = (select(&["Z", "+", "-"][..]), 0..=23u32, 0..=59u32);
    let good = (0..=9999u32, 1..=12u32, 1..=28u32, 0..=23u32, 0..=59u32, 0..=60u32, zone);
    let wild = (0..=9999u32, 0..=13u32, 0..=32u32, 0..=25u32, 0..=61u32, 0..=61u32, (select(&["Z", "+", "-"][..]), 0..=25u32, 0..=61u32));
    let written =
        |(year, month, day, hour, minute, second, (zone, zone_hour, zone_minute)): (u32, u32, u32, u32, u32, u32, (&str, u32, u32))| {
            let zone = match zone {
                "Z" => "Z".to_owned(),
                sign => format!("{sign}{zone_hour:02}:{zone_minute:02}"),
            };
            Value::from(format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{zone}"))
        };
    prop_oneof![
        6 => good.prop_map(written),
        2 => wild.prop_map(written),
        1 => select(&["2026-12-01T12:00:00.123456789Z", "9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59"][..]).prop_map(Value::from),
    ]
    .boxed()
}

/// A map from `keys` (and now and then another string) to `values`.
fn map_of(keys: &'static [&'static str], values: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    let key = prop_oneof![12 => select(keys).prop_map(str::to_owned), 1 => text()];
    prop::collection::btree_map(key, values, 0..5).prop_map(|map| Value::Object(map.into_iter().collect())).boxed()
}

/// A JSON object with each of `fields` usually holding a good value, sometimes any value, and
/// sometimes missing, plus now and then a field of no type's.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let slots: Vec<BoxedStrategy<Option<(&'static str, Value)>>> = fields
        .into_iter()
        .map(|(name, good)| {
            prop_oneof![
                12 => good.prop_map(move |value| Some((name, value))),
                1 => json().prop_map(move |value| Some((name, value))),
                1 => Just(None),
            ]
            .boxed()
        })
        .collect();
    (slots, prop::collection::vec((text(), json()), 0..2))
        .prop_map(|(slots, extra)| {
            let mut object: Map<String, Value> = extra.into_iter().collect();
            object.extend(slots.into_iter().flatten().map(|(name, value)| (name.to_owned(), value)));
            Value::Object(object)
        })
        .boxed()
}

/// The bytes of a payload: `value` as JSON, that with one byte changed or cut short, or any
/// bytes at all.
fn payload(value: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    let json_of = |value: Value| serde_json::to_vec(&value).expect("a JSON value serializes");
    prop_oneof![
        6 => value.clone().prop_map(json_of),
        1 => (value.clone(), any::<Index>(), any::<u8>()).prop_map(move |(value, at, byte)| {
            let mut bytes = json_of(value);
            let at = at.index(bytes.len());
            bytes[at] = byte;
            bytes
        }),
        1 => (value, any::<Index>()).prop_map(move |(value, at)| {
            let mut bytes = json_of(value);
            bytes.truncate(at.index(bytes.len()));
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
    .boxed()
}

const SIZES: &[&str] = &["small", "medium", "large", "big"];
const BEANS: &[&str] = &["arabica", "robusta", "mixed"];
const MILKS: &[&str] = &["none", "cow", "soy", "free", "normal", "soja"];
const STATUSES: &[&str] = &["queued", "brewing", "ready", "failed", "cancelled"];
const INGREDIENTS: &[&str] = &["arabica", "robusta", "mixed", "cow_milk", "soy_milk", "sugar"];
const MACHINE_STATES: &[&str] = &["idle", "brewing", "paused", "out_of_service", "stopping"];
const MACHINE_COMMANDS: &[&str] = &["pause", "resume", "out_of_service", "out-of-service"];

fn order_id() -> BoxedStrategy<Value> {
    prop_oneof![3 => string_of("[a-z2-7]{26}"), 1 => string_of("[a-zA-Z0-9_-]{1,64}"), 1 => text().prop_map(Value::from)].boxed()
}

fn name() -> BoxedStrategy<Value> {
    prop_oneof![2 => select(&["Zoë", "François", "李", "Ali", "Quentin"][..]).prop_map(Value::from), 3 => text().prop_map(Value::from)]
        .boxed()
}

fn sugar() -> BoxedStrategy<Value> {
    prop_oneof![3 => (0..=4u8).prop_map(Value::from), 1 => string_of("[0-4]"), 1 => number()].boxed()
}

/// An order request, field by field (the original demo's spellings among them).
fn order_request() -> BoxedStrategy<Value> {
    object(vec![
        ("name", name()),
        ("size", word(SIZES)),
        ("bean_type", word(BEANS)),
        ("milk", word(MILKS)),
        ("sugar_count", sugar()),
        ("idempotency_key", prop_oneof![3 => string_of("[a-zA-Z0-9_-]{1,64}"), 1 => text().prop_map(Value::from)].boxed()),
    ])
}

/// A validated order as records and updates carry it (canonical spellings only parse there).
fn order_fields() -> Vec<(&'static str, BoxedStrategy<Value>)> {
    vec![
        ("name", name()),
        ("size", select(&SIZES[..3]).prop_map(Value::from).boxed()),
        ("bean_type", select(BEANS).prop_map(Value::from).boxed()),
        ("milk", select(&MILKS[..3]).prop_map(Value::from).boxed()),
        ("sugar_count", sugar()),
    ]
}

fn maybe(value: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![3 => value, 1 => Just(Value::Null)].boxed()
}

fn machine_id() -> BoxedStrategy<Value> {
    prop_oneof![(0..8u32).prop_map(Value::from), any::<u32>().prop_map(Value::from)].boxed()
}

fn big_count() -> BoxedStrategy<Value> {
    prop_oneof![(0..100u64).prop_map(Value::from), number()].boxed()
}

fn history_entry() -> BoxedStrategy<Value> {
    object(vec![
        ("status", word(STATUSES)),
        ("at", timestamp()),
        ("machine", maybe(machine_id())),
        ("reason", maybe(text().prop_map(Value::from).boxed())),
    ])
}

fn order_record() -> BoxedStrategy<Value> {
    let mut fields = order_fields();
    fields.extend([
        ("id", order_id()),
        ("status", word(STATUSES)),
        ("machine", maybe(machine_id())),
        ("reason", maybe(text().prop_map(Value::from).boxed())),
        ("attempts", big_count()),
        ("queue_sequence", maybe(big_count())),
        ("retried_as", maybe(order_id())),
        ("history", prop::collection::vec(history_entry(), 0..4).prop_map(Value::Array).boxed()),
    ]);
    object(fields)
}

fn order_update() -> BoxedStrategy<Value> {
    object(vec![
        ("order_id", order_id()),
        ("status", word(STATUSES)),
        ("machine", maybe(machine_id())),
        ("reason", maybe(text().prop_map(Value::from).boxed())),
        ("order", maybe(object(order_fields()))),
        ("settle", any::<bool>().prop_map(Value::Bool).boxed()),
        ("brewing_since", maybe(timestamp())),
    ])
}

fn items() -> BoxedStrategy<Value> {
    map_of(INGREDIENTS, big_count())
}

fn stock_command() -> BoxedStrategy<Value> {
    object(vec![
        ("op", word(&["reserve", "commit", "release", "restock", "threshold", "get", "read"])),
        ("order_id", order_id()),
        ("items", items()),
    ])
}

fn stock_snapshot() -> BoxedStrategy<Value> {
    let level = object(vec![
        ("on_hand", big_count()),
        ("reserved", big_count()),
        ("consumed", big_count()),
        ("added", big_count()),
        ("low_at", big_count()),
    ]);
    object(vec![("levels", map_of(INGREDIENTS, level))])
}

fn stock_reply() -> BoxedStrategy<Value> {
    object(vec![
        ("result", word(&["reserved", "committed", "released", "out_of_stock", "snapshot", "refused", "error"])),
        ("ingredient", word(INGREDIENTS)),
        ("stock", stock_snapshot()),
        ("message", text().prop_map(Value::from).boxed()),
    ])
}

fn reservation() -> BoxedStrategy<Value> {
    object(vec![("items", items()), ("state", word(&["reserved", "committed", "released"]))])
}

fn machine_command() -> BoxedStrategy<Value> {
    prop_oneof![3 => word(MACHINE_COMMANDS), 1 => json()].boxed()
}

fn heartbeat_fields() -> Vec<(&'static str, BoxedStrategy<Value>)> {
    vec![
        ("id", machine_id()),
        ("state", word(MACHINE_STATES)),
        ("order_id", maybe(order_id())),
        ("brewing_since", maybe(timestamp())),
        ("cups", big_count()),
        ("failures", big_count()),
        ("brew_millis", map_of(&SIZES[..3], prop_oneof![(0..60_000u64).prop_map(Value::from), number()].boxed())),
        ("at", timestamp()),
    ]
}

fn machine_view() -> BoxedStrategy<Value> {
    let mut fields = heartbeat_fields();
    fields.extend([("online", any::<bool>().prop_map(Value::Bool).boxed()), ("hold", maybe(word(MACHINE_COMMANDS)))]);
    object(fields)
}

fn order_reply() -> BoxedStrategy<Value> {
    object(vec![
        ("status", word(&["success", "error"])),
        ("message", text().prop_map(Value::from).boxed()),
        ("order_id", maybe(order_id())),
        ("position", maybe(big_count())),
        ("eta_seconds", maybe(big_count())),
        ("code", maybe(word(&["invalid", "out_of_stock", "unavailable", "not_found", "conflict"]))),
        ("field", maybe(text().prop_map(Value::from).boxed())),
    ])
}

fn update_reply() -> BoxedStrategy<Value> {
    object(vec![
        ("result", word(&["applied", "refused", "settled", "not_found", "error"])),
        ("record", order_record()),
        ("message", text().prop_map(Value::from).boxed()),
    ])
}

fn keyed_order() -> BoxedStrategy<Value> {
    object(vec![("order_id", order_id()), ("order", object(order_fields()))])
}

fn dead_letter() -> BoxedStrategy<Value> {
    object(vec![("order_id", order_id()), ("reason", text().prop_map(Value::from).boxed()), ("at", timestamp())])
}

fn audit_entry() -> BoxedStrategy<Value> {
    let words = || text().prop_map(Value::from).boxed();
    object(vec![("at", timestamp()), ("who", words()), ("action", words()), ("target", words()), ("outcome", words())])
}

fn queue_view() -> BoxedStrategy<Value> {
    object(vec![
        ("pending", big_count()),
        ("machines_online", big_count()),
        ("eta_seconds", big_count()),
        ("brew_seconds", map_of(&SIZES[..3], number())),
    ])
}

proptest! {
    // A thousand cases each: the whole file runs in seconds, and the deep checks (an update
    // applied, a heartbeat's waiting times) get well-formed payloads a few hundred times.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn an_order_request_validates_or_names_the_field_at_fault(bytes in payload(order_request())) {
        checks::order_request(&bytes);
    }

    #[test]
    fn a_name_with_a_hidden_character_anywhere_is_refused(
        before in "[a-zA-Zé李 ]{0,8}",
        hidden in select(checks::HIDDEN_IN_NAMES),
        after in "[a-zA-Zë ]{0,8}",
    ) {
        let request = serde_json::json!({
            "name": format!("{before}{hidden}{after}"), "size": "small", "bean_type": "mixed", "milk": "soy", "sugar_count": 0,
        });
        let refused = serde_json::from_value::<brewq_protocol::OrderRequest>(request).expect("an object").validate();
        prop_assert_eq!(refused.map_err(|error| error.field), Err("name"));
    }

    #[test]
    fn an_order_update_parses_and_applies_or_is_refused(bytes in payload(order_update())) {
        checks::order_update(&bytes);
    }

    #[test]
    fn an_order_record_parses_and_moves_or_is_refused(bytes in payload(order_record())) {
        checks::order_record(&bytes);
    }

    #[test]
    fn a_stock_command_parses_with_its_subject_or_is_refused(bytes in payload(stock_command())) {
        checks::stock_command(&bytes);
    }

    #[test]
    fn a_stock_reply_parses_or_is_refused(bytes in payload(stock_reply())) {
        checks::stock_reply(&bytes);
    }

    #[test]
    fn stock_levels_parse_and_are_checked_or_are_refused(bytes in payload(stock_snapshot())) {
        checks::stock_snapshot(&bytes);
    }

    #[test]
    fn a_reservation_parses_or_is_refused(bytes in payload(reservation())) {
        checks::reservation(&bytes);
    }

    #[test]
    fn a_machine_command_parses_or_is_refused(bytes in payload(machine_command())) {
        checks::machine_command(&bytes);
    }

    #[test]
    fn a_heartbeat_parses_and_gives_a_waiting_time_or_is_refused(bytes in payload(object(heartbeat_fields()))) {
        checks::machine_heartbeat(&bytes);
    }

    #[test]
    fn a_machine_view_parses_or_is_refused(bytes in payload(machine_view())) {
        checks::machine_view(&bytes);
    }

    #[test]
    fn an_order_reply_parses_or_is_refused(bytes in payload(order_reply())) {
        checks::order_reply(&bytes);
    }

    #[test]
    fn an_update_reply_parses_or_is_refused(bytes in payload(update_reply())) {
        checks::update_reply(&bytes);
    }

    #[test]
    fn a_keyed_order_parses_or_is_refused(bytes in payload(keyed_order())) {
        checks::keyed_order(&bytes);
    }

    #[test]
    fn a_dead_letter_parses_or_is_refused(bytes in payload(dead_letter())) {
        checks::dead_letter(&bytes);
    }

    #[test]
    fn an_audit_entry_parses_or_is_refused(bytes in payload(audit_entry())) {
        checks::audit_entry(&bytes);
    }

    #[test]
    fn a_queue_view_parses_or_is_refused(bytes in payload(queue_view())) {
        checks::queue_view(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_bytes_are_any_payload_or_refused(payload in 0..checks::PAYLOADS.len(), bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let (_, check) = checks::PAYLOADS[payload];
        check(&bytes);
    }
}
