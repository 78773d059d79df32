//! A customer's order: the lenient wire form ([`OrderRequest`], the original demo's payload works as is)
//! and the validated form ([`Order`]) that the rest of the system trusts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest accepted customer name, in characters.
pub const MAX_NAME_CHARS: usize = 40;
/// Most lumps of sugar a coffee can take.
pub const MAX_SUGAR: u8 = 3;

/// An order as it arrives over NATS or HTTP. Every field is kept as raw JSON so that
/// validation can name the exact field at fault, whatever its type. Read from a JSON object
/// only (a derived reader would also take an array, field by position).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "serde_json::Map<String, Value>")]
pub struct OrderRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bean_type: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milk: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sugar_count: Option<Value>,
    /// Makes retries of the same submission one order (also the HTTP `Idempotency-Key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<Value>,
}

/// A validated order: every value is one the recipe knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub name: String,
    pub size: Size,
    pub bean_type: Bean,
    pub milk: Milk,
    pub sugar_count: u8,
}

/// What an idempotency key stands for, in the idempotency bucket: the order placed under it,
/// so that the key reused for a different order is refused instead of answered with the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedOrder {
    pub order_id: String,
    pub order: Order,
}

/// Bad input, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal, { $($variant:ident => $canonical:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The canonical spelling, as serialized.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $canonical),+ }
            }

            /// Parses any accepted spelling, case-insensitively.
            pub fn parse(text: &str) -> Result<Self, ValidationError> {
                match text.trim().to_ascii_lowercase().as_str() {
                    $($canonical $(| $alias)* => Ok($name::$variant),)+
                    _ => Err(ValidationError::new($field, format!(
                        "unknown {} {}; expected one of: {}", $field, quoted(text),
                        [$($canonical),+].join(", ")))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// Cup size. The original demo's `big` is accepted for `large`.
    Size, "size", { Small => "small", Medium => "medium", Large => "large" | "big" }
);
word_enum!(
    /// Bean type.
    Bean, "bean_type", { Arabica => "arabica", Robusta => "robusta", Mixed => "mixed" }
);
word_enum!(
    /// Milk. The original demo's `free`, `normal` and `soja` are accepted.
    Milk, "milk", { None => "none" | "free", Cow => "cow" | "normal", Soy => "soy" | "soja" }
);

impl From<serde_json::Map<String, Value>> for OrderRequest {
    /// Picks the order's fields out of a JSON object; others are ignored.
    fn from(mut object: serde_json::Map<String, Value>) -> Self {
        let mut take = |field: &str| object.remove(field).filter(|value| !value.is_null());
        OrderRequest {
            name: take("name"),
            size: take("size"),
            bean_type: take("bean_type"),
            milk: take("milk"),
            sugar_count: take("sugar_count"),
            idempotency_key: take("idempotency_key"),
        }
    }
}

impl OrderRequest {
    /// Checks every field and returns the order, or the first field at fault.
    pub fn validate(&self) -> Result<Order, ValidationError> {
        Ok(Order {
            name: parse_name(self.name.as_ref())?,
            size: Size::parse(required_str("size", self.size.as_ref())?)?,
            bean_type: Bean::parse(required_str("bean_type", self.bean_type.as_ref())?)?,
            milk: Milk::parse(required_str("milk", self.milk.as_ref())?)?,
            sugar_count: parse_sugar(self.sugar_count.as_ref())?,
        })
    }

    /// The idempotency key, if one was given and is well formed.
    pub fn idempotency_key(&self) -> Result<Option<String>, ValidationError> {
        match &self.idempotency_key {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(key)) => check_idempotency_key(key).map(Some),
            Some(_) => Err(ValidationError::new("idempotency_key", "must be a string")),
        }
    }
}

impl From<&Order> for OrderRequest {
    fn from(order: &Order) -> Self {
        OrderRequest {
            name: Some(Value::from(order.name.clone())),
            size: Some(Value::from(order.size.as_str())),
            bean_type: Some(Value::from(order.bean_type.as_str())),
            milk: Some(Value::from(order.milk.as_str())),
            sugar_count: Some(Value::from(order.sugar_count)),
            idempotency_key: None,
        }
    }
}

/// Accepts 1 to 64 characters of letters, digits, `-` and `_` (a UUID fits).
pub fn check_idempotency_key(key: &str) -> Result<String, ValidationError> {
    // A key is stored under its own name in the idempotency bucket: the rule of order ids.
    if crate::ids::is_order_id(key) {
        Ok(key.to_owned())
    } else {
        Err(ValidationError::new("idempotency_key", "must be 1 to 64 characters of letters, digits, '-' or '_'"))
    }
}

/// Longest piece of a refused value that an error message quotes back.
const QUOTED_CHARS: usize = 24;

/// `text` quoted and escaped for an error message, cut short: a refusal does not send back
/// (nor put in a log) the megabyte it was given.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{:?}…", &text[..end]),
        None => format!("{text:?}"),
    }
}

fn required_str<'a>(field: &'static str, value: Option<&'a Value>) -> Result<&'a str, ValidationError> {
    match value {
        None | Some(Value::Null) => Err(ValidationError::new(field, "is required")),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(ValidationError::new(field, "must be a string")),
    }
}

fn parse_name(value: Option<&Value>) -> Result<String, ValidationError> {
    let name = required_str("name", value)?.trim();
    if name.is_empty() {
        return Err(ValidationError::new("name", "is required"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ValidationError::new("name", format!("must be at most {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new("name", "must not contain control characters"));
    }
    if let Some(hidden) = name.chars().find(|c| is_hidden(*c)) {
        let message = format!("must not contain invisible or text-direction characters (U+{:04X})", u32::from(hidden));
        return Err(ValidationError::new("name", message));
    }
    check_marks(name)?;
    Ok(name.to_owned())
}

/// Characters that print as nothing or change how the text around them shows, and so have no
/// place in a name on a public screen: every format character (Unicode category Cf: the
/// bidirectional embeddings, overrides, isolates and marks, zero-width spaces and joiners, the
/// byte-order mark, the soft hyphen, tags), the other default-ignorable ones (the combining
/// grapheme joiner, the Hangul fillers, the unassigned code points kept for format characters),
/// the braille blank, and the line and paragraph separators. Ranges are inclusive.
const HIDDEN: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{2028}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E00FF}'),
    ('\u{E01F0}', '\u{E0FFF}'),
];

/// Combining marks of the generic blocks (accents that stack on any letter) and variation
/// selectors: each belongs on the character before it, so a name may not start with one, put
/// one on a space, or pile up more than [`MAX_MARKS_IN_A_ROW`] (text that spills over the
/// lines around it).
const MARKS: &[(char, char)] = &[
    ('\u{0300}', '\u{036F}'),
    ('\u{180B}', '\u{180D}'),
    ('\u{180F}', '\u{180F}'),
    ('\u{1AB0}', '\u{1AFF}'),
    ('\u{1DC0}', '\u{1DFF}'),
    ('\u{20D0}', '\u{20FF}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FE20}', '\u{FE2F}'),
    ('\u{E0100}', '\u{E01EF}'),
];

/// Most combining marks and variation selectors in a row (a letter with two accents and an
/// emoji's presentation selector fit).
pub const MAX_MARKS_IN_A_ROW: usize = 3;

fn in_table(table: &[(char, char)], c: char) -> bool {
    table.iter().any(|(first, last)| (*first..=*last).contains(&c))
}

fn is_hidden(c: char) -> bool {
    in_table(HIDDEN, c)
}

fn check_marks(name: &str) -> Result<(), ValidationError> {
    let mut before = ' ';
    let mut in_a_row = 0;
    for c in name.chars() {
        if !in_table(MARKS, c) {
            (before, in_a_row) = (c, 0);
            continue;
        }
        if before.is_whitespace() {
            return Err(ValidationError::new("name", "must not have an accent or variation selector without a letter before it"));
        }
        in_a_row += 1;
        if in_a_row > MAX_MARKS_IN_A_ROW {
            return Err(ValidationError::new("name", format!("must not stack more than {MAX_MARKS_IN_A_ROW} accents on one letter")));
        }
    }
    Ok(())
}

fn parse_sugar(value: Option<&Value>) -> Result<u8, ValidationError> {
    let out_of_range = || ValidationError::new("sugar_count", format!("must be a whole number from 0 to {MAX_SUGAR}"));
    let count = match value {
        None | Some(Value::Null) => return Err(ValidationError::new("sugar_count", "is required")),
        Some(Value::Number(number)) => number.as_u64().ok_or_else(out_of_range)?,
        Some(Value::String(text)) => text.trim().parse::<u64>().map_err(|_| out_of_range())?,
        Some(_) => return Err(out_of_range()),
    };
    u8::try_from(count).ok().filter(|count| *count <= MAX_SUGAR).ok_or_else(out_of_range)
}
