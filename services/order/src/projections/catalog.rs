//! `CatalogView`: every catalog item in memory, by SKU — what orders price their lines from
//! (after waiting for the position a catalog write returned, when they must see it) and what
//! the PIM API reads back.
//!
//! A catalog is thousands to a few hundred thousand SKUs of a few hundred bytes each: memory is
//! cheap next to a store read per order line. The view folds each SKU with the domain's own
//! [`CatalogState::apply`], so view and write side cannot disagree on what an event means.

use crate::domain::catalog::{CatalogEvent, CatalogItem, CatalogState};
use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::projection::Projection;
use ichigen_shared::store::SubscriptionFilter;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The catalog read model (projection name `catalog-view`, category `catalog`).
#[derive(Default)]
pub struct CatalogView {
    items: RwLock<BTreeMap<String, CatalogItem>>,
}

impl CatalogView {
    pub fn new() -> Self {
        Self::default()
    }

    /// The item of `sku`, active or not; `None` if never defined.
    pub fn get(&self, sku: &str) -> Option<CatalogItem> {
        self.read().get(sku).cloned()
    }

    /// Whether `sku` is in the catalog and active: what the order service prices and sells.
    pub fn sells(&self, sku: &str) -> bool {
        self.read().get(sku).is_some_and(|i| i.active)
    }

    /// Up to `first` items ordered by SKU, starting after `after_sku` (exclusive), and whether
    /// more follow: a forward page for listings and exports.
    pub fn list(&self, after_sku: Option<&str>, first: usize) -> (Vec<CatalogItem>, bool) {
        let items = self.read();
        let start = match after_sku {
            Some(sku) => Bound::Excluded(sku),
            None => Bound::Unbounded,
        };
        let mut range = items.range::<str, _>((start, Bound::Unbounded));
        let page: Vec<CatalogItem> = range.by_ref().take(first).map(|(_, i)| i.clone()).collect();
        (page, range.next().is_some())
    }

    /// How many SKUs are defined.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, CatalogItem>> {
        self.items.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, CatalogItem>> {
        self.items.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl Projection for CatalogView {
    fn name(&self) -> &'static str {
        "catalog-view"
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories([crate::CATALOG_CATEGORY])
    }

    fn apply(&self, events: &[RecordedEvent]) {
        let mut items = self.write();
        for r in events {
            let Some(sku) = r.stream.strip_prefix("catalog-") else {
                continue;
            };
            let event = match CatalogEvent::decode(&r.event_type, &r.data) {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    tracing::warn!(stream = %r.stream, event_type = %r.event_type, error = %e,
                        "catalog view: unreadable event skipped");
                    continue;
                }
                None => {
                    tracing::warn!(stream = %r.stream, event_type = %r.event_type,
                        "catalog view: unknown event type skipped");
                    continue;
                }
            };
            let mut state = CatalogState {
                item: items.remove(sku),
            };
            state.apply(&event);
            if let Some(item) = state.item {
                items.insert(sku.to_string(), item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{decide, stream_name, CatalogCommand, ItemSpec};
    use ichigen_shared::envelope::{Actor, Metadata};
    use ichigen_shared::money::Money;
    use ichigen_shared::store::Position;
    use uuid::Uuid;

    fn recorded(sku: &str, event: &CatalogEvent, at: u64) -> RecordedEvent {
        RecordedEvent {
            id: Uuid::new_v4(),
            stream: stream_name(sku).into(),
            revision: 0,
            position: Position::sequence(at),
            event_type: event.event_type().into(),
            data: event.payload_json().unwrap().into(),
            metadata: Metadata::new(Actor::system("test")),
        }
    }

    fn upsert(view: &CatalogView, sku: &str, title: &str, active: bool, at: u64) {
        let state = CatalogState {
            item: view.get(sku),
        };
        let spec = ItemSpec {
            title: title.into(),
            price: Money::parse("100", "JPY").unwrap(),
            attributes: Default::default(),
            active,
        };
        let events = decide(&state, sku, &CatalogCommand::Upsert(spec)).unwrap();
        let recorded: Vec<_> = events.iter().map(|e| recorded(sku, e, at)).collect();
        view.apply(&recorded);
    }

    #[test]
    fn items_are_kept_by_sku_and_paged_in_order() {
        let view = CatalogView::new();
        for (i, sku) in ["C", "A", "B", "D"].iter().enumerate() {
            upsert(&view, sku, &format!("Item {sku}"), true, i as u64);
        }
        upsert(&view, "B", "Renamed", false, 9);
        assert_eq!(view.len(), 4);
        let b = view.get("B").unwrap();
        assert_eq!((b.title.as_str(), b.active), ("Renamed", false));
        let (page, more) = view.list(None, 2);
        assert_eq!(
            page.iter().map(|i| i.sku.as_str()).collect::<Vec<_>>(),
            ["A", "B"]
        );
        assert!(more);
        let (page, more) = view.list(Some("B"), 2);
        assert_eq!(
            page.iter().map(|i| i.sku.as_str()).collect::<Vec<_>>(),
            ["C", "D"]
        );
        assert!(!more);
        assert!(view.get("Z").is_none());
    }
}
