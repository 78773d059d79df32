//! French and English: one catalogue per language (`assets/i18n/*.json`, key to text), the
//! language of a request (`?lang=`, then the `brewq_lang` cookie, then `Accept-Language`),
//! and the pages rendered in it. A page names its texts `{{key}}`; its script reads the same
//! catalogue, embedded in the page, for what it writes itself (errors included).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The cookie that remembers the language a visitor chose.
pub const COOKIE: &str = "brewq_lang";

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

type Catalogue = BTreeMap<String, String>;

static CATALOGUES: LazyLock<[Catalogue; 2]> = LazyLock::new(|| {
    // Both are ours, compiled in, and checked by the unit tests: unreadable is impossible.
    let read = |text: &str| serde_json::from_str(text).expect("a catalogue is a JSON object of strings");
    [read(include_str!("../assets/i18n/en.json")), read(include_str!("../assets/i18n/fr.json"))]
});

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The language tag.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The language with this tag (or a regional variant of it: `fr-CA`).
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|lang| lang.code() == primary)
    }

    /// The language of a request: one asked in the address (`?lang=fr`), else the one
    /// remembered in the cookie, else the visitor's favourite of ours in `Accept-Language`,
    /// else English.
    pub fn of_request(query: Option<&str>, headers: &HeaderMap) -> Lang {
        query.and_then(Lang::parse).or_else(|| cookie(headers)).or_else(|| accepted(headers)).unwrap_or(Lang::En)
    }

    fn catalogue(self) -> &'static Catalogue {
        &CATALOGUES[self as usize]
    }

    /// The text of `key`; empty when missing (the unit tests see that none is).
    pub fn text(self, key: &str) -> &'static str {
        self.catalogue().get(key).map(String::as_str).unwrap_or("")
    }
}

fn cookie(headers: &HeaderMap) -> Option<Lang> {
    let cookies = headers.get_all(header::COOKIE).into_iter().filter_map(|value| value.to_str().ok());
    cookies.flat_map(|line| line.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then(|| Lang::parse(value)).flatten()
    })
}

/// The language of ours with the highest weight in `Accept-Language`.
fn accepted(headers: &HeaderMap) -> Option<Lang> {
    let line = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let weighted = line.split(',').filter_map(|range| {
        let mut parts = range.split(';');
        let lang = Lang::parse(parts.next()?)?;
        let weight = parts.find_map(|part| part.trim().strip_prefix("q=")).map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
        (weight > 0.0).then_some((lang, weight))
    });
    weighted
        .fold(None, |best: Option<(Lang, f32)>, (lang, weight)| match best {
            Some((_, top)) if top >= weight => best,
            _ => Some((lang, weight)),
        })
        .map(|(lang, _)| lang)
}

/// `template` in `lang`: each `{{key}}` becomes the key's text, escaped for HTML; `{{lang}}`
/// the language tag; `{{catalogue}}` the whole catalogue as JSON, safe inside a
/// `<script type="application/json">`.
pub fn render(template: &str, lang: Lang) -> String {
    let mut page = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        page.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { break };
        let key = &rest[start + 2..start + end];
        match key {
            "lang" => page.push_str(lang.code()),
            "catalogue" => page.push_str(&catalogue_json(lang)),
            _ => page.push_str(&escape(lang.text(key))),
        }
        rest = &rest[start + end + 2..];
    }
    page.push_str(rest);
    page
}

fn catalogue_json(lang: Lang) -> String {
    let json = serde_json::to_string(lang.catalogue()).unwrap_or_default();
    // No `<` at all: nothing in it can close the script element it sits in.
    json.replace('<', "\\u003c")
}

/// `text` safe in HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Every page's policy: scripts, styles, images and connections from this origin only, no
/// framing, no plugins; what a name or a catalogue could smuggle in runs nowhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A page response: `template` rendered in the request's language, the choice remembered in
/// a cookie when the address asked for one.
pub fn page(template: &str, query: Option<&str>, headers: &HeaderMap) -> Response {
    let lang = Lang::of_request(query, headers);
    let mut response = axum::response::Html(render(template, lang)).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    response_headers.insert(header::VARY, HeaderValue::from_static("Cookie, Accept-Language"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response_headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response_headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if query.and_then(Lang::parse).is_some() {
        let cookie = format!("{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response_headers.insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// The `lang` of a query string, if any.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

#[cfg(test)]
mod tests;
