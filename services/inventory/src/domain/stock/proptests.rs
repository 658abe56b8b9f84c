//! Random sequences of movements and reservations keep the ledger identities.

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Op {
    Receive(i64),
    Adjust(i64),
    Count(i64),
    Cas(i64),
    /// Transfers by id `T<n>`: shipped from here, announced, in transit here, received.
    TransferOut(u8, i64),
    Expect(u8, i64),
    InTransit(u8, i64),
    TransferIn(u8, i64),
    /// A returned unit (key `u<n>`) received; repeated keys are retries.
    Return(u8, i64),
    /// A returned unit (key `u<n>`) written off.
    WriteOff(u8, i64),
    ToNonSellable(i64),
    ToSellable(i64),
    Safety(i64),
    Reserve(u8, i64, Option<i64>),
    Confirm(u8),
    Release(u8),
    Consume(u8, i64),
    /// Advance the clock by this many minutes, then expire.
    Expire(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let qty = -2i64..40;
    prop_oneof![
        1 => qty.clone().prop_map(Op::Receive),
        1 => (-30i64..30).prop_map(Op::Adjust),
        1 => (-1i64..60).prop_map(Op::Count),
        1 => (-1i64..60).prop_map(Op::Cas),
        1 => (0u8..4, qty.clone()).prop_map(|(n, q)| Op::TransferOut(n, q)),
        1 => (0u8..4, qty.clone()).prop_map(|(n, q)| Op::Expect(n, q)),
        1 => (0u8..4, qty.clone()).prop_map(|(n, q)| Op::InTransit(n, q)),
        2 => (0u8..4, qty.clone()).prop_map(|(n, q)| Op::TransferIn(n, q)),
        1 => (0u8..6, qty.clone()).prop_map(|(n, q)| Op::Return(n, q)),
        1 => (0u8..6, qty.clone()).prop_map(|(n, q)| Op::WriteOff(n, q)),
        1 => qty.clone().prop_map(Op::ToNonSellable),
        1 => qty.clone().prop_map(Op::ToSellable),
        1 => (-1i64..20).prop_map(Op::Safety),
        3 => (0u8..12, -1i64..15, proptest::option::of(1i64..120))
            .prop_map(|(id, q, e)| Op::Reserve(id, q, e)),
        1 => (0u8..12).prop_map(Op::Confirm),
        2 => (0u8..12).prop_map(Op::Release),
        2 => (0u8..12, -1i64..10).prop_map(|(id, q)| Op::Consume(id, q)),
        1 => (0i64..90).prop_map(Op::Expire),
    ]
}

fn command(op: &Op, on_hand: i64, now: chrono::DateTime<Utc>) -> StockCommand {
    let id = |n: &u8| format!("r{n}");
    match op {
        Op::Receive(q) => StockCommand::ReceiveGoods {
            qty: *q,
            reference: None,
        },
        Op::Adjust(d) => StockCommand::Adjust {
            delta: *d,
            reason_code: "PROP".into(),
            reference: None,
        },
        Op::Count(c) => StockCommand::CountCycle {
            counted: *c,
            reference: None,
        },
        Op::Cas(n) => StockCommand::CompareAndSet {
            expected_on_hand: on_hand,
            new_on_hand: *n,
        },
        Op::TransferOut(n, q) => StockCommand::TransferOut {
            qty: *q,
            to_location: "DC-2".into(),
            transfer_id: format!("T{n}"),
        },
        Op::Expect(n, q) => StockCommand::ExpectIncoming {
            qty: *q,
            transfer_id: format!("T{n}"),
            from_location: "DC-2".into(),
        },
        Op::InTransit(n, q) => StockCommand::RecordInTransit {
            qty: *q,
            transfer_id: format!("T{n}"),
            from_location: "DC-2".into(),
        },
        Op::TransferIn(n, q) => StockCommand::TransferIn {
            qty: *q,
            transfer_id: format!("T{n}"),
        },
        Op::Return(n, q) => StockCommand::ReceiveReturn {
            qty: *q,
            rma_id: "rma".into(),
            key: format!("rma/u{n}"),
        },
        Op::WriteOff(n, q) => StockCommand::WriteOffReturn {
            qty: *q,
            rma_id: "rma".into(),
            key: format!("rma/u{n}"),
            disposition: "DISPOSE".into(),
            reason: "PROP".into(),
        },
        Op::ToNonSellable(q) => StockCommand::MoveToNonSellable {
            qty: *q,
            reason: "QC".into(),
        },
        Op::ToSellable(q) => StockCommand::MoveToSellable { qty: *q },
        Op::Safety(q) => StockCommand::SetSafetyStock { qty: *q },
        Op::Reserve(n, q, e) => StockCommand::Reserve {
            reservation_id: id(n),
            owner: format!("cart:{n}"),
            qty: *q,
            expires_at: e.map(|m| now + Duration::minutes(m)),
        },
        Op::Confirm(n) => StockCommand::Confirm {
            reservation_id: id(n),
        },
        Op::Release(n) => StockCommand::Release {
            reservation_id: id(n),
        },
        Op::Consume(n, q) => StockCommand::Consume {
            reservation_id: id(n),
            qty: *q,
        },
        Op::Expire(_) => StockCommand::ExpireReservations,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ledger_identities_hold(ops in proptest::collection::vec(op(), 1..80)) {
        let mut now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let mut state = StockItem::default();
        let mut history = Vec::new();
        // The ledger, summed from the events alone.
        let mut ledger = 0i64;
        let mut non_sellable = 0i64;
        let mut shortfall_recorded = false;
        // Returned units: each key received or written off at most once, whatever the retries.
        let mut returned = std::collections::BTreeSet::new();
        let (mut shipped, mut in_transit, mut received) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut written_off = 0i64;
        for op in &ops {
            if let Op::Expire(m) = op {
                now += Duration::minutes(*m);
            }
            let cmd = command(op, state.on_hand, now);
            let Ok(events) = decide(&state, &cmd, now) else {
                continue; // refused: nothing to apply
            };
            for event in &events {
                match event {
                    StockEvent::GoodsReceived(e) => ledger += e.qty,
                    StockEvent::StockAdjusted(e) => ledger += e.delta,
                    StockEvent::CycleCounted(e) => {
                        ledger += e.delta;
                        shortfall_recorded |= e.shortfall > 0;
                    }
                    StockEvent::OnHandSet(e) => {
                        ledger += e.delta;
                        shortfall_recorded |= e.shortfall > 0;
                    }
                    StockEvent::TransferShipped(e) => {
                        ledger -= e.qty;
                        prop_assert!(shipped.insert(e.transfer_id.clone()), "shipped twice");
                    }
                    StockEvent::TransferReceived(e) => {
                        ledger += e.qty;
                        prop_assert!(received.insert(e.transfer_id.clone()), "received twice");
                        // Only what is in transit, at most what shipped.
                        let t = &state.transfers_in[&e.transfer_id];
                        prop_assert_eq!(t.status, TransferInStatus::InTransit);
                        prop_assert!(e.qty <= t.qty);
                    }
                    StockEvent::TransferInTransit(e) => {
                        prop_assert!(in_transit.insert(e.transfer_id.clone()), "in transit twice");
                    }
                    StockEvent::ReturnReceived(e) => {
                        ledger += e.qty;
                        prop_assert!(returned.insert(e.key.clone()), "a unit counted twice");
                    }
                    StockEvent::ReturnWrittenOff(e) => {
                        written_off += e.qty;
                        prop_assert!(returned.insert(e.key.clone()), "a unit counted twice");
                    }
                    StockEvent::StockMovedToNonSellable(e) => {
                        ledger -= e.qty;
                        non_sellable += e.qty;
                    }
                    StockEvent::StockMovedToSellable(e) => {
                        ledger += e.qty;
                        non_sellable -= e.qty;
                    }
                    StockEvent::ReservationConsumed(e) => ledger -= e.qty,
                    StockEvent::IncomingExpected(_)
                    | StockEvent::SafetyStockSet(_)
                    | StockEvent::Reserved(_)
                    | StockEvent::ReservationConfirmed(_)
                    | StockEvent::ReservationReleased(_)
                    | StockEvent::ReservationExpired(_) => {}
                }
                let json = serde_json::to_string(event).unwrap();
                prop_assert_eq!(&serde_json::from_str::<StockEvent>(&json).unwrap(), event);
                state.apply(event);
                history.push(event.clone());
            }
            let open_sum: i64 = state.open_reservations().map(|(_, r)| r.quantity).sum();
            prop_assert_eq!(state.on_hand, ledger);
            prop_assert_eq!(state.non_sellable, non_sellable);
            prop_assert_eq!(state.written_off, written_off);
            prop_assert_eq!(state.return_keys.len(), returned.len());
            prop_assert_eq!(state.reserved, open_sum);
            prop_assert!(state.on_hand >= 0);
            prop_assert!(state.incoming >= 0);
            // Incoming counts every open transfer to here once.
            let open: i64 = state
                .transfers_in
                .values()
                .filter(|t| t.status != TransferInStatus::Received)
                .map(|t| t.qty)
                .sum();
            prop_assert_eq!(state.incoming, open);
            prop_assert!(state.non_sellable >= 0);
            prop_assert!(state.available() >= 0);
            if !shortfall_recorded {
                prop_assert!(state.reserved <= state.on_hand);
            }
            // A Reserve that was accepted never promised beyond on hand − safety stock.
            if let (Op::Reserve(..), [StockEvent::Reserved(_)]) = (op, events.as_slice()) {
                prop_assert!(state.reserved <= state.on_hand - state.safety_stock);
            }
        }
        // Replaying the history gives the same state.
        prop_assert_eq!(StockItem::from_events(&history), state);
    }
}
