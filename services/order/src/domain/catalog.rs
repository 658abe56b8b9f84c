//! The catalog item aggregate: one per SKU, stream `catalog-<SKU>`, as the PIM sends it.
//!
//! The PIM is the system of record for what a SKU is and costs; it sends whole items
//! (absolute upserts), possibly again and again. So [`CatalogCommand::Upsert`] is absolute and
//! idempotent: re-sending the same content decides no events, and a change records only the
//! fields that changed ([`CatalogItemChanged`]), so that the stream is a readable price and
//! title history. Whether an item can be sold is a separate fact (`active`), recorded as its
//! own events because orders react to it.
//!
//! Orders price their lines from this catalog, never from what a client sends.

use crate::CATALOG_CATEGORY;
use ichigen_shared::money::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Most attributes one item carries.
pub const MAX_ATTRIBUTES: usize = 200;
/// Longest attribute name, in characters.
pub const MAX_ATTRIBUTE_NAME_CHARS: usize = 100;
/// Longest attribute value, in characters.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 2000;

/// The stream of one SKU's catalog item.
pub fn stream_name(sku: &str) -> String {
    ichigen_shared::ids::stream_name(CATALOG_CATEGORY, sku)
}

/// A SKU usable in a stream name: the rule every service shares
/// ([`ichigen_shared::ids::validate_sku`]), so that any catalog SKU can be stocked.
pub fn validate_sku(sku: &str) -> Result<(), CatalogError> {
    ichigen_shared::ids::validate_sku(sku).map_err(|reason| CatalogError::InvalidInput {
        field: "sku",
        reason,
    })
}

/// Why a catalog command was refused. A refused command appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogError {
    /// A field the PIM sent is malformed or out of range.
    #[error("{field} is invalid: {reason}")]
    InvalidInput {
        field: &'static str,
        reason: &'static str,
    },
    /// Activation or deactivation of a SKU that was never defined.
    #[error("catalog item {sku} is not defined")]
    UnknownItem { sku: String },
}

impl CatalogError {
    /// The stable SCREAMING_SNAKE code the API layers put into their error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            CatalogError::InvalidInput { .. } => "INVALID_INPUT",
            CatalogError::UnknownItem { .. } => "NOT_FOUND",
        }
    }

    /// The input field to blame (the PIM API's camelCase spelling).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            CatalogError::InvalidInput { field, .. } => Some(field),
            CatalogError::UnknownItem { .. } => Some("sku"),
        }
    }
}

/// What the PIM says a SKU is (the content of an upsert).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemSpec {
    pub title: String,
    pub price: Money,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub active: bool,
}

/// A catalog item as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItem {
    pub sku: String,
    pub title: String,
    pub price: Money,
    pub attributes: BTreeMap<String, String>,
    pub active: bool,
}

/// The folded stream: `None` until the item is defined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogState {
    pub item: Option<CatalogItem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogCommand {
    /// The whole item (absolute): defines it, or changes what differs.
    Upsert(ItemSpec),
    /// Takes the item out of sale (orders refuse it); idempotent.
    Deactivate,
    /// Puts it back on sale; idempotent.
    Activate,
}

/// The first upsert of a SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItemDefined {
    pub sku: String,
    pub title: String,
    pub price: Money,
    pub attributes: BTreeMap<String, String>,
    pub active: bool,
}

/// A later upsert: only the fields that changed are present.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItemChanged {
    pub sku: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    /// The whole new attribute map (attributes are replaced together, as the PIM sends them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// The item is no longer sold (placeOrder refuses it; availability leaves it out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItemDeactivated {
    pub sku: String,
}

/// The item is sold again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItemActivated {
    pub sku: String,
}

/// Every event of a catalog stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogEvent {
    Defined(CatalogItemDefined),
    Changed(CatalogItemChanged),
    Deactivated(CatalogItemDeactivated),
    Activated(CatalogItemActivated),
}

pub const DEFINED: &str = "CatalogItemDefined.v1";
pub const CHANGED: &str = "CatalogItemChanged.v1";
pub const DEACTIVATED: &str = "CatalogItemDeactivated.v1";
pub const ACTIVATED: &str = "CatalogItemActivated.v1";

impl CatalogEvent {
    /// The versioned type name stored with the event.
    pub fn event_type(&self) -> &'static str {
        match self {
            CatalogEvent::Defined(_) => DEFINED,
            CatalogEvent::Changed(_) => CHANGED,
            CatalogEvent::Deactivated(_) => DEACTIVATED,
            CatalogEvent::Activated(_) => ACTIVATED,
        }
    }

    /// The payload as stored in the event's data (camelCase JSON).
    pub fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            CatalogEvent::Defined(p) => serde_json::to_vec(p),
            CatalogEvent::Changed(p) => serde_json::to_vec(p),
            CatalogEvent::Deactivated(p) => serde_json::to_vec(p),
            CatalogEvent::Activated(p) => serde_json::to_vec(p),
        }
    }

    /// Reads a stored event back from its type and data; `None` for a type this aggregate does
    /// not know.
    pub fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
        Some(match event_type {
            DEFINED => serde_json::from_slice(data).map(CatalogEvent::Defined),
            CHANGED => serde_json::from_slice(data).map(CatalogEvent::Changed),
            DEACTIVATED => serde_json::from_slice(data).map(CatalogEvent::Deactivated),
            ACTIVATED => serde_json::from_slice(data).map(CatalogEvent::Activated),
            _ => return None,
        })
    }
}

impl CatalogState {
    /// Evolves the state by one event (events are facts: this never fails; a change to an
    /// undefined item, which `decide` never produces, is ignored).
    pub fn apply(&mut self, event: &CatalogEvent) {
        match event {
            CatalogEvent::Defined(e) => {
                self.item = Some(CatalogItem {
                    sku: e.sku.clone(),
                    title: e.title.clone(),
                    price: e.price,
                    attributes: e.attributes.clone(),
                    active: e.active,
                })
            }
            CatalogEvent::Changed(e) => {
                if let Some(item) = &mut self.item {
                    if let Some(title) = &e.title {
                        item.title = title.clone();
                    }
                    if let Some(price) = e.price {
                        item.price = price;
                    }
                    if let Some(attributes) = &e.attributes {
                        item.attributes = attributes.clone();
                    }
                }
            }
            CatalogEvent::Deactivated(_) => {
                if let Some(item) = &mut self.item {
                    item.active = false;
                }
            }
            CatalogEvent::Activated(_) => {
                if let Some(item) = &mut self.item {
                    item.active = true;
                }
            }
        }
    }
}

/// Checks an upsert's content. A currency change is allowed (a re-priced market); the amount
/// is not rounded here: the PIM's price is taken as sent.
pub fn validate_spec(spec: &ItemSpec) -> Result<(), CatalogError> {
    let invalid = |field, reason| Err(CatalogError::InvalidInput { field, reason });
    if spec.title.trim().is_empty() {
        return invalid("title", "must not be empty");
    }
    if spec.title.chars().count() > MAX_TITLE_CHARS {
        return invalid("title", "must be at most 200 characters");
    }
    if spec.price.amount < Decimal::ZERO {
        return invalid("price", "must not be negative");
    }
    if spec.attributes.len() > MAX_ATTRIBUTES {
        return invalid("attributes", "at most 200 attributes");
    }
    for (name, value) in &spec.attributes {
        if name.trim().is_empty() || name.chars().count() > MAX_ATTRIBUTE_NAME_CHARS {
            return invalid("attributes", "names must be 1-100 characters");
        }
        if value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
            return invalid("attributes", "values must be at most 2000 characters");
        }
    }
    Ok(())
}

/// Decides a command on `sku`'s item: the events to append (none when nothing changes).
pub fn decide(
    state: &CatalogState,
    sku: &str,
    command: &CatalogCommand,
) -> Result<Vec<CatalogEvent>, CatalogError> {
    validate_sku(sku)?;
    let sku = sku.to_string();
    match (command, &state.item) {
        (CatalogCommand::Upsert(spec), None) => {
            validate_spec(spec)?;
            Ok(vec![CatalogEvent::Defined(CatalogItemDefined {
                sku,
                title: spec.title.clone(),
                price: spec.price,
                attributes: spec.attributes.clone(),
                active: spec.active,
            })])
        }
        (CatalogCommand::Upsert(spec), Some(item)) => {
            validate_spec(spec)?;
            let changed = CatalogItemChanged {
                sku: sku.clone(),
                title: (spec.title != item.title).then(|| spec.title.clone()),
                // Money compares amount and currency: 1990 JPY ≠ 19.90 USD, and 10.0 = 10.00
                // (the same price written twice is no change).
                price: (spec.price != item.price).then_some(spec.price),
                attributes: (spec.attributes != item.attributes).then(|| spec.attributes.clone()),
            };
            let mut events = Vec::new();
            if changed
                != (CatalogItemChanged {
                    sku: sku.clone(),
                    ..Default::default()
                })
            {
                events.push(CatalogEvent::Changed(changed));
            }
            match (item.active, spec.active) {
                (true, false) => {
                    events.push(CatalogEvent::Deactivated(CatalogItemDeactivated { sku }))
                }
                (false, true) => events.push(CatalogEvent::Activated(CatalogItemActivated { sku })),
                _ => {}
            }
            Ok(events)
        }
        (CatalogCommand::Deactivate | CatalogCommand::Activate, None) => {
            Err(CatalogError::UnknownItem { sku })
        }
        (CatalogCommand::Deactivate, Some(item)) => Ok(if item.active {
            vec![CatalogEvent::Deactivated(CatalogItemDeactivated { sku })]
        } else {
            Vec::new()
        }),
        (CatalogCommand::Activate, Some(item)) => Ok(if item.active {
            Vec::new()
        } else {
            vec![CatalogEvent::Activated(CatalogItemActivated { sku })]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(title: &str, amount: &str) -> ItemSpec {
        ItemSpec {
            title: title.into(),
            price: Money::parse(amount, "JPY").unwrap(),
            attributes: BTreeMap::from([("color".into(), "red".into())]),
            active: true,
        }
    }

    /// Given `history`, when `command` runs on SKU-1: its events (or refusal).
    fn when(
        history: &[CatalogEvent],
        command: CatalogCommand,
    ) -> Result<Vec<CatalogEvent>, CatalogError> {
        let mut state = CatalogState::default();
        for e in history {
            state.apply(e);
        }
        decide(&state, "SKU-1", &command)
    }

    fn defined() -> Vec<CatalogEvent> {
        when(&[], CatalogCommand::Upsert(spec("Tee", "1990"))).unwrap()
    }

    #[test]
    fn a_first_upsert_defines_the_item() {
        let events = defined();
        assert_eq!(events.len(), 1);
        let CatalogEvent::Defined(d) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (d.sku.as_str(), d.title.as_str(), d.active),
            ("SKU-1", "Tee", true)
        );
        assert_eq!(d.price, Money::parse("1990", "JPY").unwrap());
    }

    #[test]
    fn the_same_content_again_is_a_no_op() {
        let history = defined();
        assert_eq!(
            when(&history, CatalogCommand::Upsert(spec("Tee", "1990"))),
            Ok(vec![])
        );
        // The same amount written with another scale is the same price.
        assert_eq!(
            when(&history, CatalogCommand::Upsert(spec("Tee", "1990.0"))),
            Ok(vec![])
        );
    }

    #[test]
    fn a_change_records_only_what_changed() {
        let history = defined();
        let events = when(&history, CatalogCommand::Upsert(spec("Tee", "2490"))).unwrap();
        assert_eq!(
            events,
            vec![CatalogEvent::Changed(CatalogItemChanged {
                sku: "SKU-1".into(),
                price: Some(Money::parse("2490", "JPY").unwrap()),
                ..Default::default()
            })]
        );
        let json = String::from_utf8(events[0].payload_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"sku":"SKU-1","price":{"amount":"2490","currency":"JPY"}}"#
        );
        // A currency change is allowed.
        let usd = ItemSpec {
            price: Money::parse("19.90", "USD").unwrap(),
            ..spec("Tee", "0")
        };
        let events = when(&history, CatalogCommand::Upsert(usd)).unwrap();
        assert!(matches!(&events[..], [CatalogEvent::Changed(c)] if c.price.is_some()));
    }

    #[test]
    fn active_changes_are_their_own_events() {
        let history = defined();
        let off = ItemSpec {
            active: false,
            ..spec("Tee v2", "1990")
        };
        let events = when(&history, CatalogCommand::Upsert(off)).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event_type(), CHANGED);
        assert_eq!(events[1].event_type(), DEACTIVATED);
        let mut all = history.clone();
        all.extend(events);
        assert_eq!(when(&all, CatalogCommand::Deactivate), Ok(vec![]));
        let on = when(&all, CatalogCommand::Activate).unwrap();
        assert_eq!(on[0].event_type(), ACTIVATED);
        assert_eq!(
            when(&history, CatalogCommand::Deactivate).unwrap()[0].event_type(),
            DEACTIVATED
        );
    }

    #[test]
    fn bad_input_is_refused_with_its_field() {
        let field = |command| when(&[], command).unwrap_err().field();
        assert_eq!(field(CatalogCommand::Upsert(spec(" ", "1"))), Some("title"));
        let long = "x".repeat(MAX_TITLE_CHARS + 1);
        assert_eq!(
            field(CatalogCommand::Upsert(spec(&long, "1"))),
            Some("title")
        );
        let exact = "é".repeat(MAX_TITLE_CHARS);
        assert!(when(&[], CatalogCommand::Upsert(spec(&exact, "1"))).is_ok());
        assert_eq!(
            field(CatalogCommand::Upsert(spec("Tee", "-1"))),
            Some("price")
        );
        let mut odd = spec("Tee", "1");
        odd.attributes.insert(String::new(), "v".into());
        assert_eq!(field(CatalogCommand::Upsert(odd)), Some("attributes"));
        let unknown = when(&[], CatalogCommand::Deactivate).unwrap_err();
        assert_eq!(
            (unknown.code(), unknown.field()),
            ("NOT_FOUND", Some("sku"))
        );
        let bad_sku = decide(&CatalogState::default(), "A B", &CatalogCommand::Activate);
        assert_eq!(bad_sku.unwrap_err().field(), Some("sku"));
    }

    #[test]
    fn events_round_trip_through_their_stored_form() {
        let mut history = defined();
        history.extend(when(&history, CatalogCommand::Deactivate).unwrap());
        for event in history {
            let data = event.payload_json().unwrap();
            let back = CatalogEvent::decode(event.event_type(), &data)
                .unwrap()
                .unwrap();
            assert_eq!(back, event);
        }
        assert!(CatalogEvent::decode("Other.v1", b"{}").is_none());
    }
}
