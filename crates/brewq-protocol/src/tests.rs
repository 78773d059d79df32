//! Unit tests for validation, the recipe, the order state machine and the wire forms.

use serde_json::json;

use crate::record::REMOVED_NAME;
use crate::stock::recipe;
use crate::*;

fn request(value: serde_json::Value) -> OrderRequest {
    serde_json::from_value(value).expect("request parses")
}

fn seed_payload() -> serde_json::Value {
    json!({"size":"medium","bean_type":"Arabica","name":"Quentin","milk":"free","sugar_count":"2"})
}

#[test]
fn the_seed_payload_is_a_valid_order() {
    let order = request(seed_payload()).validate().expect("valid");
    assert_eq!(order.size, Size::Medium);
    assert_eq!(order.bean_type, Bean::Arabica);
    assert_eq!(order.milk, Milk::None);
    assert_eq!(order.sugar_count, 2);
    assert_eq!(order.name, "Quentin");
}

#[test]
fn seed_spellings_map_to_canonical_values() {
    for (milk, expected) in [("normal", Milk::Cow), ("SOJA", Milk::Soy), ("cow", Milk::Cow), ("none", Milk::None)] {
        assert_eq!(Milk::parse(milk), Ok(expected));
    }
    assert_eq!(Size::parse("big"), Ok(Size::Large));
}

#[test]
fn each_bad_field_is_named() {
    let cases = [
        ("name", json!("")),
        ("name", json!("   ")),
        ("name", json!(42)),
        ("name", json!("x".repeat(41))),
        ("name", json!("\u{200B}")),
        ("name", json!(" \u{FEFF}\u{2060} ")),
        ("size", json!("huge")),
        ("size", json!(1)),
        ("bean_type", json!("decaf")),
        ("milk", json!("oat")),
        ("sugar_count", json!(4)),
        ("sugar_count", json!("-1")),
        ("sugar_count", json!("two")),
        ("sugar_count", json!(1.5)),
    ];
    for (field, value) in cases {
        let mut payload = seed_payload();
        payload[field] = value.clone();
        let error = request(payload).validate().expect_err("invalid");
        assert_eq!(error.field, field, "{field} = {value}");
    }
    for field in ["name", "size", "bean_type", "milk", "sugar_count"] {
        let mut payload = seed_payload();
        payload.as_object_mut().expect("object").remove(field);
        assert_eq!(request(payload).validate().expect_err("missing").field, field);
    }
}

#[test]
fn an_order_is_a_json_object_and_nothing_else() {
    for payload in ["[]", r#"["Quentin", "medium", "arabica", "none", 1]"#, "42", r#""order""#] {
        let error = serde_json::from_str::<OrderRequest>(payload).expect_err(payload).to_string();
        assert!(error.contains("expected a map"), "{payload}: {error}");
    }
    let mut payload = seed_payload();
    payload["note"] = json!("extra fields are ignored");
    assert!(request(payload).validate().is_ok());
}

#[test]
fn idempotency_keys_are_checked() {
    let mut payload = seed_payload();
    payload["idempotency_key"] = json!("a b");
    assert_eq!(request(payload.clone()).idempotency_key().expect_err("bad").field, "idempotency_key");
    payload["idempotency_key"] = json!("6f1c-9a_Z");
    assert_eq!(request(payload).idempotency_key(), Ok(Some("6f1c-9a_Z".into())));
}

#[test]
fn the_recipe_counts_beans_milk_and_sugar() {
    let order = Order { name: "A".into(), size: Size::Large, bean_type: Bean::Robusta, milk: Milk::Soy, sugar_count: 3 };
    let items = recipe(&order);
    assert_eq!(items.get(&Ingredient::Robusta), Some(&21));
    assert_eq!(items.get(&Ingredient::SoyMilk), Some(&150));
    assert_eq!(items.get(&Ingredient::Sugar), Some(&3));
    assert_eq!(items.len(), 3);
}

#[test]
fn terminal_states_absorb() {
    let order = request(seed_payload()).validate().expect("valid");
    let mut record = OrderRecord::queued("o1", order, now());
    record.transition(OrderStatus::Brewing, Some(2), None, now()).expect("brew");
    record.transition(OrderStatus::Ready, None, None, now()).expect("ready");
    assert_eq!(record.machine, Some(2));
    for next in [OrderStatus::Queued, OrderStatus::Brewing, OrderStatus::Failed, OrderStatus::Cancelled, OrderStatus::Ready] {
        assert!(record.transition(next, None, None, now()).is_err(), "ready -> {next}");
    }
    assert_eq!(record.history.len(), 3);
}

#[test]
fn an_order_is_settled_by_commit_when_ready_and_by_release_when_it_ended_otherwise() {
    let order = request(seed_payload()).validate().expect("valid");
    let mut record = OrderRecord::queued("o1", order, now());
    let settlement = |record: &OrderRecord| record.settlement();
    assert_eq!(settlement(&record), None, "a queued order is not settled");
    record.transition(OrderStatus::Brewing, Some(1), None, now()).expect("brew");
    assert_eq!(settlement(&record), None, "a brewing order is not settled");
    let mut failed = record.clone();
    record.transition(OrderStatus::Ready, None, None, now()).expect("ready");
    assert_eq!(settlement(&record), Some(StockCommand::Commit { order_id: "o1".into() }));
    failed.transition(OrderStatus::Failed, None, None, now()).expect("failed");
    assert_eq!(settlement(&failed), Some(StockCommand::Release { order_id: "o1".into() }));
}

#[test]
fn a_brewing_order_cannot_be_cancelled() {
    assert!(!OrderStatus::Brewing.can_become(OrderStatus::Cancelled));
    assert!(OrderStatus::Queued.can_become(OrderStatus::Cancelled));
}

#[test]
fn an_order_record_reads_as_the_api_shape() {
    let order = request(seed_payload()).validate().expect("valid");
    let value = serde_json::to_value(OrderRecord::queued("o1", order, now())).expect("json");
    for field in ["id", "name", "size", "bean_type", "milk", "sugar_count", "status", "machine", "history"] {
        assert!(value.get(field).is_some(), "{field} missing in {value}");
    }
    assert_eq!(value["history"][0]["status"], "queued");
}

#[test]
fn a_record_without_its_name_keeps_the_rest_and_reads_back_as_it_was_written() {
    let order = request(seed_payload()).validate().expect("valid");
    let mut record = OrderRecord::queued("o1", order, now());
    record.transition(OrderStatus::Brewing, Some(2), None, now()).expect("brew");
    record.transition(OrderStatus::Ready, None, None, now()).expect("ready");
    let plain = serde_json::to_value(&record).expect("json");
    assert!(plain.get("name_removed_at").is_none(), "left out while the name is there: {plain}");
    assert_eq!(record.shown_name(), "Quentin");

    let removed = record.without_name(now());
    assert_eq!(removed.order.name, "");
    assert_eq!(removed.shown_name(), REMOVED_NAME);
    assert_eq!(
        (removed.status, removed.machine, removed.order.size, &removed.history),
        (record.status, record.machine, record.order.size, &record.history)
    );
    let value = serde_json::to_value(&removed).expect("json");
    assert_eq!(value["name"], "");
    assert_eq!(serde_json::from_value::<OrderRecord>(value).expect("reads back"), removed);
    // A record written before names were removed reads as one that still has its name.
    assert_eq!(serde_json::from_value::<OrderRecord>(plain).expect("reads"), record);

    let view = serde_json::to_value(OrderView::of(removed)).expect("json");
    assert_eq!(view["name"], REMOVED_NAME, "pages show a mark, not an empty name: {view}");
    assert!(view["name_removed_at"].is_string(), "{view}");
}

#[test]
fn a_settled_reply_reads_back_as_written() {
    let order = request(seed_payload()).validate().expect("valid");
    let reply = UpdateReply::Settled { record: OrderRecord::queued("o1", order, now()) };
    let value = serde_json::to_value(&reply).expect("json");
    assert_eq!(value["result"], "settled");
    assert_eq!(serde_json::from_value::<UpdateReply>(value).expect("parses"), reply);
}

#[test]
fn an_instant_brew_records_brewing_at_its_start_and_its_outcome_in_one_change() {
    let order = request(seed_payload()).validate().expect("valid");
    let queued = OrderRecord::queued("o1", order.clone(), now());
    let since = now();
    let ready = OrderUpdate {
        order_id: "o1".into(),
        status: OrderStatus::Ready,
        machine: Some(3),
        reason: None,
        order: Some(order),
        brewing_since: Some(since),
    };
    let at = now();
    let record = queued.updated(&ready, at).expect("queued, then brewing, then ready");
    let steps: Vec<_> = record.history.iter().map(|entry| (entry.status, entry.machine, entry.at)).collect();
    assert_eq!(steps[1..], [(OrderStatus::Brewing, Some(3), since), (OrderStatus::Ready, Some(3), at)]);
    assert_eq!((record.status, record.machine, record.attempts), (OrderStatus::Ready, Some(3), 1));

    // Cancelled while it brewed: refused, as a ready update without the brew's start is.
    let mut cancelled = queued.clone();
    cancelled.transition(OrderStatus::Cancelled, None, None, now()).expect("cancel");
    assert!(cancelled.updated(&ready, now()).is_err());
    let unannounced = OrderUpdate { brewing_since: None, ..ready.clone() };
    assert!(queued.updated(&unannounced, now()).is_err(), "queued cannot become ready without a brew");

    let json = serde_json::to_value(&ready).expect("json");
    assert_eq!(serde_json::from_value::<OrderUpdate>(json).expect("parses"), ready);
    let plain = serde_json::to_value(&unannounced).expect("json");
    assert!(plain.get("brewing_since").is_none(), "left out when none: {plain}");
}

#[test]
fn reject_codes_are_named_as_they_serialize() {
    for code in [RejectCode::Invalid, RejectCode::OutOfStock, RejectCode::Unavailable, RejectCode::NotFound, RejectCode::Conflict] {
        assert_eq!(serde_json::to_value(code).expect("serializes"), code.as_str());
    }
}

#[test]
fn a_hold_is_shown_on_a_machine_whose_state_does_not_show_it_yet() {
    use crate::{MachineCommand, MachineHeartbeat, MachineState, MachineView};
    let beat = |id, state| MachineHeartbeat {
        id,
        state,
        order_id: None,
        brewing_since: None,
        cups: 0,
        failures: 0,
        brew_millis: Default::default(),
        at: crate::now(),
    };
    let mut fleet =
        MachineView::fleet(vec![beat(1, MachineState::Idle), beat(2, MachineState::Paused), beat(3, MachineState::Idle)], crate::now());
    let holds = [(1, MachineCommand::OutOfService), (2, MachineCommand::Pause)].into_iter().collect();
    MachineView::note_holds(&mut fleet, &holds);
    let shown: Vec<_> = fleet.iter().map(|machine| machine.hold).collect();
    assert_eq!(shown, [Some(MachineCommand::OutOfService), None, None]);
}

fn name_check(name: &str) -> Result<String, ValidationError> {
    let mut payload = seed_payload();
    payload["name"] = json!(name);
    request(payload).validate().map(|order| order.name)
}

#[test]
fn names_in_any_script_with_accents_and_emoji_are_accepted() {
    let names = [
        "Zoë",
        "François",
        "李",
        "Ali",
        "علي",
        "José María",
        "Nguye\u{0302}\u{0303}n",
        "Jean-Luc O'Brien",
        "山田 太郎",
        "Ana ☕",
        "\u{2764}\u{FE0F} Léa",
        "1\u{FE0F}\u{20E3}",
        "Ζωή",
        "Анна",
        "👍🏽",
    ];
    for name in names {
        assert_eq!(name_check(name).as_deref(), Ok(name), "{name:?}");
    }
    assert_eq!(name_check("  Zoë \u{3000}").as_deref(), Ok("Zoë"), "surrounding spaces are trimmed");
}

#[test]
fn names_that_could_reorder_or_hide_the_text_around_them_are_refused() {
    let hidden = [
        '\u{202A}',
        '\u{202B}',
        '\u{202C}',
        '\u{202D}',
        '\u{202E}',
        '\u{2066}',
        '\u{2067}',
        '\u{2068}',
        '\u{2069}',
        '\u{200E}',
        '\u{200F}',
        '\u{061C}',
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2060}',
        '\u{2061}',
        '\u{2064}',
        '\u{FEFF}',
        '\u{00AD}',
        '\u{180E}',
        '\u{115F}',
        '\u{1160}',
        '\u{3164}',
        '\u{FFA0}',
        '\u{E0001}',
        '\u{E0041}',
        '\u{E007F}',
        '\u{034F}',
        '\u{2028}',
        '\u{2029}',
        '\u{2800}',
        '\u{0600}',
        '\u{FFF9}',
        '\u{1D173}',
    ];
    for c in hidden {
        let error = name_check(&format!("Ana{c}Bob")).expect_err("refused");
        assert_eq!(error.field, "name", "{c:?}");
        assert!(
            error.message.contains("invisible or text-direction") && error.message.contains(&format!("{:04X}", u32::from(c))),
            "{c:?}: {error}"
        );
    }
    let misplaced = ["\u{0301}Ana", "Ana \u{0301}Bob", "\u{FE0F}", "Ana \u{FE0F}", "\u{E0100}Ana", "Za\u{0301}\u{0302}\u{0303}\u{0304}lgo"];
    for name in misplaced {
        assert_eq!(name_check(name).expect_err(name).field, "name", "{name:?}");
    }
    for blank in ["", "   ", "\u{3000}", "\u{00A0}\t"] {
        assert_eq!(name_check(blank).expect_err(blank), ValidationError { field: "name", message: "is required".into() });
    }
}

#[test]
fn a_refusal_quotes_only_the_start_of_a_long_value() {
    let mut payload = seed_payload();
    payload["size"] = json!(format!("{}\u{202E}", "x".repeat(100_000)));
    let error = request(payload).validate().expect_err("refused");
    assert_eq!(error.field, "size");
    assert!(error.message.len() < 200, "{}", error.message);
    payload = seed_payload();
    payload["milk"] = json!("oat\u{202E}");
    let error = request(payload).validate().expect_err("refused");
    assert!(error.message.contains(r#""oat\u{202e}""#), "escaped, not shown: {}", error.message);
}

#[test]
fn an_order_in_the_work_queue_reads_as_the_request_that_placed_it() {
    let request: OrderRequest =
        serde_json::from_value(json!({"name": "Quentin", "size": "big", "bean_type": "Arabica", "milk": "soja", "sugar_count": "2"}))
            .expect("parses");
    let order = request.validate().expect("valid");
    let queued = serde_json::to_value(&order).expect("json");
    assert_eq!(queued, json!({"name": "Quentin", "size": "large", "bean_type": "arabica", "milk": "soy", "sugar_count": 2}));
    assert_eq!(queued, serde_json::to_value(OrderRequest::from(&order)).expect("json"), "the request's own shape, canonical spellings");
    assert_eq!(serde_json::from_value::<Order>(queued).expect("a machine reads it"), order);
}

#[test]
fn a_machine_command_from_the_hub_is_valid_until_its_time_and_reads_back() {
    let sent = time::macros::datetime!(2026-12-03 10:00 UTC);
    let command = machine::ChainMachineCommand::new(3, MachineCommand::Pause, sent, std::time::Duration::from_secs(15 * 60));
    assert!(command.valid_at(sent) && command.valid_at(time::macros::datetime!(2026-12-03 10:15 UTC)));
    assert!(!command.valid_at(time::macros::datetime!(2026-12-03 10:15:01 UTC)), "a pause that arrives late is dropped");
    assert_eq!(command.valid_until_text(), "2026-12-03T10:15:00Z");
    let wire = serde_json::to_value(&command).expect("json");
    assert_eq!(wire["command"], json!("pause"));
    assert_eq!(serde_json::from_value::<machine::ChainMachineCommand>(wire).expect("reads back"), command);
    // No limit is a limit far away, not an overflow.
    let forever = machine::ChainMachineCommand::new(1, MachineCommand::Resume, sent, std::time::Duration::MAX);
    assert!(forever.valid_at(time::macros::datetime!(2999-01-01 0:00 UTC)));
}
