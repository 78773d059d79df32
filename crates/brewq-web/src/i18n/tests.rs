//! The catalogues against the pages and scripts that use them, and the choice of language.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, HeaderValue, header};

use super::*;

const TEMPLATES: &[&str] = &[
    include_str!("../../assets/index.html"),
    include_str!("../../assets/order.html"),
    include_str!("../../assets/board.html"),
    include_str!("../../assets/admin.html"),
    include_str!("../../assets/admin-login.html"),
    include_str!("../../assets/chain.html"),
];
const SCRIPTS: &[&str] = &[
    include_str!("../../assets/i18n.js"),
    include_str!("../../assets/app.js"),
    include_str!("../../assets/board.js"),
    include_str!("../../assets/admin.js"),
    include_str!("../../assets/chain.js"),
];

/// The `{name}` placeholders of a text.
fn placeholders(text: &str) -> BTreeSet<&str> {
    text.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect()
}

/// The keys a script names literally: `t("key")`, `t("key", …)` (not `split("-")`).
fn literal_keys(script: &str) -> Vec<&str> {
    let calls = script
        .match_indices("t(\"")
        .filter(|(at, _)| !script[..*at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.'));
    calls.filter_map(|(at, _)| script[at + 3..].split_once('"').map(|(key, _)| key)).collect()
}

#[test]
fn both_catalogues_have_the_same_keys_with_the_same_placeholders() {
    let (english, french) = (Lang::En.catalogue(), Lang::Fr.catalogue());
    assert_eq!(english.keys().collect::<Vec<_>>(), french.keys().collect::<Vec<_>>());
    for (key, text) in english {
        assert!(!text.is_empty() && !french[key].is_empty(), "{key} is empty");
        assert_eq!(placeholders(text), placeholders(&french[key]), "{key}");
    }
}

#[test]
fn every_page_renders_every_text_in_both_languages() {
    for lang in Lang::ALL {
        for template in TEMPLATES {
            let mut rest = *template;
            while let Some(start) = rest.find("{{") {
                let end = rest[start..].find("}}").expect("a closed placeholder");
                let key = &rest[start + 2..start + end];
                assert!(["lang", "catalogue"].contains(&key) || lang.catalogue().contains_key(key), "{key} missing in {lang:?}");
                rest = &rest[start + end..];
            }
            let page = render(template, lang);
            assert!(!page.contains("{{") && page.contains(&format!("<html lang=\"{}\">", lang.code())));
        }
    }
}

#[test]
fn every_text_a_script_writes_is_in_the_catalogue() {
    let catalogue = Lang::En.catalogue();
    assert!(literal_keys(SCRIPTS[1]).len() > 20, "the scan finds the calls");
    for script in SCRIPTS {
        for key in literal_keys(script) {
            assert!(catalogue.contains_key(key), "{key} is used by a script and missing");
        }
    }
    // Keys the scripts make from values: every value has its text.
    let families: &[(&str, &[&str])] = &[
        ("state.", &["queued", "brewing", "ready", "failed", "cancelled"]),
        ("size.", &["small", "medium", "large"]),
        ("bean.", &["arabica", "robusta", "mixed"]),
        ("machine.", &["idle", "brewing", "paused", "pause", "out_of_service", "stopping"]),
        ("ingredient.", &["arabica", "robusta", "mixed", "cow_milk", "soy_milk", "sugar"]),
        ("unit.", &["g", "ml", "lumps", "g.name", "ml.name", "lumps.name"]),
        ("error.code.", &["invalid", "out_of_stock", "unavailable", "not_found", "conflict"]),
        ("error.field.", &["name", "size", "bean_type", "milk", "sugar_count"]),
        ("admin.action.", &["pause", "resume", "out-of-service"]),
        ("admin.error.", &["400", "403", "404", "409", "503"]),
    ];
    for (prefix, values) in families {
        for value in *values {
            assert!(catalogue.contains_key(&format!("{prefix}{value}")), "{prefix}{value} missing");
        }
    }
    for status in ["queued", "brewing", "ready", "failed", "cancelled"] {
        for suffix in ["", ".named"] {
            assert!(catalogue.contains_key(&format!("headline.{status}{suffix}")), "headline.{status}{suffix} missing");
        }
    }
    for ingredient in brewq_protocol::Ingredient::ALL {
        assert!(catalogue.contains_key(&format!("unit.{}", ingredient.unit())), "{ingredient}");
    }
}

#[test]
fn the_language_comes_from_the_address_then_the_cookie_then_the_browser() {
    let mut headers = HeaderMap::new();
    assert_eq!(Lang::of_request(None, &headers), Lang::En);
    headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("de-DE, en;q=0.5, fr-CA;q=0.8"));
    assert_eq!(Lang::of_request(None, &headers), Lang::Fr);
    headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("fr;q=0, en-GB"));
    assert_eq!(Lang::of_request(None, &headers), Lang::En);
    headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("fr;q=nonsense, de"));
    assert_eq!(Lang::of_request(None, &headers), Lang::En);
    headers.insert(header::COOKIE, HeaderValue::from_static("other=1; brewq_lang=fr"));
    assert_eq!(Lang::of_request(None, &headers), Lang::Fr);
    assert_eq!(Lang::of_request(Some("en"), &headers), Lang::En);
    // A language we do not have is no choice.
    assert_eq!(Lang::of_request(Some("xx"), &headers), Lang::Fr);
}

#[test]
fn a_chosen_language_is_remembered_and_a_page_is_locked_down() {
    let response = page(TEMPLATES[0], Some("fr"), &HeaderMap::new());
    let cookie = response.headers()[header::SET_COOKIE].to_str().expect("text");
    assert!(cookie.starts_with("brewq_lang=fr;") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert_eq!(response.headers()[header::CONTENT_LANGUAGE], "fr");
    assert!(response.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("text").contains("script-src 'self'"));
    assert!(page(TEMPLATES[0], None, &HeaderMap::new()).headers().get(header::SET_COOKIE).is_none());
}

#[test]
fn nothing_rendered_can_open_markup_or_close_the_catalogue_script() {
    assert_eq!(escape(r#"<b a="1">'&"#), "&lt;b a=&quot;1&quot;&gt;&#39;&amp;");
    for lang in Lang::ALL {
        assert!(!catalogue_json(lang).contains('<'));
    }
}
