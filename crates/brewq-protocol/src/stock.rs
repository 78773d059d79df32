//! Ingredients, the recipe (the one place that says what an order consumes) and the stock
//! manager's request/reply messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Bean, Milk, Order, Size};

/// Something the stock manager counts. Beans in grams, milk in millilitres, sugar in lumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ingredient {
    Arabica,
    Robusta,
    Mixed,
    CowMilk,
    SoyMilk,
    Sugar,
}

impl Ingredient {
    /// Every ingredient, in display order.
    pub const ALL: &[Ingredient] =
        &[Ingredient::Arabica, Ingredient::Robusta, Ingredient::Mixed, Ingredient::CowMilk, Ingredient::SoyMilk, Ingredient::Sugar];

    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Ingredient::Arabica => "arabica",
            Ingredient::Robusta => "robusta",
            Ingredient::Mixed => "mixed",
            Ingredient::CowMilk => "cow_milk",
            Ingredient::SoyMilk => "soy_milk",
            Ingredient::Sugar => "sugar",
        }
    }

    /// Words for a person ("arabica beans").
    pub fn label(self) -> &'static str {
        match self {
            Ingredient::Arabica => "arabica beans",
            Ingredient::Robusta => "robusta beans",
            Ingredient::Mixed => "mixed beans",
            Ingredient::CowMilk => "cow milk",
            Ingredient::SoyMilk => "soy milk",
            Ingredient::Sugar => "sugar",
        }
    }

    /// The unit amounts are counted in.
    pub fn unit(self) -> &'static str {
        match self {
            Ingredient::Arabica | Ingredient::Robusta | Ingredient::Mixed => "g",
            Ingredient::CowMilk | Ingredient::SoyMilk => "ml",
            Ingredient::Sugar => "lumps",
        }
    }

    /// Parses the serialized name.
    pub fn parse(text: &str) -> Option<Ingredient> {
        Ingredient::ALL.iter().copied().find(|ingredient| ingredient.as_str() == text.trim())
    }
}

impl std::fmt::Display for Ingredient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Amounts per ingredient; absent means zero.
pub type Items = BTreeMap<Ingredient, u64>;

/// Grams of beans for a cup of each size.
pub fn beans_for(size: Size) -> u64 {
    match size {
        Size::Small => 7,
        Size::Medium => 14,
        Size::Large => 21,
    }
}

/// Millilitres of milk for a cup of each size, when the order has milk.
pub fn milk_for(size: Size) -> u64 {
    match size {
        Size::Small => 60,
        Size::Medium => 100,
        Size::Large => 150,
    }
}

/// The recipe: what one order consumes.
pub fn recipe(order: &Order) -> Items {
    let mut items = Items::new();
    let bean = match order.bean_type {
        Bean::Arabica => Ingredient::Arabica,
        Bean::Robusta => Ingredient::Robusta,
        Bean::Mixed => Ingredient::Mixed,
    };
    items.insert(bean, beans_for(order.size));
    match order.milk {
        Milk::None => {}
        Milk::Cow => {
            items.insert(Ingredient::CowMilk, milk_for(order.size));
        }
        Milk::Soy => {
            items.insert(Ingredient::SoyMilk, milk_for(order.size));
        }
    }
    if order.sugar_count > 0 {
        items.insert(Ingredient::Sugar, u64::from(order.sugar_count));
    }
    items
}

/// Where an order's reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Reserved,
    Committed,
    Released,
}

/// One order's reservation record, as the stock manager keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub items: Items,
    pub state: ReservationState,
}

/// A request to the stock managers, on [`crate::subjects::stock_subject`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum StockCommand {
    /// Set aside `items` for `order_id`, all or nothing. Idempotent per order id.
    Reserve { order_id: String, items: Items },
    /// The order was brewed: its reservation is consumed. Idempotent.
    Commit { order_id: String },
    /// The order failed or was cancelled: its reservation goes back on hand. Idempotent.
    Release { order_id: String },
    /// Adds `items` to what is on hand; once per `request_id` (the sender's, for the retries
    /// of one restock) among the last [`RESTOCKS_REMEMBERED`].
    Restock {
        items: Items,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// Sets the low-stock alert level of each ingredient in `items`.
    Threshold { items: Items },
    /// Reads the levels.
    Get,
}

impl StockCommand {
    /// The operation's name, also the last token of its subject.
    pub fn op(&self) -> &'static str {
        match self {
            StockCommand::Reserve { .. } => "reserve",
            StockCommand::Commit { .. } => "commit",
            StockCommand::Release { .. } => "release",
            StockCommand::Restock { .. } => "restock",
            StockCommand::Threshold { .. } => "threshold",
            StockCommand::Get => "read",
        }
    }

    /// The order the command is about, if it is about one.
    pub fn order_id(&self) -> Option<&str> {
        match self {
            StockCommand::Reserve { order_id, .. } | StockCommand::Commit { order_id } | StockCommand::Release { order_id } => {
                Some(order_id)
            }
            StockCommand::Restock { .. } | StockCommand::Threshold { .. } | StockCommand::Get => None,
        }
    }
}

/// What one ingredient's stock looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    /// Free to reserve.
    pub on_hand: u64,
    /// Set aside for accepted orders not yet brewed.
    pub reserved: u64,
    /// Used by brewed orders, ever.
    pub consumed: u64,
    /// Initial stock plus every restock, ever. Always `on_hand + reserved + consumed`.
    pub added: u64,
    /// Below this much on hand, the operator is alerted.
    #[serde(default)]
    pub low_at: u64,
}

impl StockLevel {
    /// True when the operator should restock.
    pub fn is_low(&self) -> bool {
        self.on_hand < self.low_at
    }
}

/// The default low-stock level: enough for about twenty large cups.
pub fn default_low_at(ingredient: Ingredient) -> u64 {
    match ingredient {
        Ingredient::Arabica | Ingredient::Robusta | Ingredient::Mixed => 20 * beans_for(Size::Large),
        Ingredient::CowMilk | Ingredient::SoyMilk => 20 * milk_for(Size::Large),
        Ingredient::Sugar => 20 * u64::from(crate::order::MAX_SUGAR),
    }
}

/// Restock request ids a levels document remembers: far more than the retries of the restocks
/// of a few minutes (a shop restocks a few times a day).
pub const RESTOCKS_REMEMBERED: usize = 64;

/// The stock bucket's `levels` document: every ingredient's level, changed by the stock
/// managers' compare-and-swap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelsDoc {
    pub levels: BTreeMap<Ingredient, StockLevel>,
    /// The request ids of the last [`RESTOCKS_REMEMBERED`] restocks that carried one, the
    /// latest last: a restock sent again under one of them is not applied again.
    #[serde(default, skip_serializing_if = "std::collections::VecDeque::is_empty")]
    pub restocks: std::collections::VecDeque<String>,
    /// In a shop of a chain, the sequence of the last command from the chain applied (in the
    /// shop's commands stream): a command delivered again is not applied twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chain_applied: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl LevelsDoc {
    /// The document of a new stock: `initial` on hand (and added), default alert levels.
    pub fn initial(initial: &Items) -> LevelsDoc {
        let levels = Ingredient::ALL
            .iter()
            .map(|&ingredient| {
                let amount = initial.get(&ingredient).copied().unwrap_or(0);
                (ingredient, StockLevel { on_hand: amount, added: amount, low_at: default_low_at(ingredient), ..StockLevel::default() })
            })
            .collect();
        LevelsDoc { levels, ..LevelsDoc::default() }
    }
}

/// All levels, as the stock manager reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSnapshot {
    pub levels: BTreeMap<Ingredient, StockLevel>,
}

/// The stock manager's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StockReply {
    /// The order's ingredients are set aside (now or earlier).
    Reserved,
    /// The order's ingredients are consumed (now or earlier).
    Committed,
    /// The order's ingredients are back on hand (now or earlier).
    Released,
    /// Not enough of `ingredient`; nothing was reserved.
    OutOfStock { ingredient: Ingredient },
    /// The levels after a restock or read.
    Snapshot { stock: StockSnapshot },
    /// The command asks for what the stock cannot do (a restock past what it can count);
    /// nothing changed. `message` names the ingredient.
    Refused { message: String },
    /// The command could not be carried out; `message` says why.
    Error { message: String },
}
