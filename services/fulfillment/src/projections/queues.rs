//! `FulfillmentQueues`: every fulfillment order's current state, and the queues staff work from.
//!
//! Store staff need two lists at a glance — what customers will collect at the counter, and
//! what the store must ship — and the WMS needs a DC's open work. Scanning every fulfillment
//! order for each request would grow with history, so the view keeps one ordered index per
//! queue and store, updated when an event moves a fulfillment order in or out of it.
//!
//! Each fulfillment order is folded with the domain's own [`Fulfillment::apply`], so the view
//! and the write side cannot disagree on what an event means.
//!
//! # Queues
//!
//! - **Pickup queue** of a store: PICKUP orders at that store while OPEN or PICKED (to
//!   prepare) and READY_FOR_PICKUP (waiting at the counter); SHIP_TO_STORE orders whose
//!   destination is that store once they are SHIPPED (on their way) or READY_FOR_PICKUP. They
//!   leave when picked up, expired or cancelled.
//! - **Outbound tasks** of a location: SHIP and SHIP_TO_STORE orders at that location not yet
//!   shipped (OPEN, PICKED, PACKED). [`FulfillmentQueues::ship_from_store_tasks`] (store app)
//!   and [`FulfillmentQueues::dc_tasks`] (WMS) read the same index: the fulfillment service
//!   does not know whether a location is a store or a DC (inventory does), and the work —
//!   pick, pack, ship — is the same. SHIP_TO_STORE orders are included because the shipping
//!   location packs and ships them just like a parcel to a customer.
//!
//! Queues are oldest first (by the creation's `occurred_at`, then id), paged with the cursor
//! [`QueueEntry::cursor`]. Decisions are never made from this view (the stream decides).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::projection::Projection;
use ichigen_shared::store::{Position, SubscriptionFilter};
use uuid::Uuid;

use crate::domain::{
    Fulfillment, FulfillmentEvent, FulfillmentKind, FulfillmentLine, FulfillmentStatus,
};

#[cfg(test)]
mod tests;

/// A queue cursor: `(created_at, fulfillment_id)`.
pub type QueueCursor = (DateTime<Utc>, Uuid);

/// One fulfillment order as the store app and the WMS list it (an owned copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub fulfillment_id: Uuid,
    pub order_id: Uuid,
    /// The location doing the work.
    pub location: String,
    pub kind: FulfillmentKind,
    /// The store a SHIP_TO_STORE order goes to.
    pub destination_store: Option<String>,
    pub status: FulfillmentStatus,
    /// By line id: quantity still to fulfil, picked, short, cancelled.
    pub lines: Vec<FulfillmentLine>,
    /// When the fulfillment order was created (the event's `occurred_at`).
    pub created_at: DateTime<Utc>,
    /// When its last event happened.
    pub updated_at: DateTime<Utc>,
    pub pickup_code: Option<String>,
    pub pickup_expires_at: Option<DateTime<Utc>>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// Position of the last event applied to it.
    pub position: Position,
}

impl QueueEntry {
    pub fn cursor(&self) -> QueueCursor {
        (self.created_at, self.fulfillment_id)
    }

    /// Where the customer collects (PICKUP: the location; SHIP_TO_STORE: the destination).
    pub fn pickup_store(&self) -> Option<&str> {
        match self.kind {
            FulfillmentKind::Pickup => Some(&self.location),
            FulfillmentKind::ShipToStore => self.destination_store.as_deref(),
            FulfillmentKind::Ship => None,
        }
    }
}

/// The fulfillment queues read model (projection `fulfillment-queues`, category
/// `fulfillment`). Share it in an `Arc`; every read returns owned values.
#[derive(Default)]
pub struct FulfillmentQueues {
    state: RwLock<State>,
}

/// One fulfillment order as folded, with what its events' envelopes said.
struct Tracked {
    state: Fulfillment,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    position: Position,
    /// Last revision applied: a redelivered event is ignored.
    revision: u64,
}

/// A queue a fulfillment order can be in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Queue {
    Pickup(String),
    Outbound(String),
}

/// Per-order maps are B-trees: they grow with every order, and a hash map's doubling moves
/// every entry at once under the view's lock.
#[derive(Default)]
struct State {
    orders: BTreeMap<Uuid, Tracked>,
    by_order: BTreeMap<Uuid, Vec<Uuid>>,
    pickup: HashMap<String, BTreeSet<QueueCursor>>,
    outbound: HashMap<String, BTreeSet<QueueCursor>>,
}

/// The queues a fulfillment order belongs in, given its kind and status.
fn queues_of(f: &Fulfillment) -> Vec<Queue> {
    use FulfillmentKind as K;
    use FulfillmentStatus as S;
    let (Some(created), Some(status)) = (&f.created, f.status) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(1);
    match created.kind {
        K::Pickup => {
            if matches!(status, S::Open | S::Picked | S::ReadyForPickup) {
                out.push(Queue::Pickup(created.location.clone()));
            }
        }
        K::ShipToStore => {
            if let (S::Shipped | S::ReadyForPickup, Some(store)) =
                (status, &created.destination_store)
            {
                out.push(Queue::Pickup(store.clone()));
            }
        }
        K::Ship => {}
    }
    if matches!(created.kind, K::Ship | K::ShipToStore)
        && matches!(status, S::Open | S::Picked | S::Packed)
    {
        out.push(Queue::Outbound(created.location.clone()));
    }
    out
}

impl Tracked {
    fn entry(&self, fulfillment_id: Uuid) -> Option<QueueEntry> {
        let created = self.state.created.as_ref()?;
        Some(QueueEntry {
            fulfillment_id,
            order_id: created.order_id,
            location: created.location.clone(),
            kind: created.kind,
            destination_store: created.destination_store.clone(),
            status: self.state.status?,
            lines: self.state.lines.values().cloned().collect(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            pickup_code: self.state.pickup_code.clone(),
            pickup_expires_at: self.state.pickup_expires_at,
            carrier: self.state.carrier.clone(),
            tracking_number: self.state.tracking_number.clone(),
            position: self.position,
        })
    }
}

impl State {
    fn index(&mut self, queue: &Queue) -> &mut BTreeSet<QueueCursor> {
        match queue {
            Queue::Pickup(store) => self.pickup.entry(store.clone()).or_default(),
            Queue::Outbound(location) => self.outbound.entry(location.clone()).or_default(),
        }
    }

    fn unindex(&mut self, queue: &Queue, cursor: &QueueCursor) {
        let (map, key) = match queue {
            Queue::Pickup(store) => (&mut self.pickup, store),
            Queue::Outbound(location) => (&mut self.outbound, location),
        };
        if let Some(set) = map.get_mut(key) {
            set.remove(cursor);
            if set.is_empty() {
                map.remove(key);
            }
        }
    }

    fn apply(&mut self, id: Uuid, event: &FulfillmentEvent, recorded: &RecordedEvent) {
        let at = recorded.metadata.occurred_at;
        let (before, cursor) = match self.orders.get_mut(&id) {
            Some(tracked) => {
                if recorded.revision <= tracked.revision {
                    return;
                }
                let before = queues_of(&tracked.state);
                tracked.state.apply(event);
                tracked.revision = recorded.revision;
                tracked.updated_at = at;
                tracked.position = recorded.position;
                (before, (tracked.created_at, id))
            }
            None => {
                let FulfillmentEvent::FulfillmentCreated(created) = event else {
                    tracing::debug!(
                        fulfillment_id = %id,
                        event_type = %recorded.event_type,
                        "fulfillment queues: event before the order's creation; skipped"
                    );
                    return;
                };
                self.by_order.entry(created.order_id).or_default().push(id);
                self.orders.insert(
                    id,
                    Tracked {
                        state: Fulfillment::from_events([event]),
                        created_at: at,
                        updated_at: at,
                        position: recorded.position,
                        revision: recorded.revision,
                    },
                );
                (Vec::new(), (at, id))
            }
        };
        let after = self
            .orders
            .get(&id)
            .map(|t| queues_of(&t.state))
            .unwrap_or_default();
        if before == after {
            return;
        }
        for q in before.iter().filter(|q| !after.contains(q)) {
            self.unindex(q, &cursor);
        }
        for q in after.iter().filter(|q| !before.contains(q)) {
            self.index(q).insert(cursor);
        }
    }

    /// Up to `first` entries of `index`, oldest first, strictly after `after`.
    fn page(
        &self,
        index: Option<&BTreeSet<QueueCursor>>,
        after: Option<QueueCursor>,
        first: usize,
    ) -> (Vec<QueueEntry>, bool) {
        let Some(index) = index else {
            return (Vec::new(), false);
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut oldest_first = index.range((lower, Bound::Unbounded));
        let page = oldest_first
            .by_ref()
            .take(first)
            .filter_map(|(_, id)| self.orders.get(id)?.entry(*id))
            .collect();
        (page, oldest_first.next().is_some())
    }
}

/// Decodes one event; `None` (logged) for anything the view cannot use.
fn decode(recorded: &RecordedEvent) -> Option<(Uuid, FulfillmentEvent)> {
    let stream: &str = &recorded.stream;
    let skip = |why: &str, error: Option<&serde_json::Error>| {
        tracing::warn!(
            stream,
            event_type = %recorded.event_type,
            position = %recorded.position,
            error = error.map(tracing::field::display),
            "fulfillment queues: {why}; event skipped"
        );
    };
    let Some(id) = stream
        .strip_prefix(crate::CATEGORY)
        .and_then(|rest| rest.strip_prefix('-'))
    else {
        tracing::debug!(stream, "fulfillment queues: not a fulfillment stream");
        return None;
    };
    let Ok(id) = Uuid::parse_str(id) else {
        skip("stream id is not a UUID", None);
        return None;
    };
    match FulfillmentEvent::decode(&recorded.event_type, &recorded.data) {
        Some(Ok(event)) => Some((id, event)),
        Some(Err(e)) => {
            skip("undecodable fulfillment event", Some(&e));
            None
        }
        None => {
            skip("unknown fulfillment event type", None);
            None
        }
    }
}

impl FulfillmentQueues {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// One fulfillment order, in whatever state.
    pub fn get(&self, fulfillment_id: Uuid) -> Option<QueueEntry> {
        self.read()
            .orders
            .get(&fulfillment_id)?
            .entry(fulfillment_id)
    }

    /// The fulfillment orders of one order, in the order they were created.
    pub fn by_order(&self, order_id: Uuid) -> Vec<QueueEntry> {
        let s = self.read();
        s.by_order
            .get(&order_id)
            .into_iter()
            .flatten()
            .filter_map(|id| s.orders.get(id)?.entry(*id))
            .collect()
    }

    /// What customers will collect at `store` (see the module docs), oldest first, strictly
    /// after `after`; and whether more follow.
    pub fn pickup_queue(
        &self,
        store: &str,
        after: Option<QueueCursor>,
        first: usize,
    ) -> (Vec<QueueEntry>, bool) {
        let s = self.read();
        s.page(s.pickup.get(store), after, first)
    }

    /// What `store` must still pick, pack and ship, oldest first.
    pub fn ship_from_store_tasks(
        &self,
        store: &str,
        after: Option<QueueCursor>,
        first: usize,
    ) -> (Vec<QueueEntry>, bool) {
        let s = self.read();
        s.page(s.outbound.get(store), after, first)
    }

    /// What a DC must still pick, pack and ship (for the WMS), oldest first. The same index as
    /// [`Self::ship_from_store_tasks`]: see the module docs.
    pub fn dc_tasks(
        &self,
        location: &str,
        after: Option<QueueCursor>,
        first: usize,
    ) -> (Vec<QueueEntry>, bool) {
        self.ship_from_store_tasks(location, after, first)
    }

    /// How many fulfillment orders the view holds.
    pub fn len(&self) -> usize {
        self.read().orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().orders.is_empty()
    }
}

impl Projection for FulfillmentQueues {
    fn name(&self) -> &'static str {
        "fulfillment-queues"
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories([crate::CATEGORY])
    }

    fn apply(&self, events: &[RecordedEvent]) {
        let decoded: Vec<(Uuid, FulfillmentEvent, &RecordedEvent)> = events
            .iter()
            .filter_map(|r| decode(r).map(|(id, e)| (id, e, r)))
            .collect();
        if decoded.is_empty() {
            return;
        }
        let mut s = self.write();
        for (id, event, recorded) in &decoded {
            s.apply(*id, event, recorded);
        }
    }
}
