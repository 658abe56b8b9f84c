//! Given events, when a command, then events or an error.

use super::*;
use chrono::{Duration, TimeZone};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn line(id: &str, qty: i64) -> FulfillmentLine {
    FulfillmentLine {
        line_id: id.into(),
        sku: format!("SKU-{id}"),
        qty,
        reservation_id: format!("order#{id}"),
        picked: 0,
        short: 0,
        cancelled: 0,
    }
}

fn create(kind: FulfillmentKind, lines: Vec<FulfillmentLine>) -> FulfillmentCommand {
    FulfillmentCommand::Create {
        fulfillment_id: Uuid::from_u128(1),
        order_id: Uuid::from_u128(2),
        location: "S1".into(),
        kind,
        destination_store: (kind == FulfillmentKind::ShipToStore).then(|| "S9".into()),
        pickup_hold_days: 3,
        pickup_time_zone: None,
        lines,
    }
}

/// Runs commands from scratch, each must be accepted; returns the state.
fn run(commands: &[FulfillmentCommand]) -> Fulfillment {
    let mut state = Fulfillment::default();
    for c in commands {
        let events = decide(&state, c, now()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        for e in &events {
            state.apply(e);
        }
    }
    state
}

fn pick(lines: &[(&str, i64, i64)]) -> FulfillmentCommand {
    FulfillmentCommand::Pick {
        lines: lines
            .iter()
            .map(|(id, picked, short)| PickedLine {
                line_id: (*id).into(),
                picked: *picked,
                short: *short,
            })
            .collect(),
    }
}

fn ship() -> FulfillmentCommand {
    FulfillmentCommand::Ship {
        carrier: "Yamato".into(),
        tracking_number: "1234-5678".into(),
    }
}

fn ready(code: &str) -> FulfillmentCommand {
    FulfillmentCommand::MarkReady {
        pickup_code: code.into(),
    }
}

#[test]
fn ship_goes_pick_pack_ship_deliver() {
    use FulfillmentCommand as C;
    let s = run(&[
        create(FulfillmentKind::Ship, vec![line("a", 2), line("b", 1)]),
        pick(&[("a", 2, 0), ("b", 1, 0)]),
        C::Pack { packages: 1 },
        ship(),
        C::Deliver,
    ]);
    assert_eq!(s.status, Some(FulfillmentStatus::Delivered));
    assert_eq!(s.tracking_number.as_deref(), Some("1234-5678"));
    assert_eq!(s.remaining(), 3);
    // Steps out of order are conflicts, and name the step.
    let open = run(&[create(FulfillmentKind::Ship, vec![line("a", 2)])]);
    let err = decide(&open, &ship(), now()).unwrap_err();
    assert_eq!(
        err,
        FulfillmentError::WrongStatus {
            action: "ship",
            status: FulfillmentStatus::Open
        }
    );
    assert_eq!(err.code(), "CONFLICT");
    // A ship order has no counter.
    let picked = run(&[
        create(FulfillmentKind::Ship, vec![line("a", 2)]),
        pick(&[("a", 2, 0)]),
    ]);
    assert!(matches!(
        decide(&picked, &ready("1234"), now()),
        Err(FulfillmentError::WrongKind { .. })
    ));
}

#[test]
fn a_pickup_ready_at_a_store_with_a_zone_expires_at_its_local_midnight() {
    let mut created = create(FulfillmentKind::Pickup, vec![line("a", 1)]);
    if let FulfillmentCommand::Create {
        pickup_time_zone, ..
    } = &mut created
    {
        *pickup_time_zone = Some("Asia/Tokyo".into());
    }
    let s = run(&[created, pick(&[("a", 1, 0)]), ready("K7Q2")]);
    // Ready 19:00 Tokyo on Nov 23; 3 days (24, 25, 26) end at 00:00 Tokyo on Nov 27.
    assert_eq!(
        s.pickup_expires_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap())
    );
}

#[test]
fn bopis_goes_pick_ready_handover_with_the_code() {
    use FulfillmentCommand as C;
    let s = run(&[
        create(FulfillmentKind::Pickup, vec![line("a", 1)]),
        pick(&[("a", 1, 0)]),
        ready("K7Q2"),
    ]);
    assert_eq!(s.status, Some(FulfillmentStatus::ReadyForPickup));
    assert_eq!(s.pickup_expires_at, Some(now() + Duration::days(3)));
    let wrong = C::HandOver {
        pickup_code: "0000".into(),
    };
    assert_eq!(
        decide(&s, &wrong, now()),
        Err(FulfillmentError::WrongPickupCode)
    );
    let right = C::HandOver {
        pickup_code: "K7Q2".into(),
    };
    let events = decide(&s, &right, now()).unwrap();
    assert!(matches!(events[..], [FulfillmentEvent::PickedUp(_)]));
    // A BOPIS order is never packed or shipped.
    let picked = run(&[
        create(FulfillmentKind::Pickup, vec![line("a", 1)]),
        pick(&[("a", 1, 0)]),
    ]);
    assert!(matches!(
        decide(&picked, &C::Pack { packages: 1 }, now()),
        Err(FulfillmentError::WrongKind { .. })
    ));
    assert!(decide(&picked, &ready("no"), now()).is_err());
    assert!(decide(&picked, &ready("with space"), now()).is_err());
}

#[test]
fn an_uncollected_pickup_expires_after_the_hold_days_only() {
    use FulfillmentCommand as C;
    let s = run(&[
        create(FulfillmentKind::Pickup, vec![line("a", 1)]),
        pick(&[("a", 1, 0)]),
        ready("K7Q2"),
    ]);
    let early = now() + Duration::days(3) - Duration::seconds(1);
    assert_eq!(decide(&s, &C::ExpirePickup, early), Ok(vec![]));
    let due = now() + Duration::days(3);
    let events = decide(&s, &C::ExpirePickup, due).unwrap();
    assert!(matches!(events[..], [FulfillmentEvent::PickupExpired(_)]));
    let mut expired = s.clone();
    expired.apply(&events[0]);
    assert_eq!(expired.status, Some(FulfillmentStatus::Expired));
    // Expiring again, or handing over afterwards, does nothing / is refused.
    assert_eq!(decide(&expired, &C::ExpirePickup, due), Ok(vec![]));
    assert!(decide(
        &expired,
        &C::HandOver {
            pickup_code: "K7Q2".into()
        },
        due
    )
    .is_err());
}

#[test]
fn ship_to_store_is_ready_once_it_arrived() {
    use FulfillmentCommand as C;
    let s = run(&[
        create(FulfillmentKind::ShipToStore, vec![line("a", 1)]),
        pick(&[("a", 1, 0)]),
        C::Pack { packages: 1 },
    ]);
    assert!(
        decide(&s, &ready("AB12"), now()).is_err(),
        "not shipped yet"
    );
    let s = run(&[
        create(FulfillmentKind::ShipToStore, vec![line("a", 1)]),
        pick(&[("a", 1, 0)]),
        C::Pack { packages: 1 },
        ship(),
        ready("AB12"),
        C::HandOver {
            pickup_code: "AB12".into(),
        },
    ]);
    assert_eq!(s.status, Some(FulfillmentStatus::PickedUp));
    assert_eq!(
        decide(
            &Fulfillment::default(),
            &FulfillmentCommand::Create {
                fulfillment_id: Uuid::from_u128(1),
                order_id: Uuid::from_u128(2),
                location: "S1".into(),
                kind: FulfillmentKind::ShipToStore,
                destination_store: None,
                pickup_hold_days: 3,
                pickup_time_zone: None,
                lines: vec![line("a", 1)],
            },
            now()
        )
        .unwrap_err()
        .field(),
        Some("destinationStore")
    );
}

#[test]
fn a_short_pick_takes_the_missing_units_out() {
    let s = run(&[
        create(FulfillmentKind::Ship, vec![line("a", 3), line("b", 2)]),
        pick(&[("a", 1, 2), ("b", 2, 0)]),
    ]);
    assert_eq!(s.lines["a"].qty, 1);
    assert_eq!(s.lines["a"].short, 2);
    assert_eq!(s.remaining(), 3);
    assert_eq!(s.status, Some(FulfillmentStatus::Picked));
    // Everything short: nothing left to do here.
    let s = run(&[
        create(FulfillmentKind::Ship, vec![line("a", 3)]),
        pick(&[("a", 0, 3)]),
    ]);
    assert_eq!(s.status, Some(FulfillmentStatus::Cancelled));
}

#[test]
fn a_pick_must_account_for_every_unit_of_every_line() {
    let s = run(&[create(
        FulfillmentKind::Ship,
        vec![line("a", 3), line("b", 2)],
    )]);
    for (bad, field) in [
        (pick(&[("a", 3, 0)]), Some("lines")),              // b missing
        (pick(&[("a", 2, 0), ("b", 2, 0)]), Some("lines")), // a short of 1 unaccounted
        (
            pick(&[("a", 3, 0), ("b", 2, 0), ("a", 3, 0)]),
            Some("lines"),
        ),
        (pick(&[("a", 4, -1), ("b", 2, 0)]), Some("short")),
        (pick(&[("x", 1, 0)]), Some("lines")),
    ] {
        let err = decide(&s, &bad, now()).unwrap_err();
        assert_eq!(err.field(), field, "{bad:?}: {err}");
    }
    // A repeated report is a retry.
    let picked = run(&[
        create(FulfillmentKind::Ship, vec![line("a", 3), line("b", 2)]),
        pick(&[("a", 3, 0), ("b", 2, 0)]),
    ]);
    assert_eq!(
        decide(&picked, &pick(&[("a", 3, 0), ("b", 2, 0)]), now()),
        Ok(vec![])
    );
}

#[test]
fn cancelling_is_possible_until_the_units_leave() {
    use FulfillmentCommand as C;
    let cancel = |lines: Option<Vec<CancelledLine>>| C::Cancel {
        lines,
        reason: "CUSTOMER_REQUEST".into(),
    };
    let s = run(&[create(
        FulfillmentKind::Ship,
        vec![line("a", 3), line("b", 2)],
    )]);
    let part = cancel(Some(vec![CancelledLine {
        line_id: "a".into(),
        qty: 2,
    }]));
    let events = decide(&s, &part, now()).unwrap();
    let mut after = s.clone();
    after.apply(&events[0]);
    assert_eq!(after.lines["a"].qty, 1);
    assert_eq!(after.lines["a"].cancelled, 2);
    assert_eq!(after.status, Some(FulfillmentStatus::Open));
    // More than is left, or a line that is not here.
    let too_many = cancel(Some(vec![CancelledLine {
        line_id: "a".into(),
        qty: 2,
    }]));
    assert!(decide(&after, &too_many, now()).is_err());
    let unknown = cancel(Some(vec![CancelledLine {
        line_id: "zz".into(),
        qty: 1,
    }]));
    assert_eq!(
        decide(&after, &unknown, now()).unwrap_err().code(),
        "NOT_FOUND"
    );
    // Whole: everything left; then it is cancelled.
    let events = decide(&after, &cancel(None), now()).unwrap();
    after.apply(&events[0]);
    assert_eq!(after.status, Some(FulfillmentStatus::Cancelled));
    assert_eq!(after.remaining(), 0);
    // After shipping nothing can be cancelled.
    let shipped = run(&[
        create(FulfillmentKind::Ship, vec![line("a", 1)]),
        pick(&[("a", 1, 0)]),
        C::Pack { packages: 1 },
        ship(),
    ]);
    assert!(matches!(
        decide(&shipped, &cancel(None), now()),
        Err(FulfillmentError::WrongStatus { .. })
    ));
}

#[test]
fn creating_twice_is_a_retry_and_bad_creations_are_refused() {
    let cmd = create(FulfillmentKind::Ship, vec![line("a", 1)]);
    let s = run(std::slice::from_ref(&cmd));
    assert_eq!(decide(&s, &cmd, now()), Ok(vec![]));
    let other = FulfillmentCommand::Create {
        fulfillment_id: Uuid::from_u128(1),
        order_id: Uuid::from_u128(99),
        location: "S1".into(),
        kind: FulfillmentKind::Ship,
        destination_store: None,
        pickup_hold_days: 3,
        pickup_time_zone: None,
        lines: vec![line("a", 1)],
    };
    assert_eq!(
        decide(&s, &other, now()),
        Err(FulfillmentError::AlreadyCreated)
    );
    let empty = Fulfillment::default();
    assert!(decide(&empty, &create(FulfillmentKind::Ship, vec![]), now()).is_err());
    assert!(decide(
        &empty,
        &create(FulfillmentKind::Ship, vec![line("a", 0)]),
        now()
    )
    .is_err());
    assert!(decide(
        &empty,
        &create(FulfillmentKind::Ship, vec![line("a", 1), line("a", 1)]),
        now()
    )
    .is_err());
    assert_eq!(
        decide(&empty, &FulfillmentCommand::Deliver, now()),
        Err(FulfillmentError::NotCreated)
    );
}

#[test]
fn events_round_trip_through_their_stored_form() {
    let s = run(&[create(FulfillmentKind::Pickup, vec![line("a", 1)])]);
    let events = decide(&s, &pick(&[("a", 1, 0)]), now()).unwrap();
    for e in events {
        let data = e.payload_json().unwrap();
        let back = FulfillmentEvent::decode(e.event_type(), &data)
            .unwrap()
            .unwrap();
        assert_eq!(back, e);
    }
    assert!(FulfillmentEvent::decode("Nope.v1", b"{}").is_none());
}

fn cancel_units(operation: &str, lines: &[(&str, i64)]) -> FulfillmentCommand {
    FulfillmentCommand::CancelUnits {
        operation: operation.into(),
        lines: lines
            .iter()
            .map(|(id, qty)| CancelledLine {
                line_id: (*id).into(),
                qty: *qty,
            })
            .collect(),
        reason: "CUSTOMER_REQUEST".into(),
    }
}

#[test]
fn an_order_cancellation_is_decided_here_and_refused_once_the_units_left() {
    use FulfillmentCommand as C;
    // Still in the building (ready at the counter): cancelled, recorded under its operation.
    let ready_state = run(&[
        create(FulfillmentKind::Pickup, vec![line("a", 2), line("b", 1)]),
        pick(&[("a", 2, 0), ("b", 1, 0)]),
        ready("K7QH3M"),
    ]);
    let events = decide(&ready_state, &cancel_units("op-1", &[("a", 1)]), now()).unwrap();
    let [FulfillmentEvent::FulfillmentLinesCancelled(e)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(e.operation.as_deref(), Some("op-1"));
    let mut after = ready_state.clone();
    after.apply(&events[0]);
    assert_eq!(after.cancelled_by("op-1", "a"), 1);
    assert_eq!(after.lines["a"].qty, 1);
    // The same operation again takes nothing more, whatever happened since.
    assert_eq!(
        decide(&after, &cancel_units("op-1", &[("a", 1)]), now()),
        Ok(vec![])
    );
    // Handed over: the units left, a cancellation is refused and changes nothing.
    let mut gone = ready_state.clone();
    for e in decide(
        &gone,
        &C::HandOver {
            pickup_code: "K7QH3M".into(),
        },
        now(),
    )
    .unwrap()
    {
        gone.apply(&e);
    }
    assert_eq!(
        decide(&gone, &cancel_units("op-2", &[("a", 2)]), now()),
        Err(FulfillmentError::WrongStatus {
            action: "cancel",
            status: FulfillmentStatus::PickedUp
        })
    );
    // Shipped: refused too.
    let shipped = run(&[
        create(FulfillmentKind::Ship, vec![line("a", 2)]),
        pick(&[("a", 2, 0)]),
        C::Pack { packages: 1 },
        ship(),
    ]);
    assert!(matches!(
        decide(&shipped, &cancel_units("op-3", &[("a", 1)]), now()),
        Err(FulfillmentError::WrongStatus {
            status: FulfillmentStatus::Shipped,
            ..
        })
    ));
    // Asking for more than is left takes what is left (a short pick the order has not seen).
    let short = run(&[
        create(FulfillmentKind::Ship, vec![line("a", 3)]),
        pick(&[("a", 2, 1)]),
    ]);
    let events = decide(&short, &cancel_units("op-4", &[("a", 3)]), now()).unwrap();
    let mut after = short.clone();
    after.apply(&events[0]);
    assert_eq!(after.cancelled_by("op-4", "a"), 2);
    assert_eq!(after.status, Some(FulfillmentStatus::Cancelled));
    // Bad input is refused.
    assert!(matches!(
        decide(&short, &cancel_units("op-5", &[("zz", 1)]), now()),
        Err(FulfillmentError::UnknownLine(_))
    ));
    assert!(matches!(
        decide(&short, &cancel_units("op-6", &[("a", 0)]), now()),
        Err(FulfillmentError::InvalidQuantity { .. })
    ));
    assert!(matches!(
        decide(&short, &cancel_units(" ", &[("a", 1)]), now()),
        Err(FulfillmentError::InvalidInput {
            field: "operation",
            ..
        })
    ));
}

#[test]
fn a_cancellation_event_without_an_operation_still_reads() {
    let old = br#"{"lines":[{"lineId":"a","qty":1}],"reason":"CUSTOMER_REQUEST"}"#;
    let decoded = FulfillmentEvent::decode("FulfillmentLinesCancelled.v1", old)
        .unwrap()
        .unwrap();
    let FulfillmentEvent::FulfillmentLinesCancelled(e) = decoded else {
        panic!()
    };
    assert_eq!(e.operation, None);
}
mod hold_days {
    use super::super::decide::pickup_expiry;
    use chrono::{DateTime, Duration, Utc};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn n_hold_days_end_at_local_midnight_after_the_nth_day() {
        let tokyo = Some("Asia/Tokyo");
        // Ready 23:50 Tokyo on Dec 4: 3 days are Dec 5, 6, 7; expired at 00:00 on Dec 8.
        assert_eq!(
            pickup_expiry(at("2026-12-04T14:50:00Z"), 3, tokyo),
            at("2026-12-07T15:00:00Z")
        );
        // Ready ten minutes later, 00:00 Tokyo on Dec 5: the same count ends a day later.
        assert_eq!(
            pickup_expiry(at("2026-12-04T15:00:00Z"), 3, tokyo),
            at("2026-12-08T15:00:00Z")
        );
        // One day, in New York: ready at 09:00 EST, expired at midnight after the next day.
        assert_eq!(
            pickup_expiry(at("2026-12-04T14:00:00Z"), 1, Some("America/New_York")),
            at("2026-12-06T05:00:00Z")
        );
    }

    #[test]
    fn a_day_across_a_dst_change_is_its_real_length() {
        // Berlin moves to summer time on Sunday 2026-03-29: ready Saturday 10:00 CET, one
        // hold day (Sunday), expired at Monday 00:00 CEST = 22:00 UTC on Sunday.
        assert_eq!(
            pickup_expiry(at("2026-03-28T09:00:00Z"), 1, Some("Europe/Berlin")),
            at("2026-03-29T22:00:00Z")
        );
    }

    #[test]
    fn without_a_known_zone_days_are_24_hours_and_clamped() {
        let ready = at("2026-12-04T14:50:00Z");
        assert_eq!(pickup_expiry(ready, 3, None), ready + Duration::days(3));
        assert_eq!(
            pickup_expiry(ready, 3, Some("Mars/Base")),
            ready + Duration::days(3)
        );
        assert_eq!(pickup_expiry(ready, 0, None), ready + Duration::days(1));
        assert_eq!(
            pickup_expiry(ready, 99, Some("Asia/Tokyo")),
            pickup_expiry(ready, 30, Some("Asia/Tokyo"))
        );
    }
}
