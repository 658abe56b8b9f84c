//! The queues fed with events the fulfillment domain decided.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, TimeZone};
use ichigen_shared::auth::Actor;
use ichigen_shared::envelope::Metadata;

use super::*;
use crate::domain::{decide, stream_name, CancelledLine, FulfillmentCommand as C, PickedLine};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

/// Decides commands per fulfillment order and records the events with increasing positions,
/// per-stream revisions and occurred_at one minute apart.
#[derive(Default)]
struct Feed {
    seq: u64,
    states: HashMap<Uuid, (Fulfillment, u64)>,
}

impl Feed {
    fn raw(&mut self, stream: &str, revision: u64, event_type: &str, data: &[u8]) -> RecordedEvent {
        self.seq += 1;
        let mut metadata = Metadata::new(Actor::system("test"));
        metadata.occurred_at = now() + Duration::minutes(self.seq as i64);
        RecordedEvent {
            id: Uuid::new_v4(),
            stream: Arc::from(stream),
            revision,
            position: Position::sequence(self.seq),
            event_type: Arc::from(event_type),
            data: Arc::from(data),
            metadata,
        }
    }

    fn run(&mut self, id: Uuid, command: C) -> Vec<RecordedEvent> {
        let (state, next) = self.states.entry(id).or_default();
        let events = decide(state, &command, now()).unwrap_or_else(|e| panic!("{command:?}: {e}"));
        let mut out = Vec::new();
        for e in &events {
            state.apply(e);
            out.push((e.event_type(), e.payload_json().unwrap(), *next));
            *next += 1;
        }
        out.into_iter()
            .map(|(t, data, rev)| self.raw(&stream_name(&id), rev, t, &data))
            .collect()
    }
}

fn fid(n: u128) -> Uuid {
    Uuid::from_u128(0xF000 + n)
}

fn order(n: u128) -> Uuid {
    Uuid::from_u128(0x0A00 + n)
}

fn line(id: &str, qty: i64) -> FulfillmentLine {
    FulfillmentLine {
        line_id: id.into(),
        sku: format!("SKU-{id}"),
        qty,
        reservation_id: format!("r-{id}"),
        picked: 0,
        short: 0,
        cancelled: 0,
    }
}

fn create(n: u128, location: &str, kind: FulfillmentKind, destination: Option<&str>) -> C {
    C::Create {
        fulfillment_id: fid(n),
        order_id: order(n),
        location: location.into(),
        kind,
        destination_store: destination.map(Into::into),
        pickup_hold_days: 3,
        pickup_time_zone: None,
        lines: vec![line("L1", 2)],
    }
}

fn pick(picked: i64, short: i64) -> C {
    C::Pick {
        lines: vec![PickedLine {
            line_id: "L1".into(),
            picked,
            short,
        }],
    }
}

fn ship() -> C {
    C::Ship {
        carrier: "YAMATO".into(),
        tracking_number: "T-1".into(),
    }
}

fn ready() -> C {
    C::MarkReady {
        pickup_code: "K7Q2".into(),
    }
}

struct Setup {
    feed: Feed,
    view: FulfillmentQueues,
}

impl Setup {
    fn new() -> Self {
        Setup {
            feed: Feed::default(),
            view: FulfillmentQueues::new(),
        }
    }

    fn run(&mut self, n: u128, command: C) -> Vec<RecordedEvent> {
        let events = self.feed.run(fid(n), command);
        self.view.apply(&events);
        events
    }

    fn pickup(&self, store: &str) -> Vec<Uuid> {
        ids(self.view.pickup_queue(store, None, 100).0)
    }

    fn outbound(&self, location: &str) -> Vec<Uuid> {
        ids(self.view.ship_from_store_tasks(location, None, 100).0)
    }
}

fn ids(entries: Vec<QueueEntry>) -> Vec<Uuid> {
    entries.into_iter().map(|e| e.fulfillment_id).collect()
}

#[test]
fn bopis_enters_the_pickup_queue_on_creation_and_leaves_once_collected() {
    let mut s = Setup::new();
    let created = s.run(1, create(1, "S1", FulfillmentKind::Pickup, None));
    assert_eq!(s.pickup("S1"), [fid(1)]);
    assert!(s.outbound("S1").is_empty());
    assert!(s.pickup("S2").is_empty());
    s.run(1, pick(2, 0));
    s.run(1, ready());
    let (page, more) = s.view.pickup_queue("S1", None, 10);
    assert!(!more);
    let e = &page[0];
    assert_eq!(
        (
            e.order_id,
            e.status,
            e.pickup_code.as_deref(),
            e.pickup_expires_at,
            e.pickup_store()
        ),
        (
            order(1),
            FulfillmentStatus::ReadyForPickup,
            Some("K7Q2"),
            Some(now() + Duration::days(3)),
            Some("S1")
        )
    );
    assert_eq!(e.created_at, created[0].metadata.occurred_at);
    assert_eq!((e.lines[0].qty, e.lines[0].picked), (2, 2));
    s.run(
        1,
        C::HandOver {
            pickup_code: "K7Q2".into(),
        },
    );
    assert!(s.pickup("S1").is_empty());
    assert_eq!(
        s.view.get(fid(1)).map(|e| e.status),
        Some(FulfillmentStatus::PickedUp)
    );
}

#[test]
fn expired_and_cancelled_pickups_leave_the_queue() {
    let mut s = Setup::new();
    s.run(1, create(1, "S1", FulfillmentKind::Pickup, None));
    s.run(1, pick(2, 0));
    s.run(1, ready());
    s.run(2, create(2, "S1", FulfillmentKind::Pickup, None));
    s.run(3, create(3, "S1", FulfillmentKind::Pickup, None));
    assert_eq!(s.pickup("S1"), [fid(1), fid(2), fid(3)]);
    // Expiry is decided at a time after the hold: run it on a feed clock far ahead.
    let (state, next) = s.feed.states.get_mut(&fid(1)).unwrap();
    let expired = decide(state, &C::ExpirePickup, now() + Duration::days(4)).unwrap();
    assert_eq!(expired.len(), 1);
    state.apply(&expired[0]);
    let rev = *next;
    *next += 1;
    let r = s.feed.raw(
        &stream_name(&fid(1)),
        rev,
        expired[0].event_type(),
        &expired[0].payload_json().unwrap(),
    );
    s.view.apply(&[r]);
    assert_eq!(s.pickup("S1"), [fid(2), fid(3)]);
    s.run(
        2,
        C::Cancel {
            lines: None,
            reason: "CUSTOMER_REQUEST".into(),
        },
    );
    assert_eq!(s.pickup("S1"), [fid(3)]);
    // A partial cancel keeps it; a pick that finds nothing cancels it.
    s.run(
        3,
        C::Cancel {
            lines: Some(vec![CancelledLine {
                line_id: "L1".into(),
                qty: 1,
            }]),
            reason: "CUSTOMER_REQUEST".into(),
        },
    );
    assert_eq!(s.pickup("S1"), [fid(3)]);
    s.run(3, pick(0, 1));
    assert!(s.pickup("S1").is_empty());
    assert_eq!(
        s.view.get(fid(3)).map(|e| (e.status, e.lines[0].short)),
        Some((FulfillmentStatus::Cancelled, 1))
    );
}

#[test]
fn ship_from_store_tasks_leave_once_shipped() {
    let mut s = Setup::new();
    s.run(1, create(1, "S1", FulfillmentKind::Ship, None));
    assert_eq!(s.outbound("S1"), [fid(1)]);
    assert!(s.pickup("S1").is_empty());
    s.run(1, pick(2, 0));
    s.run(1, C::Pack { packages: 1 });
    assert_eq!(s.outbound("S1"), [fid(1)]);
    assert_eq!(
        s.view.get(fid(1)).map(|e| e.status),
        Some(FulfillmentStatus::Packed)
    );
    s.run(1, ship());
    assert!(s.outbound("S1").is_empty());
    let e = s.view.get(fid(1)).unwrap();
    assert_eq!(
        (e.carrier.as_deref(), e.tracking_number.as_deref()),
        (Some("YAMATO"), Some("T-1"))
    );
    // DC work is read the same way.
    s.run(2, create(2, "DC1", FulfillmentKind::Ship, None));
    assert_eq!(ids(s.view.dc_tasks("DC1", None, 10).0), [fid(2)]);
}

#[test]
fn ship_to_store_waits_at_its_destination_once_shipped() {
    let mut s = Setup::new();
    s.run(
        1,
        create(1, "DC1", FulfillmentKind::ShipToStore, Some("S9")),
    );
    assert_eq!(ids(s.view.dc_tasks("DC1", None, 10).0), [fid(1)]);
    assert!(s.pickup("S9").is_empty());
    assert!(s.pickup("DC1").is_empty());
    s.run(1, pick(2, 0));
    s.run(1, C::Pack { packages: 1 });
    assert!(s.pickup("S9").is_empty());
    s.run(1, ship());
    assert!(s.outbound("DC1").is_empty());
    assert_eq!(s.pickup("S9"), [fid(1)]);
    s.run(1, ready());
    let (page, _) = s.view.pickup_queue("S9", None, 10);
    assert_eq!(
        (page[0].status, page[0].pickup_store()),
        (FulfillmentStatus::ReadyForPickup, Some("S9"))
    );
    s.run(
        1,
        C::HandOver {
            pickup_code: "K7Q2".into(),
        },
    );
    assert!(s.pickup("S9").is_empty());
}

#[test]
fn queues_page_oldest_first() {
    let mut s = Setup::new();
    for n in 1..=5 {
        s.run(n, create(n, "S1", FulfillmentKind::Pickup, None));
    }
    let (page, more) = s.view.pickup_queue("S1", None, 2);
    assert_eq!(ids(page.clone()), [fid(1), fid(2)]);
    assert!(more);
    let (page, more) = s.view.pickup_queue("S1", Some(page[1].cursor()), 2);
    assert_eq!(ids(page.clone()), [fid(3), fid(4)]);
    assert!(more);
    let (page, more) = s.view.pickup_queue("S1", Some(page[1].cursor()), 2);
    assert_eq!(ids(page), [fid(5)]);
    assert!(!more);
    assert_eq!(s.view.pickup_queue("S1", None, 0), (vec![], true));
    assert_eq!(s.view.pickup_queue("S404", None, 5), (vec![], false));
}

#[test]
fn fulfillment_orders_are_found_by_order() {
    let mut s = Setup::new();
    s.run(1, create(1, "S1", FulfillmentKind::Pickup, None));
    let mut second = create(2, "DC1", FulfillmentKind::Ship, None);
    if let C::Create { order_id, .. } = &mut second {
        *order_id = order(1);
    }
    s.run(2, second);
    assert_eq!(ids(s.view.by_order(order(1))), [fid(1), fid(2)]);
    assert!(s.view.by_order(order(9)).is_empty());
    assert_eq!(s.view.get(fid(9)), None);
    assert_eq!(s.view.len(), 2);
}

#[test]
fn redelivered_events_change_nothing() {
    let mut s = Setup::new();
    let mut events = s.run(1, create(1, "S1", FulfillmentKind::Ship, None));
    events.extend(s.run(1, pick(2, 0)));
    let before = s.view.get(fid(1));
    s.view.apply(&events);
    assert_eq!(s.view.get(fid(1)), before);
    assert_eq!(s.outbound("S1"), [fid(1)]);
}

#[test]
fn unknown_and_unreadable_events_are_skipped() {
    let mut s = Setup::new();
    s.run(1, create(1, "S1", FulfillmentKind::Pickup, None));
    let before = s.view.get(fid(1));
    let stream = stream_name(&fid(1));
    let junk = [
        s.feed
            .raw(&stream, 5, "FulfillmentLinesPicked.v1", b"{not json"),
        s.feed.raw(&stream, 6, "FulfillmentTeleported.v1", b"{}"),
        s.feed
            .raw(&stream, 7, "FulfillmentPacked.v1", &[0xff, 0x00]),
        s.feed.raw(
            "fulfillment-42",
            0,
            "FulfillmentPacked.v1",
            b"{\"packages\":1}",
        ),
        s.feed.raw("order-1", 0, "OrderPlaced.v1", b"{}"),
        s.feed.raw("nodash", 0, "X.v1", b"{}"),
        // A step of a fulfillment order whose creation the view never saw.
        s.feed.raw(
            &stream_name(&fid(7)),
            1,
            "FulfillmentPacked.v1",
            b"{\"packages\":1}",
        ),
    ];
    s.view.apply(&junk);
    assert_eq!(s.view.get(fid(1)), before);
    assert_eq!(s.view.len(), 1);
    assert_eq!(s.view.get(fid(7)), None);
    assert_eq!(s.pickup("S1"), [fid(1)]);
}

#[test]
fn the_view_follows_the_fulfillment_category() {
    let filter = FulfillmentQueues::new().filter();
    assert!(filter.matches("fulfillment-1", "FulfillmentCreated.v1"));
    assert!(!filter.matches("order-1", "OrderPlaced.v1"));
}
