//! `ReturnsView`: every return as customers, store associates and CS agents see it — its folded
//! state, where it stands, a timeline of every event — with the agents' work queue, the
//! customers' own list and a live feed of changes.
//!
//! # Why the domain's own fold
//!
//! Each return stream (`rma-<uuid>`) is folded with [`Rma::apply`] and its status taken from
//! [`Rma::status`], the functions the write side decides with, so the view cannot disagree with
//! the handlers about what was received, graded or settled, or about the status a command will
//! be checked against. What the view adds is only derived from that state (reason codes,
//! receiving locations) or from the envelope (timeline: when, who, where in the store).
//!
//! The policy stream `rma-policy` shares the category but is not a return; it is skipped.
//! Events the view cannot read (an unknown type, a payload that does not parse, a stream id
//! that is not a UUID, an event of a return whose request it never saw) are skipped with a
//! warning: one bad event must not stop every read of every return. An event redelivered by
//! the store (at or below the revision already applied to its return) is ignored.
//!
//! # Reads
//!
//! Every read copies what it returns out of a shared lock, so no caller holds the lock while it
//! serialises a response. Listings page newest first by `(requested_at, rma_id)`, the cursor
//! [`ReturnRecord::cursor`] returns; [`ReturnsView::queue`] takes every filter at once (the
//! customers' own list is the queue filtered by their id) and walks the smallest index that
//! can answer it (order, customer, or the statuses asked for) before checking the rest.
//!
//! # Read-your-writes
//!
//! The view itself does not know store positions beyond what it applied. Whoever spawns it
//! ([`ReturnsView::spawn`] or `ichigen_shared::projection::spawn`) keeps the returned
//! [`ProjectionHandle`] and, after a write at position `p`, calls
//! [`ProjectionHandle::wait_for`]`(p, timeout)` before reading, as the order service does with
//! its status view.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::projection::{Projection, ProjectionHandle};
use ichigen_shared::store::{DynEventStore, Position, SubscriptionFilter};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::rma::ReturnRequested;
use crate::domain::{Disposition, Rma, RmaEvent, RmaStatus, POLICY_STREAM};

#[cfg(test)]
mod tests;

/// Updates buffered per subscriber before a slow one sees `RecvError::Lagged`.
pub const UPDATE_FEED_CAPACITY: usize = 1024;

/// A cursor of the return listings: `(requested_at, rma_id)`.
pub type ReturnCursor = (DateTime<Utc>, Uuid);

/// One event of a return, as its timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTimelineEntry {
    /// When it happened in the business (`metadata.occurred_at`).
    pub at: DateTime<Utc>,
    /// Versioned event type, e.g. `ReturnUnitsReceived.v1`.
    pub event_type: String,
    /// One human-readable sentence.
    pub summary: String,
    /// The subject of the actor who caused it (customer id, agent, WMS, `system`…).
    pub actor: String,
    pub position: Position,
}

/// Everything the view knows about one return (an owned copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRecord {
    /// The id of its stream (`rma-<rma_id>`).
    pub rma_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Option<String>,
    /// The subject who asked for it (the customer, or the agent acting for them).
    pub requested_by: String,
    /// [`Rma::status`] of the folded return.
    pub status: RmaStatus,
    /// The return folded with the domain's own `apply`: lines, decision, units, settlements.
    pub rma: Rma,
    /// The request's business time: the listing order.
    pub requested_at: DateTime<Utc>,
    /// `occurred_at` of the last event applied.
    pub updated_at: DateTime<Utc>,
    /// Distinct reason codes of its lines, in line order.
    pub reason_codes: Vec<String>,
    /// Distinct locations units were received at, in the order they first arrived.
    pub locations: Vec<String>,
    /// Every event of the return, in position order.
    pub timeline: Vec<ReturnTimelineEntry>,
    /// Position of the last event applied (what a reader waited for).
    pub position: Position,
}

impl ReturnRecord {
    /// The listing cursor of this return.
    pub fn cursor(&self) -> ReturnCursor {
        (self.requested_at, self.rma_id)
    }

    /// Re-derives what the record keeps beside the folded state, after a fold.
    fn refresh(&mut self) {
        if let Some(h) = &self.rma.header {
            self.order_id = h.order_id;
            self.customer_id.clone_from(&h.customer_id);
            self.requested_by.clone_from(&h.requested_by);
            self.requested_at = h.requested_at;
        }
        if let Some(status) = self.rma.status() {
            self.status = status;
        }
        self.reason_codes = distinct(self.rma.lines.iter().map(|l| l.line.reason.code.as_str()));
        self.locations = distinct(self.rma.units.iter().map(|u| u.location.as_str()));
    }
}

/// Which returns a listing shows. Every field is optional and the ones given must all hold;
/// the default shows every return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnFilter {
    /// Any of these statuses (an empty list matches nothing).
    pub statuses: Option<Vec<RmaStatus>>,
    pub customer_id: Option<String>,
    pub order_id: Option<Uuid>,
    /// One of its lines has this reason code.
    pub reason_code: Option<String>,
    /// Some of its units were received at this location.
    pub location: Option<String>,
    /// Requested at or after this instant.
    pub requested_from: Option<DateTime<Utc>>,
    /// Requested strictly before this instant (half-open, so adjacent ranges do not overlap).
    pub requested_to: Option<DateTime<Utc>>,
}

impl ReturnFilter {
    /// Whether `record` passes every condition given.
    pub fn matches(&self, record: &ReturnRecord) -> bool {
        self.statuses
            .as_ref()
            .is_none_or(|s| s.contains(&record.status))
            && self
                .customer_id
                .as_ref()
                .is_none_or(|c| record.customer_id.as_ref() == Some(c))
            && self.order_id.is_none_or(|o| o == record.order_id)
            && self
                .reason_code
                .as_ref()
                .is_none_or(|c| record.reason_codes.contains(c))
            && self
                .location
                .as_ref()
                .is_none_or(|l| record.locations.contains(l))
            && self.requested_from.is_none_or(|f| record.requested_at >= f)
            && self.requested_to.is_none_or(|t| record.requested_at < t)
    }

    /// The cursor range the dates and `after` leave, newest end excluded; `None` when empty.
    fn range(
        &self,
        after: Option<ReturnCursor>,
    ) -> Option<(Bound<ReturnCursor>, Bound<ReturnCursor>)> {
        // `Uuid::nil()` is the smallest id: `(t, nil)` sorts before every return requested at t.
        let lower = self
            .requested_from
            .map_or(Bound::Unbounded, |f| Bound::Included((f, Uuid::nil())));
        let to = self.requested_to.map(|t| (t, Uuid::nil()));
        let upper = match (after, to) {
            (Some(a), Some(t)) => Bound::Excluded(a.min(t)),
            (Some(c), None) | (None, Some(c)) => Bound::Excluded(c),
            (None, None) => Bound::Unbounded,
        };
        // `BTreeSet::range` panics on an inverted range; an inverted one is simply empty.
        if let (Bound::Included(l), Bound::Excluded(u)) = (&lower, &upper) {
            if l > u {
                return None;
            }
        }
        Some((lower, upper))
    }
}

/// A change of one return: one per return event applied, for the returns subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnUpdate {
    pub rma_id: Uuid,
    pub order_id: Uuid,
    /// The return's customer, so a subscription can check the owner without a lookup.
    pub customer_id: Option<String>,
    /// The status after the event.
    pub status: RmaStatus,
    pub event_type: String,
    /// The timeline's sentence for the event.
    pub summary: String,
    /// When it happened (`metadata.occurred_at`).
    pub at: DateTime<Utc>,
    /// Position of the event: a subscriber that lagged re-reads the return from here.
    pub position: Position,
}

/// The returns read model (projection `returns-view`, category `rma`). Share it in an `Arc`;
/// every read returns owned values.
pub struct ReturnsView {
    state: RwLock<State>,
    updates: broadcast::Sender<ReturnUpdate>,
}

/// One return with what the view needs besides the public record.
struct Entry {
    record: ReturnRecord,
    /// Last revision of the return's stream applied: a redelivered event is ignored.
    revision: u64,
}

/// What the listings are indexed by; re-indexed when a fold changes any of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Keys {
    cursor: ReturnCursor,
    customer_id: Option<String>,
    order_id: Uuid,
    status: RmaStatus,
}

impl Keys {
    fn of(r: &ReturnRecord) -> Self {
        Keys {
            cursor: r.cursor(),
            customer_id: r.customer_id.clone(),
            order_id: r.order_id,
            status: r.status,
        }
    }
}

#[derive(Default)]
struct State {
    returns: HashMap<Uuid, Entry>,
    all: BTreeSet<ReturnCursor>,
    by_customer: HashMap<String, BTreeSet<ReturnCursor>>,
    by_order: HashMap<Uuid, BTreeSet<ReturnCursor>>,
    /// The agents' queues are by status; a status changes, so the index moves with it.
    by_status: HashMap<RmaStatus, BTreeSet<ReturnCursor>>,
}

/// A return event of a batch, decoded before the write lock is taken.
struct Decoded<'a> {
    rma_id: Uuid,
    event: RmaEvent,
    recorded: &'a RecordedEvent,
}

fn decode(recorded: &RecordedEvent) -> Option<Decoded<'_>> {
    let stream: &str = &recorded.stream;
    let skip = |why: &str, error: Option<&serde_json::Error>| {
        tracing::warn!(
            stream,
            event_type = %recorded.event_type,
            position = %recorded.position,
            error = error.map(tracing::field::display),
            "returns view: {why}; event skipped"
        );
    };
    if recorded.category() != crate::CATEGORY {
        tracing::debug!(stream, "returns view: not a return stream");
        return None;
    }
    if stream == POLICY_STREAM {
        // Reasons and grades: the return events snapshot what they used, so nothing to read.
        return None;
    }
    let Some(Ok(rma_id)) = stream.split_once('-').map(|(_, id)| Uuid::parse_str(id)) else {
        skip("stream id is not a UUID", None);
        return None;
    };
    match RmaEvent::decode_recorded(recorded) {
        Some(Ok(event)) => Some(Decoded {
            rma_id,
            event,
            recorded,
        }),
        Some(Err(e)) => {
            skip("undecodable return event", Some(&e));
            None
        }
        None => {
            skip("unknown return event type", None);
            None
        }
    }
}

/// Distinct values in first-seen order (a return has a handful of reasons and locations).
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Summaries.

/// `A ×2, B ×1`, counting equal names together in first-seen order.
fn counted<'a>(names: impl Iterator<Item = (&'a str, i64)>) -> String {
    let mut counts: Vec<(&str, i64)> = Vec::new();
    for (name, qty) in names {
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, q)) => *q = q.saturating_add(qty),
            None => counts.push((name, qty)),
        }
    }
    let mut out = String::new();
    for (i, (name, qty)) in counts.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{name} ×{qty}");
    }
    out
}

fn with_note(sentence: String, note: &str) -> String {
    if note.trim().is_empty() {
        sentence
    } else {
        format!("{sentence}: {}", note.trim())
    }
}

fn summary(event: &RmaEvent) -> String {
    match event {
        RmaEvent::ReturnRequested(e) => {
            let units: i64 = e.lines.iter().map(|l| l.qty).sum();
            let mut lines = String::new();
            for (i, l) in e.lines.iter().enumerate() {
                if i > 0 {
                    lines.push_str(", ");
                }
                let _ = write!(lines, "{} ×{} ({})", l.sku, l.qty, l.reason.code);
            }
            format!(
                "Return of {units} unit(s) requested by {}: {lines}",
                e.requested_by
            )
        }
        RmaEvent::ReturnApproved(e) if e.auto => {
            "Approved by the return policy: every reason is approved at once".to_owned()
        }
        RmaEvent::ReturnApproved(e) => with_note(format!("Approved by {}", e.by), &e.note),
        RmaEvent::ReturnRejected(e) => with_note(format!("Rejected by {}", e.by), &e.note),
        RmaEvent::ReturnReceived(e) => format!(
            "{} unit(s) received at {} (receipt {}): {}",
            e.units.len(),
            e.location,
            e.receipt_id,
            counted(e.units.iter().map(|u| (u.sku.as_str(), 1)))
        ),
        RmaEvent::UnitGraded(e) => {
            let what = match (&e.disposition, &e.resale_sku, &e.resale_price) {
                (Disposition::Restock, _, _) => "back to stock".to_owned(),
                (Disposition::Resale { .. }, Some(sku), Some(price)) => {
                    format!("resale as {sku} at {price}")
                }
                (Disposition::Resale { .. }, _, _) => "resale".to_owned(),
                (Disposition::Dispose, _, _) => "disposed of".to_owned(),
                (Disposition::ReturnToVendor, _, _) => "returned to the vendor".to_owned(),
            };
            format!(
                "{} ({}) at {} graded {}: {what}",
                e.unit_id, e.sku, e.location, e.grade.code
            )
        }
        RmaEvent::RefundIssued(e) => format!(
            "{} refunded for {} unit(s) (reference {}; gross {}, restocking fee {}, return \
             shipping {}{})",
            e.amount,
            e.units.len(),
            e.payment_reference,
            e.breakdown.gross,
            e.breakdown.restocking_fee,
            e.breakdown.shipping_fee,
            if e.breakdown.capped {
                "; capped to what the order could still refund"
            } else {
                ""
            }
        ),
        RmaEvent::ExchangeOrdered(e) => format!(
            "Exchange order {} placed for {} unit(s): replacement {}, credit {}, difference {}",
            e.exchange_order_id,
            e.units.len(),
            e.replacement_total,
            e.credit,
            e.difference
        ),
        RmaEvent::ReturnClosed(e) => format!(
            "Closed by {} from {}: {} of {} unit(s) received, {} refunded",
            e.by, e.closed_from, e.units_received, e.units_requested, e.refunded
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Applying events.

impl Entry {
    /// A new return from its request; the fold fills the rest.
    fn requested(rma_id: Uuid, r: &ReturnRequested, recorded: &RecordedEvent) -> Self {
        if r.rma_id != rma_id {
            tracing::warn!(
                stream = %recorded.stream,
                payload_rma_id = %r.rma_id,
                "returns view: request names another return than its stream; keyed by the stream"
            );
        }
        Entry {
            record: ReturnRecord {
                rma_id,
                order_id: r.order_id,
                customer_id: r.customer_id.clone(),
                requested_by: r.requested_by.clone(),
                status: RmaStatus::Requested,
                rma: Rma::default(),
                requested_at: r.requested_at,
                updated_at: recorded.metadata.occurred_at,
                reason_codes: Vec::new(),
                locations: Vec::new(),
                timeline: Vec::new(),
                position: recorded.position,
            },
            revision: recorded.revision,
        }
    }

    fn apply(&mut self, event: &RmaEvent, recorded: &RecordedEvent) -> ReturnUpdate {
        self.revision = recorded.revision;
        let record = &mut self.record;
        record.rma.apply(event);
        record.refresh();
        let summary = summary(event);
        let entry = ReturnTimelineEntry {
            at: recorded.metadata.occurred_at,
            event_type: recorded.event_type.to_string(),
            summary: summary.clone(),
            actor: recorded.metadata.actor.subject.clone(),
            position: recorded.position,
        };
        // Events arrive in position order; the search only guards against a store that does
        // not deliver them so.
        let timeline = &mut record.timeline;
        if timeline
            .last()
            .is_none_or(|last| last.position <= entry.position)
        {
            timeline.push(entry);
        } else {
            let at = timeline.partition_point(|t| t.position <= entry.position);
            timeline.insert(at, entry);
        }
        if record.position <= recorded.position {
            record.position = recorded.position;
            record.updated_at = recorded.metadata.occurred_at;
        }
        ReturnUpdate {
            rma_id: record.rma_id,
            order_id: record.order_id,
            customer_id: record.customer_id.clone(),
            status: record.status,
            event_type: recorded.event_type.to_string(),
            summary,
            at: recorded.metadata.occurred_at,
            position: recorded.position,
        }
    }
}

impl State {
    fn apply(&mut self, decoded: Decoded<'_>, out: &mut Vec<ReturnUpdate>) {
        let Decoded {
            rma_id,
            event,
            recorded,
        } = decoded;
        let before = match self.returns.get(&rma_id) {
            Some(entry) if recorded.revision <= entry.revision => {
                tracing::debug!(
                    stream = %recorded.stream,
                    revision = recorded.revision,
                    "returns view: event already applied; ignored"
                );
                return;
            }
            Some(entry) => Some(Keys::of(&entry.record)),
            None => None,
        };
        let entry = match (&before, &event) {
            (Some(_), _) => self.returns.get_mut(&rma_id),
            (None, RmaEvent::ReturnRequested(r)) => Some(
                self.returns
                    .entry(rma_id)
                    .or_insert_with(|| Entry::requested(rma_id, r, recorded)),
            ),
            (None, _) => {
                tracing::warn!(
                    stream = %recorded.stream,
                    event_type = %recorded.event_type,
                    position = %recorded.position,
                    "returns view: event of a return never requested; skipped"
                );
                return;
            }
        };
        let Some(entry) = entry else { return };
        out.push(entry.apply(&event, recorded));
        let after = Keys::of(&entry.record);
        if before.as_ref() != Some(&after) {
            if let Some(before) = before {
                self.unindex(&before);
            }
            self.index(after);
        }
    }

    fn index(&mut self, k: Keys) {
        self.all.insert(k.cursor);
        if let Some(c) = k.customer_id {
            self.by_customer.entry(c).or_default().insert(k.cursor);
        }
        self.by_order
            .entry(k.order_id)
            .or_default()
            .insert(k.cursor);
        self.by_status.entry(k.status).or_default().insert(k.cursor);
    }

    fn unindex(&mut self, k: &Keys) {
        fn remove<K: std::hash::Hash + Eq>(
            map: &mut HashMap<K, BTreeSet<ReturnCursor>>,
            key: &K,
            cursor: &ReturnCursor,
        ) {
            if let Some(set) = map.get_mut(key) {
                set.remove(cursor);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        }
        self.all.remove(&k.cursor);
        if let Some(c) = &k.customer_id {
            remove(&mut self.by_customer, c, &k.cursor);
        }
        remove(&mut self.by_order, &k.order_id, &k.cursor);
        remove(&mut self.by_status, &k.status, &k.cursor);
    }

    /// The smallest index that holds every return `filter` can match: the order's, the
    /// customer's, or the statuses' (several sets, disjoint since a return has one status).
    fn candidates(&self, filter: &ReturnFilter) -> Vec<&BTreeSet<ReturnCursor>> {
        let mut options: Vec<Vec<&BTreeSet<ReturnCursor>>> = Vec::new();
        if let Some(o) = &filter.order_id {
            options.push(self.by_order.get(o).into_iter().collect());
        }
        if let Some(c) = &filter.customer_id {
            options.push(self.by_customer.get(c).into_iter().collect());
        }
        if let Some(statuses) = &filter.statuses {
            let mut seen = Vec::new();
            let mut sets = Vec::new();
            for s in statuses {
                if !seen.contains(s) {
                    seen.push(*s);
                    sets.extend(self.by_status.get(s));
                }
            }
            options.push(sets);
        }
        let size =
            |sets: &Vec<&BTreeSet<ReturnCursor>>| sets.iter().map(|s| s.len()).sum::<usize>();
        options
            .into_iter()
            .min_by_key(size)
            .unwrap_or_else(|| vec![&self.all])
    }
}

/// The cursors of disjoint `sets` within `range`, newest first (a k-way merge).
fn newest_first<'a>(
    sets: Vec<&'a BTreeSet<ReturnCursor>>,
    range: (Bound<ReturnCursor>, Bound<ReturnCursor>),
) -> impl Iterator<Item = &'a ReturnCursor> + 'a {
    let mut heads: Vec<_> = sets
        .into_iter()
        .map(|s| s.range(range).rev().peekable())
        .collect();
    std::iter::from_fn(move || {
        let mut best: Option<(usize, &'a ReturnCursor)> = None;
        for (i, head) in heads.iter_mut().enumerate() {
            if let Some(&c) = head.peek() {
                if best.is_none_or(|(_, b)| c > b) {
                    best = Some((i, c));
                }
            }
        }
        let (i, _) = best?;
        heads.get_mut(i).and_then(Iterator::next)
    })
}

impl Default for ReturnsView {
    fn default() -> Self {
        Self::new()
    }
}

impl ReturnsView {
    pub fn new() -> Self {
        let (updates, _) = broadcast::channel(UPDATE_FEED_CAPACITY);
        ReturnsView {
            state: RwLock::new(State::default()),
            updates,
        }
    }

    /// Builds a view and starts feeding it from `store` (replay, then live) on the current
    /// Tokio runtime. Keep the handle: [`ProjectionHandle::wait_for`] a write's position before
    /// reading it back, and report readiness with it.
    pub fn spawn(store: DynEventStore) -> (Arc<ReturnsView>, ProjectionHandle) {
        let view = Arc::new(ReturnsView::new());
        let handle = ichigen_shared::projection::spawn(store, view.clone());
        (view, handle)
    }

    // A panic while holding the lock cannot leave a half-applied return visible in a way a
    // reader could not cope with (each event is applied to one entry), so poisoning is ignored.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// One return, with its folded state and timeline.
    pub fn get(&self, rma_id: Uuid) -> Option<ReturnRecord> {
        self.read().returns.get(&rma_id).map(|e| e.record.clone())
    }

    /// Every return of an order, oldest first (an order has a few).
    pub fn by_order(&self, order_id: Uuid) -> Vec<ReturnRecord> {
        let s = self.read();
        s.by_order
            .get(&order_id)
            .into_iter()
            .flatten()
            .filter_map(|(_, id)| s.returns.get(id).map(|e| e.record.clone()))
            .collect()
    }

    /// Up to `first` returns passing `filter`, newest first by [`ReturnRecord::cursor`],
    /// strictly after `after` (an earlier page's last cursor); and whether more follow.
    pub fn queue(
        &self,
        filter: &ReturnFilter,
        after: Option<ReturnCursor>,
        first: usize,
    ) -> (Vec<ReturnRecord>, bool) {
        let s = self.read();
        let Some(range) = filter.range(after) else {
            return (Vec::new(), false);
        };
        let mut matching = newest_first(s.candidates(filter), range)
            .filter_map(|(_, id)| s.returns.get(id))
            .map(|e| &e.record)
            .filter(|r| filter.matches(r));
        let page = matching.by_ref().take(first).cloned().collect();
        (page, matching.next().is_some())
    }

    /// Every change from now on, for every return: the subscription filters by return or
    /// customer and checks the caller. A receiver more than [`UPDATE_FEED_CAPACITY`] behind
    /// gets `Lagged` (and can re-read [`Self::get`]).
    pub fn subscribe(&self) -> broadcast::Receiver<ReturnUpdate> {
        self.updates.subscribe()
    }

    /// How many returns the view holds.
    pub fn len(&self) -> usize {
        self.read().returns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().returns.is_empty()
    }
}

impl Projection for ReturnsView {
    fn name(&self) -> &'static str {
        "returns-view"
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories([crate::CATEGORY])
    }

    fn apply(&self, events: &[RecordedEvent]) {
        let decoded: Vec<Decoded<'_>> = events.iter().filter_map(decode).collect();
        if decoded.is_empty() {
            return;
        }
        let mut published = Vec::new();
        {
            let mut s = self.write();
            for d in decoded {
                s.apply(d, &mut published);
            }
        }
        // Sent after the lock is released; skipped when nobody listens (a replay).
        if self.updates.receiver_count() > 0 {
            for update in published {
                let _ = self.updates.send(update);
            }
        }
    }
}
