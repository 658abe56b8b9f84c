//! Given events, when a command, then events or an error.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::domain::InventoryError as E;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn given(events: &[StockEvent]) -> StockItem {
    StockItem::from_events(events)
}

fn received(qty: i64) -> StockEvent {
    GoodsReceived {
        qty,
        reference: Some("PO-1".into()),
    }
    .into()
}

fn reserved(id: &str, qty: i64, expires_at: Option<DateTime<Utc>>) -> StockEvent {
    Reserved {
        reservation_id: id.into(),
        owner: format!("cart:{id}"),
        qty,
        expires_at,
    }
    .into()
}

fn reserve(id: &str, qty: i64) -> StockCommand {
    StockCommand::Reserve {
        reservation_id: id.into(),
        owner: format!("cart:{id}"),
        qty,
        expires_at: None,
    }
}

fn when(state: &StockItem, cmd: StockCommand) -> Result<Vec<StockEvent>, E> {
    decide(state, &cmd, now())
}

fn then_one(state: &StockItem, cmd: StockCommand) -> (StockEvent, StockItem) {
    let events = when(state, cmd).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let mut next = state.clone();
    next.apply(&events[0]);
    (events[0].clone(), next)
}

fn receive_return(rma_id: &str, key: &str, qty: i64) -> StockCommand {
    StockCommand::ReceiveReturn {
        qty,
        rma_id: rma_id.into(),
        key: key.into(),
    }
}

fn write_off(key: &str, disposition: &str, qty: i64) -> StockCommand {
    StockCommand::WriteOffReturn {
        qty,
        rma_id: "rma-1".into(),
        key: key.into(),
        disposition: disposition.into(),
        reason: "SCREEN_CRACKED".into(),
    }
}

fn bad_qty(field: &'static str, value: i64, min: i64) -> E {
    E::InvalidQuantity { field, value, min }
}

#[test]
fn stream_name_and_sku() {
    assert_eq!(
        stream_name("SKU123", "STORE-07"),
        "inventory-SKU123@STORE-07"
    );
    assert!(validate_sku("SKU-1.a_b").is_ok());
    assert_eq!(validate_sku("").unwrap_err().field(), Some("sku"));
    assert!(validate_sku("A@B").is_err());
    assert!(validate_sku(&"A".repeat(65)).is_err());
}

#[test]
fn receive_goods() {
    let (e, s) = then_one(
        &given(&[]),
        StockCommand::ReceiveGoods {
            qty: 5,
            reference: Some("PO-1".into()),
        },
    );
    assert_eq!(e, received(5));
    assert_eq!((s.on_hand, s.available()), (5, 5));
    let s = given(&[received(5)]);
    for qty in [0, -3] {
        let cmd = StockCommand::ReceiveGoods {
            qty,
            reference: None,
        };
        assert_eq!(when(&s, cmd), Err(bad_qty("qty", qty, 1)));
    }
    let cmd = StockCommand::ReceiveGoods {
        qty: i64::MAX,
        reference: None,
    };
    assert_eq!(when(&s, cmd), Err(E::Overflow { field: "qty" }));
    let cmd = StockCommand::ReceiveGoods {
        qty: 1,
        reference: Some(" ".into()),
    };
    assert_eq!(when(&s, cmd).unwrap_err().field(), Some("reference"));
}

#[test]
fn adjust() {
    let s = given(&[received(10), reserved("r1", 4, None)]);
    let adjust = |delta, reason: &str| StockCommand::Adjust {
        delta,
        reason_code: reason.into(),
        reference: Some("DOC-9".into()),
    };
    let (e, next) = then_one(&s, adjust(-6, "DAMAGED"));
    assert_eq!(e.event_type(), "StockAdjusted.v1");
    assert_eq!((next.on_hand, next.reserved, next.available()), (4, 4, 0));
    assert_eq!(
        when(&s, adjust(-7, "DAMAGED")),
        Err(E::BelowReserved {
            on_hand_after: 3,
            reserved: 4
        })
    );
    let (_, next) = then_one(&s, adjust(3, "FOUND"));
    assert_eq!(next.on_hand, 13);
    assert_eq!(
        when(&s, adjust(0, "X")).unwrap_err(),
        E::InvalidInput {
            field: "delta",
            reason: "must not be zero"
        }
    );
    assert_eq!(
        when(&s, adjust(1, "")).unwrap_err().field(),
        Some("reasonCode")
    );
    assert_eq!(
        when(&s, adjust(i64::MAX, "X")),
        Err(E::Overflow { field: "delta" })
    );
    assert!(matches!(
        when(&s, adjust(i64::MIN, "X")),
        Err(E::BelowReserved { .. })
    ));
}

#[test]
fn cycle_count_and_shortfall() {
    let s = given(&[received(10), reserved("r1", 6, None)]);
    let (e, next) = then_one(
        &s,
        StockCommand::CountCycle {
            counted: 8,
            reference: None,
        },
    );
    assert_eq!(
        e,
        CycleCounted {
            counted: 8,
            delta: -2,
            shortfall: 0,
            reference: None,
        }
        .into()
    );
    assert_eq!(next.on_hand, 8);
    // Below reserved: recorded as a shortfall, never negative availability.
    let (e, next) = then_one(
        &s,
        StockCommand::CountCycle {
            counted: 4,
            reference: None,
        },
    );
    assert_eq!(
        e,
        CycleCounted {
            counted: 4,
            delta: -6,
            shortfall: 2,
            reference: None,
        }
        .into()
    );
    assert_eq!((next.on_hand, next.reserved, next.shortfall()), (4, 6, 2));
    assert_eq!(next.available(), 0);
    assert!(matches!(
        when(&next, reserve("r2", 1)),
        Err(E::InsufficientStock { .. })
    ));
    // Consuming more than is on the shelf is refused; within it is fine.
    let consume = |qty| StockCommand::Consume {
        reservation_id: "r1".into(),
        qty,
    };
    assert_eq!(
        when(&next, consume(5)),
        Err(E::InsufficientStock {
            requested: 5,
            available: 4
        })
    );
    let (_, after) = then_one(&next, consume(4));
    assert_eq!((after.on_hand, after.reserved), (0, 2));
    let (_, zero) = then_one(
        &s,
        StockCommand::CountCycle {
            counted: 0,
            reference: None,
        },
    );
    assert_eq!(zero.on_hand, 0);
    assert_eq!(
        when(
            &s,
            StockCommand::CountCycle {
                counted: -1,
                reference: None
            }
        ),
        Err(bad_qty("counted", -1, 0))
    );
}

#[test]
fn compare_and_set() {
    let s = given(&[received(10)]);
    let cas = |expected_on_hand, new_on_hand| StockCommand::CompareAndSet {
        expected_on_hand,
        new_on_hand,
    };
    let (e, next) = then_one(&s, cas(10, 7));
    assert_eq!(
        e,
        OnHandSet {
            expected_on_hand: 10,
            new_on_hand: 7,
            delta: -3,
            shortfall: 0
        }
        .into()
    );
    assert_eq!(next.on_hand, 7);
    let err = when(&s, cas(9, 7)).unwrap_err();
    assert_eq!(
        err,
        E::OnHandMismatch {
            expected: 9,
            actual: 10
        }
    );
    assert_eq!(err.code(), "CONFLICT");
    assert_eq!(when(&s, cas(10, 10)), Ok(vec![]));
    assert_eq!(when(&s, cas(10, -1)), Err(bad_qty("newOnHand", -1, 0)));
    assert_eq!(when(&s, cas(-1, 1)), Err(bad_qty("expectedOnHand", -1, 0)));
    let s = given(&[received(10), reserved("r", 8, None)]);
    let (e, _) = then_one(&s, cas(10, 5));
    let StockEvent::OnHandSet(e) = e else {
        panic!()
    };
    assert_eq!(e.shortfall, 3);
}

#[test]
fn transfers() {
    let s = given(&[received(10), reserved("r", 6, None)]);
    let out = |qty| StockCommand::TransferOut {
        qty,
        to_location: "STORE-07".into(),
        transfer_id: "T-1".into(),
    };
    let (e, next) = then_one(&s, out(4));
    assert_eq!(e.event_type(), "TransferShipped.v1");
    assert_eq!((next.on_hand, next.reserved), (6, 6));
    // Reserved stock never leaves on a transfer.
    assert_eq!(
        when(&s, out(5)),
        Err(E::BelowReserved {
            on_hand_after: 5,
            reserved: 6
        })
    );
    assert_eq!(when(&s, out(0)), Err(bad_qty("qty", 0, 1)));
    let cmd = StockCommand::TransferOut {
        qty: 1,
        to_location: "".into(),
        transfer_id: "T".into(),
    };
    assert_eq!(when(&s, cmd).unwrap_err().field(), Some("toLocation"));
    // A transfer id ships once: the same transfer again is a retry, other content a conflict.
    let (_, shipped) = then_one(&s, out(4));
    assert_eq!(when(&shipped, out(4)), Ok(vec![]));
    assert_eq!(
        when(&shipped, out(3)),
        Err(E::TransferConflict {
            transfer_id: "T-1".into()
        })
    );
    assert_eq!(shipped.on_hand, 6);
}

fn in_transit(id: &str, qty: i64) -> StockCommand {
    StockCommand::RecordInTransit {
        qty,
        transfer_id: id.into(),
        from_location: "DC-2".into(),
    }
}

fn transfer_in(id: &str, qty: i64) -> StockCommand {
    StockCommand::TransferIn {
        qty,
        transfer_id: id.into(),
    }
}

fn expect(id: &str, qty: i64) -> StockCommand {
    StockCommand::ExpectIncoming {
        qty,
        transfer_id: id.into(),
        from_location: "DC-2".into(),
    }
}

#[test]
fn a_transfer_is_received_once_and_only_from_transit() {
    let s = given(&[received(10)]);
    // Never shipped here: nothing to receive, nothing created.
    assert_eq!(
        when(&s, transfer_in("T-9", 5)),
        Err(E::TransferNotInTransit {
            transfer_id: "T-9".into()
        })
    );
    assert_eq!(
        when(&StockItem::default(), transfer_in("T-9", 5))
            .unwrap_err()
            .code(),
        "NOT_FOUND"
    );
    let (e, s) = then_one(&s, in_transit("T-2", 5));
    assert_eq!(
        e,
        TransferInTransit {
            qty: 5,
            transfer_id: "T-2".into(),
            from_location: "DC-2".into(),
            incoming_cleared: 0,
        }
        .into()
    );
    assert_eq!(s.incoming, 5);
    // Recorded once: the handler and the process may both send it.
    assert_eq!(when(&s, in_transit("T-2", 5)), Ok(vec![]));
    assert_eq!(
        when(&s, in_transit("T-2", 6)),
        Err(E::TransferConflict {
            transfer_id: "T-2".into()
        })
    );
    // At most what shipped.
    assert_eq!(
        when(&s, transfer_in("T-2", 6)),
        Err(E::TransferExceedsInTransit {
            transfer_id: "T-2".into(),
            requested: 6,
            in_transit: 5
        })
    );
    // Fewer than shipped: received, and the transfer is closed (units lost on the way).
    let (e, s2) = then_one(&s, transfer_in("T-2", 3));
    assert_eq!(
        e,
        TransferReceived {
            qty: 3,
            transfer_id: "T-2".into(),
            incoming_cleared: 5,
            from_location: Some("DC-2".into()),
        }
        .into()
    );
    assert_eq!((s2.on_hand, s2.incoming), (13, 0));
    // Once.
    let again = when(&s2, transfer_in("T-2", 2)).unwrap_err();
    assert_eq!(
        again,
        E::TransferAlreadyReceived {
            transfer_id: "T-2".into()
        }
    );
    assert_eq!(
        (again.code(), again.field()),
        ("CONFLICT", Some("transferId"))
    );
    // A late in-transit of a received transfer changes nothing.
    assert_eq!(when(&s2, in_transit("T-2", 5)), Ok(vec![]));
    assert_eq!(when(&s, bad_in(-1)), Err(bad_qty("qty", -1, 1)));
    let bad = StockCommand::TransferIn {
        qty: 1,
        transfer_id: " ".into(),
    };
    assert_eq!(when(&s, bad).unwrap_err().field(), Some("transferId"));
    let bad = StockCommand::TransferIn {
        qty: 1,
        transfer_id: "T\n2".into(),
    };
    assert_eq!(when(&s, bad).unwrap_err().field(), Some("transferId"));
    let bad = in_transit("T-3", i64::MAX);
    assert_eq!(when(&s, bad), Err(E::Overflow { field: "qty" }));
}

fn bad_in(qty: i64) -> StockCommand {
    transfer_in("T-2", qty)
}

#[test]
fn an_announcement_counts_once_and_never_receives_by_itself() {
    let s = given(&[received(1)]);
    let (_, s) = then_one(&s, expect("T-5", 4));
    assert_eq!(s.incoming, 4);
    // Announced twice: idempotent per transfer id.
    assert_eq!(when(&s, expect("T-5", 4)), Ok(vec![]));
    assert_eq!(
        when(&s, expect("T-5", 7)),
        Err(E::TransferConflict {
            transfer_id: "T-5".into()
        })
    );
    // An announcement alone is not receivable.
    assert_eq!(
        when(&s, transfer_in("T-5", 4)),
        Err(E::TransferNotInTransit {
            transfer_id: "T-5".into()
        })
    );
    // The shipment takes its place: incoming counts the transfer once (as shipped).
    let (e, s) = then_one(&s, in_transit("T-5", 3));
    let StockEvent::TransferInTransit(t) = e else {
        panic!("{e:?}")
    };
    assert_eq!(t.incoming_cleared, 4);
    assert_eq!(s.incoming, 3);
    // Announcing a shipped transfer again adds nothing.
    assert_eq!(when(&s, expect("T-5", 4)), Ok(vec![]));
    let (_, s) = then_one(&s, transfer_in("T-5", 3));
    assert_eq!((s.on_hand, s.incoming), (4, 0));
    let bad = StockCommand::ExpectIncoming {
        qty: 1,
        transfer_id: "T-6".into(),
        from_location: "dc 2".into(),
    };
    assert_eq!(when(&s, bad).unwrap_err().field(), Some("fromLocation"));
    assert_eq!(when(&s, expect("T-6", -1)), Err(bad_qty("qty", -1, 1)));
    let (_, s) = then_one(&s, expect("T-7", 1));
    assert_eq!(
        when(&s, expect("T-6", i64::MAX)),
        Err(E::Overflow { field: "qty" })
    );
}

#[test]
fn returns_and_non_sellable() {
    let s = given(&[received(5), reserved("r", 3, None)]);
    let (e, s2) = then_one(&s, receive_return("rma-1", "rma-1/u1", 2));
    assert_eq!(e.event_type(), "ReturnReceived.v1");
    assert_eq!(s2.on_hand, 7);
    assert_eq!(
        when(&s, receive_return("rma-1", "rma-1/u1", 0)),
        Err(bad_qty("qty", 0, 1))
    );
    assert_eq!(
        when(&s, receive_return("", "rma-1/u1", 1))
            .unwrap_err()
            .field(),
        Some("rmaId")
    );

    let to_ns = |qty, reason: &str| StockCommand::MoveToNonSellable {
        qty,
        reason: reason.into(),
    };
    let (_, s3) = then_one(&s, to_ns(2, "DAMAGED"));
    assert_eq!((s3.on_hand, s3.non_sellable, s3.reserved), (3, 2, 3));
    assert!(matches!(
        when(&s, to_ns(3, "DAMAGED")),
        Err(E::BelowReserved { .. })
    ));
    assert_eq!(when(&s, to_ns(1, "")).unwrap_err().field(), Some("reason"));
    assert_eq!(when(&s, to_ns(-1, "QC")), Err(bad_qty("qty", -1, 1)));

    let (e, s4) = then_one(&s3, StockCommand::MoveToSellable { qty: 2 });
    assert_eq!(e, StockMovedToSellable { qty: 2 }.into());
    assert_eq!((s4.on_hand, s4.non_sellable), (5, 0));
    assert_eq!(
        when(&s3, StockCommand::MoveToSellable { qty: 3 }),
        Err(E::InsufficientNonSellable {
            requested: 3,
            non_sellable: 2
        })
    );
    assert_eq!(
        when(&s3, StockCommand::MoveToSellable { qty: 0 }),
        Err(bad_qty("qty", 0, 1))
    );
}

#[test]
fn safety_stock() {
    let s = given(&[received(10), reserved("r", 4, None)]);
    let (e, s2) = then_one(&s, StockCommand::SetSafetyStock { qty: 5 });
    assert_eq!(e, SafetyStockSet { qty: 5 }.into());
    assert_eq!(s2.available(), 1);
    assert_eq!(
        when(&s2, reserve("r2", 2)),
        Err(E::InsufficientStock {
            requested: 2,
            available: 1
        })
    );
    // Raised above what is free: available is 0, never negative.
    let (_, s3) = then_one(&s, StockCommand::SetSafetyStock { qty: 100 });
    assert_eq!(s3.available(), 0);
    assert_eq!(
        when(&s3, StockCommand::SetSafetyStock { qty: 100 }),
        Ok(vec![])
    );
    assert_eq!(
        when(&s, StockCommand::SetSafetyStock { qty: -1 }),
        Err(bad_qty("qty", -1, 0))
    );
}

#[test]
fn reserve_checks_available_and_input() {
    let s = given(&[received(5)]);
    let expires = now() + Duration::minutes(15);
    let cmd = StockCommand::Reserve {
        reservation_id: "r1".into(),
        owner: "cart:1".into(),
        qty: 5,
        expires_at: Some(expires),
    };
    let (e, s2) = then_one(&s, cmd.clone());
    assert_eq!(
        e,
        Reserved {
            reservation_id: "r1".into(),
            owner: "cart:1".into(),
            qty: 5,
            expires_at: Some(expires)
        }
        .into()
    );
    assert_eq!((s2.reserved, s2.available()), (5, 0));
    let err = when(&s, reserve("r1", 6)).unwrap_err();
    assert_eq!(
        err,
        E::InsufficientStock {
            requested: 6,
            available: 5
        }
    );
    assert_eq!(err.code(), "INSUFFICIENT_STOCK");
    // Retried Reserve: no events; same id with other content: conflict.
    assert_eq!(decide(&s2, &cmd, now()), Ok(vec![]));
    let err = when(&s2, reserve("r1", 5)).unwrap_err();
    assert_eq!(
        err,
        E::ReservationConflict {
            reservation_id: "r1".into()
        }
    );
    assert_eq!(err.code(), "CONFLICT");
    assert_eq!(when(&s, reserve("r", 0)), Err(bad_qty("qty", 0, 1)));
    assert_eq!(when(&s, reserve("r", -2)), Err(bad_qty("qty", -2, 1)));
    assert_eq!(
        when(&s, reserve("", 1)).unwrap_err().field(),
        Some("reservationId")
    );
    let no_owner = StockCommand::Reserve {
        reservation_id: "r".into(),
        owner: "".into(),
        qty: 1,
        expires_at: None,
    };
    assert_eq!(when(&s, no_owner).unwrap_err().field(), Some("owner"));
    let past = StockCommand::Reserve {
        reservation_id: "r".into(),
        owner: "cart:1".into(),
        qty: 1,
        expires_at: Some(now()),
    };
    assert_eq!(when(&s, past).unwrap_err().field(), Some("expiresAt"));
}

#[test]
fn confirm_release_consume() {
    let expires = now() + Duration::minutes(15);
    let s = given(&[received(10), reserved("r1", 4, Some(expires))]);
    let id = || "r1".to_string();

    let (e, confirmed) = then_one(
        &s,
        StockCommand::Confirm {
            reservation_id: id(),
        },
    );
    assert_eq!(e.event_type(), "ReservationConfirmed.v1");
    let r = &confirmed.reservations["r1"];
    assert_eq!(
        (r.status, r.expires_at),
        (ReservationStatus::Confirmed, None)
    );
    assert_eq!(
        when(
            &confirmed,
            StockCommand::Confirm {
                reservation_id: id()
            }
        ),
        Ok(vec![])
    );

    // Partial consumption keeps the rest reserved.
    let consume = |qty| StockCommand::Consume {
        reservation_id: id(),
        qty,
    };
    let (e, part) = then_one(&confirmed, consume(3));
    assert_eq!(
        e,
        ReservationConsumed {
            reservation_id: id(),
            qty: 3
        }
        .into()
    );
    assert_eq!((part.on_hand, part.reserved), (7, 1));
    assert_eq!(
        when(&part, consume(2)),
        Err(E::ExceedsReservation {
            requested: 2,
            reserved: 1
        })
    );
    assert_eq!(when(&part, consume(0)), Err(bad_qty("qty", 0, 1)));
    let (_, done) = then_one(&part, consume(1));
    assert_eq!(done.reservations["r1"].status, ReservationStatus::Consumed);
    assert_eq!((done.on_hand, done.reserved), (6, 0));
    let closed = E::ReservationClosed {
        reservation_id: id(),
        status: "consumed",
    };
    assert_eq!(when(&done, consume(1)), Err(closed.clone()));
    assert_eq!(
        when(
            &done,
            StockCommand::Release {
                reservation_id: id()
            }
        ),
        Err(closed.clone())
    );
    assert_eq!(
        when(
            &done,
            StockCommand::Confirm {
                reservation_id: id()
            }
        ),
        Err(closed)
    );

    // Release frees the remainder; a second release is a no-op.
    let (e, released) = then_one(
        &part,
        StockCommand::Release {
            reservation_id: id(),
        },
    );
    assert_eq!(
        e,
        ReservationReleased {
            reservation_id: id(),
            qty: 1
        }
        .into()
    );
    assert_eq!((released.on_hand, released.reserved), (7, 0));
    assert_eq!(
        when(
            &released,
            StockCommand::Release {
                reservation_id: id()
            }
        ),
        Ok(vec![])
    );
    assert!(matches!(
        when(
            &released,
            StockCommand::Confirm {
                reservation_id: id()
            }
        ),
        Err(E::ReservationClosed { .. })
    ));

    // Unknown reservations.
    for cmd in [
        StockCommand::Confirm {
            reservation_id: "nope".into(),
        },
        StockCommand::Release {
            reservation_id: "nope".into(),
        },
        StockCommand::Consume {
            reservation_id: "nope".into(),
            qty: 1,
        },
    ] {
        let err = when(&s, cmd).unwrap_err();
        assert_eq!(
            err,
            E::ReservationNotFound {
                reservation_id: "nope".into()
            }
        );
        assert_eq!(err.code(), "NOT_FOUND");
    }
}

#[test]
fn expire_reservations() {
    let soon = now() + Duration::minutes(1);
    let later = now() + Duration::hours(1);
    let s = given(&[
        received(10),
        reserved("a", 1, Some(soon)),
        reserved("b", 2, Some(later)),
        reserved("c", 3, None),
    ]);
    assert_eq!(when(&s, StockCommand::ExpireReservations), Ok(vec![]));
    let events = decide(&s, &StockCommand::ExpireReservations, soon).unwrap();
    assert_eq!(
        events,
        vec![ReservationExpired {
            reservation_id: "a".into(),
            qty: 1
        }
        .into()]
    );
    let events = decide(&s, &StockCommand::ExpireReservations, later).unwrap();
    assert_eq!(events.len(), 2);
    let mut after = s.clone();
    for e in &events {
        after.apply(e);
    }
    assert_eq!(after.reserved, 3);
    assert_eq!(after.reservations["a"].status, ReservationStatus::Expired);
    // Releasing an expired hold: the stock is already free.
    let release = StockCommand::Release {
        reservation_id: "a".into(),
    };
    assert_eq!(decide(&after, &release, later), Ok(vec![]));
    // A confirmed hold never expires.
    let (_, confirmed) = then_one(
        &s,
        StockCommand::Confirm {
            reservation_id: "b".into(),
        },
    );
    let events = decide(&confirmed, &StockCommand::ExpireReservations, later).unwrap();
    assert_eq!(events.len(), 1);
}

#[test]
fn bundle_is_checked_as_a_whole() {
    let s = given(&[received(5)]);
    let lines = [reserve("line-1", 3), reserve("line-2", 3)];
    assert_eq!(
        decide_batch(&s, &lines, now()),
        Err((
            1,
            E::InsufficientStock {
                requested: 3,
                available: 2
            }
        ))
    );
    let lines = [reserve("line-1", 3), reserve("line-2", 2)];
    let events = decide_batch(&s, &lines, now()).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(StockItem::from_events(&[received(5)]).on_hand, 5);
    let mut s2 = s.clone();
    events.iter().for_each(|e| s2.apply(e));
    assert_eq!(s2.available(), 0);
    // Overflow inside a batch is reported with its index too.
    let lines = [
        StockCommand::ReceiveGoods {
            qty: i64::MAX - 5,
            reference: None,
        },
        StockCommand::ReceiveGoods {
            qty: 1,
            reference: None,
        },
    ];
    assert_eq!(
        decide_batch(&s, &lines, now()),
        Err((1, E::Overflow { field: "qty" }))
    );
}

#[test]
fn decide_each_is_per_command() {
    let mut s = given(&[received(5)]);
    let results = decide_each(
        &mut s,
        &[
            reserve("a", 3),
            reserve("b", 3),
            reserve("c", 2),
            reserve("a", 3),
        ],
        now(),
    );
    assert_eq!(results[0].as_ref().map(Vec::len), Ok(1));
    assert_eq!(
        results[1],
        Err(E::InsufficientStock {
            requested: 3,
            available: 2
        })
    );
    assert_eq!(results[2].as_ref().map(Vec::len), Ok(1));
    assert_eq!(results[3], Ok(vec![]));
    assert_eq!((s.reserved, s.available()), (5, 0));
}

#[test]
fn every_event_round_trips() {
    let at = Some(now());
    let events: Vec<StockEvent> = vec![
        received(1),
        StockAdjusted {
            delta: -1,
            reason_code: "DAMAGED".into(),
            reference: None,
        }
        .into(),
        CycleCounted {
            counted: 1,
            delta: 2,
            shortfall: 3,
            reference: None,
        }
        .into(),
        OnHandSet {
            expected_on_hand: 1,
            new_on_hand: 2,
            delta: 1,
            shortfall: 0,
        }
        .into(),
        TransferShipped {
            qty: 1,
            to_location: "DC-1".into(),
            transfer_id: "T".into(),
        }
        .into(),
        IncomingExpected {
            qty: 1,
            transfer_id: "T".into(),
            from_location: None,
        }
        .into(),
        TransferReceived {
            qty: 1,
            transfer_id: "T".into(),
            incoming_cleared: 1,
            from_location: None,
        }
        .into(),
        ReturnReceived {
            qty: 1,
            rma_id: "R".into(),
            key: "R/1".into(),
        }
        .into(),
        ReturnWrittenOff {
            qty: 1,
            rma_id: "R".into(),
            key: "R/2".into(),
            disposition: "DISPOSE".into(),
            reason: "BROKEN".into(),
        }
        .into(),
        StockMovedToNonSellable {
            qty: 1,
            reason: "QC".into(),
        }
        .into(),
        StockMovedToSellable { qty: 1 }.into(),
        SafetyStockSet { qty: 1 }.into(),
        reserved("r", 1, at),
        ReservationConfirmed {
            reservation_id: "r".into(),
        }
        .into(),
        ReservationReleased {
            reservation_id: "r".into(),
            qty: 1,
        }
        .into(),
        ReservationConsumed {
            reservation_id: "r".into(),
            qty: 1,
        }
        .into(),
        ReservationExpired {
            reservation_id: "r".into(),
            qty: 1,
        }
        .into(),
    ];
    let mut types = std::collections::BTreeSet::new();
    for e in &events {
        let json = serde_json::to_string(e).unwrap();
        assert_eq!(&serde_json::from_str::<StockEvent>(&json).unwrap(), e);
        let data = e.payload_json().unwrap();
        assert_eq!(
            &StockEvent::decode(e.event_type(), &data).unwrap().unwrap(),
            e
        );
        assert!(e.event_type().ends_with(".v1"));
        types.insert(e.event_type());
    }
    assert_eq!(types.len(), events.len());
    let v: serde_json::Value = serde_json::from_slice(&events[1].payload_json().unwrap()).unwrap();
    assert_eq!(v["reasonCode"], "DAMAGED");
    assert!(StockEvent::decode("Unknown.v1", b"{}").is_none());
}

#[test]
fn a_sku_with_no_history_here_is_unknown_to_commands_that_need_stock() {
    let nothing = given(&[]);
    let needs_stock = [
        reserve("r1", 1),
        StockCommand::Adjust {
            delta: 1,
            reason_code: "FOUND".into(),
            reference: None,
        },
        StockCommand::TransferOut {
            qty: 1,
            to_location: "S2".into(),
            transfer_id: "T1".into(),
        },
        StockCommand::MoveToNonSellable {
            qty: 1,
            reason: "DAMAGED".into(),
        },
        StockCommand::MoveToSellable { qty: 1 },
    ];
    for cmd in needs_stock {
        assert_eq!(when(&nothing, cmd.clone()), Err(E::UnknownSku), "{cmd:?}");
    }
    assert_eq!(E::UnknownSku.code(), "NOT_FOUND");
    assert_eq!(E::UnknownSku.field(), Some("sku"));
    // What may be the first fact about a SKU at a location.
    let (_, counted) = then_one(
        &nothing,
        StockCommand::CountCycle {
            counted: 0,
            reference: None,
        },
    );
    assert!(counted.known);
    // Known now, even with nothing on hand: a reservation is refused for stock, not identity.
    assert!(matches!(
        when(&counted, reserve("r1", 1)),
        Err(E::InsufficientStock { .. })
    ));
    assert!(when(
        &nothing,
        StockCommand::ReceiveGoods {
            qty: 1,
            reference: None
        }
    )
    .is_ok());
}

#[test]
fn consume_up_to_takes_only_the_difference() {
    let s = given(&[received(10), reserved("r1", 4, None)]);
    let up_to = |total| StockCommand::ConsumeUpTo {
        reservation_id: "r1".into(),
        total,
    };
    let (e, two) = then_one(&s, up_to(2));
    assert_eq!(
        e,
        ReservationConsumed {
            reservation_id: "r1".into(),
            qty: 2
        }
        .into()
    );
    assert_eq!((two.on_hand, two.reserved), (8, 2));
    assert_eq!(two.reservations["r1"].consumed, 2);
    // A replay of the same total, or a lower one, takes nothing.
    assert_eq!(when(&two, up_to(2)), Ok(vec![]));
    assert_eq!(when(&two, up_to(1)), Ok(vec![]));
    // A higher total takes the difference only.
    let (e, four) = then_one(&two, up_to(4));
    assert_eq!(
        e,
        ReservationConsumed {
            reservation_id: "r1".into(),
            qty: 2
        }
        .into()
    );
    assert_eq!(four.reservations["r1"].status, ReservationStatus::Consumed);
    assert_eq!((four.on_hand, four.reserved), (6, 0));
    // Closed by its own consumption: the same total is still answered as done.
    assert_eq!(when(&four, up_to(4)), Ok(vec![]));
    assert_eq!(
        when(&four, up_to(5)),
        Err(E::ReservationClosed {
            reservation_id: "r1".into(),
            status: "consumed"
        })
    );
}

#[test]
fn consume_up_to_checks_like_consume() {
    let s = given(&[received(10), reserved("r1", 4, None)]);
    let up_to = |id: &str, total| StockCommand::ConsumeUpTo {
        reservation_id: id.into(),
        total,
    };
    assert_eq!(when(&s, up_to("r1", 0)), Err(bad_qty("total", 0, 1)));
    assert_eq!(
        when(&s, up_to("r1", 5)),
        Err(E::ExceedsReservation {
            requested: 5,
            reserved: 4
        })
    );
    assert_eq!(
        when(&s, up_to("nope", 1)),
        Err(E::ReservationNotFound {
            reservation_id: "nope".into()
        })
    );
    // Released after a partial consumption: what was consumed stays answered, more is refused.
    let (_, part) = then_one(&s, up_to("r1", 1));
    let (_, released) = then_one(
        &part,
        StockCommand::Release {
            reservation_id: "r1".into(),
        },
    );
    assert_eq!(when(&released, up_to("r1", 1)), Ok(vec![]));
    assert_eq!(
        when(&released, up_to("r1", 2)),
        Err(E::ReservationClosed {
            reservation_id: "r1".into(),
            status: "released"
        })
    );
    // After a shortfall count the shelf may hold less than promised: refused, not negative.
    let short = given(&[
        received(4),
        reserved("r1", 4, None),
        CycleCounted {
            counted: 2,
            delta: -2,
            shortfall: 2,
            reference: None,
        }
        .into(),
    ]);
    assert_eq!(
        when(&short, up_to("r1", 3)),
        Err(E::InsufficientStock {
            requested: 3,
            available: 2
        })
    );
}

#[test]
fn a_retried_reserve_keeps_its_first_expiry() {
    let s = given(&[received(5)]);
    let first = StockCommand::Reserve {
        reservation_id: "order:1#0".into(),
        owner: "order:1".into(),
        qty: 2,
        expires_at: Some(now() + Duration::minutes(15)),
    };
    let (_, held) = then_one(&s, first);
    // The retry computes its own "now + hold": still the same reservation, nothing new.
    let retry = StockCommand::Reserve {
        reservation_id: "order:1#0".into(),
        owner: "order:1".into(),
        qty: 2,
        expires_at: Some(now() + Duration::minutes(16)),
    };
    assert_eq!(when(&held, retry), Ok(vec![]));
    assert_eq!(
        held.reservations["order:1#0"].expires_at,
        Some(now() + Duration::minutes(15))
    );
    // Another quantity under the id is still a conflict.
    let other = StockCommand::Reserve {
        reservation_id: "order:1#0".into(),
        owner: "order:1".into(),
        qty: 3,
        expires_at: None,
    };
    assert!(matches!(
        when(&held, other),
        Err(E::ReservationConflict { .. })
    ));
}

#[test]
fn a_returned_unit_is_received_once_per_key() {
    let s = given(&[received(5)]);
    let (e, s1) = then_one(&s, receive_return("rma-1", "rma-1/u1", 1));
    assert_eq!(
        e,
        ReturnReceived {
            qty: 1,
            rma_id: "rma-1".into(),
            key: "rma-1/u1".into(),
        }
        .into()
    );
    assert_eq!(s1.on_hand, 6);
    // Re-delivered after a crash: nothing new, on hand counted once.
    assert_eq!(
        when(&s1, receive_return("rma-1", "rma-1/u1", 1)),
        Ok(vec![])
    );
    // Another unit of the same return is another receipt.
    let (_, s2) = then_one(&s1, receive_return("rma-1", "rma-1/u2", 1));
    assert_eq!(s2.on_hand, 7);
    // The whole history replayed (the writer reloading the stream) still knows both keys.
    let history = [
        received(5),
        e,
        when(&s1, receive_return("rma-1", "rma-1/u2", 1)).unwrap()[0].clone(),
    ];
    let replayed = given(&history);
    assert_eq!(replayed, s2);
    assert_eq!(
        when(&replayed, receive_return("rma-1", "rma-1/u2", 1)),
        Ok(vec![])
    );
    // Twice in one batch (a bundle, or the hot-SKU queue): the second is the no-op.
    let twice = [
        receive_return("rma-2", "rma-2/u1", 1),
        receive_return("rma-2", "rma-2/u1", 1),
    ];
    assert_eq!(decide_batch(&s, &twice, now()).unwrap().len(), 1);
    let mut running = s.clone();
    let each = decide_each(&mut running, &twice, now());
    assert_eq!(each[0].as_ref().map(Vec::len), Ok(1));
    assert_eq!(each[1], Ok(vec![]));
    assert_eq!(running.on_hand, 6);
}

#[test]
fn a_return_receipt_may_create_the_stock_record() {
    // A resale SKU's first unit: nothing ever happened to it at this location.
    let nothing = given(&[]);
    assert!(!nothing.known);
    let (_, s) = then_one(&nothing, receive_return("rma-1", "rma-1/u1", 1));
    assert!(s.known);
    assert_eq!((s.on_hand, s.available()), (1, 1));
    // Now it is stock like any other: it can be reserved.
    let (_, s) = then_one(&s, reserve("r1", 1));
    assert_eq!(s.available(), 0);
}

#[test]
fn a_write_off_is_recorded_but_never_stock() {
    let s = given(&[received(4), reserved("r", 1, None)]);
    let (e, s1) = then_one(&s, write_off("rma-1/u1", "DISPOSE", 1));
    assert_eq!(e.event_type(), "ReturnWrittenOff.v1");
    assert_eq!(
        e,
        ReturnWrittenOff {
            qty: 1,
            rma_id: "rma-1".into(),
            key: "rma-1/u1".into(),
            disposition: "DISPOSE".into(),
            reason: "SCREEN_CRACKED".into(),
        }
        .into()
    );
    assert_eq!(
        (s1.on_hand, s1.reserved, s1.available(), s1.non_sellable),
        (4, 1, 3, 0),
        "buckets unchanged"
    );
    assert_eq!(s1.written_off, 1);
    // Idempotent per key; a second unit counts.
    assert_eq!(when(&s1, write_off("rma-1/u1", "DISPOSE", 1)), Ok(vec![]));
    let (_, s2) = then_one(&s1, write_off("rma-1/u2", "RETURN_TO_VENDOR", 2));
    assert_eq!((s2.on_hand, s2.written_off), (4, 3));
    // On a stock record never seen before: recorded, and still nothing on hand.
    let (_, fresh) = then_one(&given(&[]), write_off("rma-9/u1", "DISPOSE", 1));
    assert!(fresh.known);
    assert_eq!(
        (fresh.on_hand, fresh.available(), fresh.written_off),
        (0, 0, 1)
    );
    // Overflow of the counter is refused like any bucket's.
    let full = StockItem {
        written_off: i64::MAX,
        ..s.clone()
    };
    assert_eq!(
        when(&full, write_off("rma-1/u3", "DISPOSE", 1)),
        Err(E::Overflow { field: "qty" })
    );
}

#[test]
fn a_unit_is_either_received_or_written_off() {
    let s = given(&[]);
    let (_, received) = then_one(&s, receive_return("rma-1", "rma-1/u1", 1));
    let e = when(&received, write_off("rma-1/u1", "DISPOSE", 1)).unwrap_err();
    assert_eq!(
        e,
        E::ReturnKeyConflict {
            key: "rma-1/u1".into(),
            outcome: "received into stock",
        }
    );
    assert_eq!((e.code(), e.field()), ("CONFLICT", Some("key")));
    let (_, written_off) = then_one(&s, write_off("rma-1/u1", "DISPOSE", 1));
    assert!(matches!(
        when(&written_off, receive_return("rma-1", "rma-1/u1", 1)),
        Err(E::ReturnKeyConflict { .. })
    ));
    assert_eq!(written_off.on_hand, 0);
}

#[test]
fn return_commands_validate_their_input() {
    let s = given(&[received(1)]);
    assert_eq!(
        when(&s, receive_return("rma-1", " ", 1))
            .unwrap_err()
            .field(),
        Some("key")
    );
    assert_eq!(
        when(&s, receive_return("rma-1", "rma-1/u1", -1)),
        Err(bad_qty("qty", -1, 1))
    );
    assert_eq!(
        when(&s, write_off("rma-1/u1", "DISPOSE", 0)),
        Err(bad_qty("qty", 0, 1))
    );
    assert_eq!(
        when(&s, write_off("", "DISPOSE", 1)).unwrap_err().field(),
        Some("key")
    );
    for disposition in ["", "RESTOCK", "RESALE", "dispose"] {
        assert_eq!(
            when(&s, write_off("rma-1/u1", disposition, 1)),
            Err(E::InvalidInput {
                field: "disposition",
                reason: "must be DISPOSE or RETURN_TO_VENDOR",
            }),
            "{disposition:?}"
        );
    }
    let no_reason = StockCommand::WriteOffReturn {
        qty: 1,
        rma_id: "rma-1".into(),
        key: "rma-1/u1".into(),
        disposition: "DISPOSE".into(),
        reason: " ".into(),
    };
    assert_eq!(when(&s, no_reason).unwrap_err().field(), Some("reason"));
    let no_rma = StockCommand::WriteOffReturn {
        qty: 1,
        rma_id: String::new(),
        key: "rma-1/u1".into(),
        disposition: "DISPOSE".into(),
        reason: "BROKEN".into(),
    };
    assert_eq!(when(&s, no_rma).unwrap_err().field(), Some("rmaId"));
    // A malformed retry of a unit already handled is still refused as malformed.
    let (_, done) = then_one(&s, receive_return("rma-1", "rma-1/u1", 1));
    assert_eq!(
        when(&done, receive_return("rma-1", "rma-1/u1", 0)),
        Err(bad_qty("qty", 0, 1))
    );
}

#[test]
fn returns_stored_before_unit_keys_still_decode_and_guard_nothing() {
    // A ReturnReceived.v1 written before `key` existed.
    let old = StockEvent::decode("ReturnReceived.v1", br#"{"qty":2,"rmaId":"RMA-OLD"}"#)
        .unwrap()
        .unwrap();
    assert_eq!(
        old,
        ReturnReceived {
            qty: 2,
            rma_id: "RMA-OLD".into(),
            key: String::new(),
        }
        .into()
    );
    let s = given(&[old]);
    assert_eq!(s.on_hand, 2);
    assert!(s.return_keys.is_empty());
    let v: serde_json::Value = serde_json::from_slice(
        &StockEvent::from(ReturnWrittenOff {
            qty: 1,
            rma_id: "R".into(),
            key: "R/1".into(),
            disposition: "RETURN_TO_VENDOR".into(),
            reason: "DEFECT".into(),
        })
        .payload_json()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "qty": 1, "rmaId": "R", "key": "R/1",
            "disposition": "RETURN_TO_VENDOR", "reason": "DEFECT"
        })
    );
}
