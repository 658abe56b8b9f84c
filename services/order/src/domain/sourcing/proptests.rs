//! Random networks and orders: every plan respects ATP, eligibility and quantities, and does
//! not depend on the order the candidates are listed in.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const SKUS: [&str; 3] = ["A", "B", "C"];

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        any::<bool>(),
        // Mostly capable, active and with capacity, so that most orders get a plan; each
        // ineligibility still shows up often.
        (
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.1),
        ),
        // A small grid, so that equal distances (ties) happen.
        (0i32..4, 0i32..4),
        prop::bool::weighted(0.9),
        prop_oneof![1 => -1i64..1, 6 => 1i64..3],
        proptest::collection::vec(0i64..8, 3),
    )
        .prop_map(
            |(dc, (ship, pickup, extra), (y, x), active, capacity, atp)| {
                let mut capabilities = BTreeSet::new();
                let shipping = if dc {
                    Capability::Ship
                } else {
                    Capability::ShipFromStore
                };
                if ship {
                    capabilities.insert(shipping);
                }
                if pickup && !dc {
                    capabilities.insert(Capability::Pickup);
                }
                if extra {
                    // A store's SHIP (or a DC's SHIP_FROM_STORE) must not make it ship.
                    capabilities.insert(if dc {
                        Capability::ShipFromStore
                    } else {
                        Capability::Ship
                    });
                }
                Candidate {
                    code: String::new(),
                    kind: if dc {
                        LocationKind::Dc
                    } else {
                        LocationKind::Store
                    },
                    capabilities,
                    lat: 35.0 + f64::from(y) * 0.1,
                    lon: 139.0 + f64::from(x) * 0.1,
                    active,
                    remaining_capacity: capacity,
                    atp: SKUS
                        .iter()
                        .zip(atp)
                        .map(|(s, q)| ((*s).to_owned(), q))
                        .collect(),
                }
            },
        )
}

fn delivery(stores: usize) -> impl Strategy<Value = Delivery> {
    prop_oneof![
        6 => (0i32..2, 0i32..2).prop_map(|(y, x)| Delivery::Ship {
            lat: 35.0 + f64::from(y) * 0.15,
            lon: 139.0 + f64::from(x) * 0.15,
        }),
        1 => (0..stores.max(1)).prop_map(|n| Delivery::Pickup { store: format!("L{n}") }),
        1 => (0..stores.max(1)).prop_map(|n| Delivery::ShipToStore {
            store: format!("L{n}"),
            lat: 35.05,
            lon: 139.05,
        }),
    ]
}

fn scenario() -> impl Strategy<Value = (Vec<Candidate>, Vec<SourcingLine>, bool, Vec<usize>)> {
    proptest::collection::vec(candidate(), 0..7).prop_flat_map(|mut candidates| {
        for (n, c) in candidates.iter_mut().enumerate() {
            c.code = format!("L{n}");
        }
        let n = candidates.len();
        let line = (0usize..3, 1i64..5, delivery(n));
        (
            Just(candidates),
            proptest::collection::vec(line, 1..6).prop_map(|lines| {
                lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, (sku, qty, delivery))| SourcingLine {
                        line_id: format!("line{i}"),
                        sku: SKUS[sku].to_owned(),
                        qty,
                        delivery,
                    })
                    .collect::<Vec<_>>()
            }),
            any::<bool>(),
            Just((0..n).rev().collect::<Vec<_>>()).prop_shuffle(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn plans_respect_atp_eligibility_and_quantities(
        (candidates, lines, allow_partial, permutation) in scenario()
    ) {
        let result = source(&lines, &candidates, allow_partial);
        // The same answer whatever order the candidates come in.
        let shuffled: Vec<Candidate> =
            permutation.iter().map(|&i| candidates[i].clone()).collect();
        prop_assert_eq!(&source(&lines, &shuffled, allow_partial), &result);

        let by_code: BTreeMap<&str, &Candidate> =
            candidates.iter().map(|c| (c.code.as_str(), c)).collect();
        let plan = match result {
            Ok(plan) => plan,
            Err(SourcingError::Shortage { lines: short }) => {
                prop_assert!(!allow_partial);
                prop_assert!(!short.is_empty());
                // Partial planning reports exactly these lines short.
                let partial = source(&lines, &candidates, true);
                prop_assert!(partial.is_ok());
                prop_assert_eq!(partial.map(|p| p.short).unwrap_or_default(), short);
                return Ok(());
            }
            Err(SourcingError::InvalidDelivery { line_id, .. }) => {
                let line = lines.iter().find(|l| l.line_id == line_id);
                let store = line.and_then(|l| l.delivery.pickup_store());
                prop_assert!(store.is_some(), "only pickups are invalid here");
                let ok = store.and_then(|s| by_code.get(s)).is_some_and(|c| {
                    c.active && c.capabilities.contains(&Capability::Pickup) && c.remaining_capacity > 0
                });
                prop_assert!(!ok);
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        };

        // Never more than ATP per (location, SKU).
        let mut used: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for a in &plan.allocations {
            let line = lines.iter().find(|l| l.line_id == a.line_id);
            prop_assert!(line.is_some());
            let Some(line) = line else { continue };
            prop_assert!(a.qty > 0);
            *used.entry((a.location.as_str(), line.sku.as_str())).or_default() += a.qty;
            let c = by_code[a.location.as_str()];
            // Only active locations with capacity and the capability the line needs.
            prop_assert!(c.active && c.remaining_capacity > 0);
            match &line.delivery {
                Delivery::Pickup { store } => {
                    prop_assert_eq!(store, &a.location);
                    prop_assert!(c.capabilities.contains(&Capability::Pickup));
                }
                Delivery::Ship { .. } => prop_assert!(c.can_ship()),
                Delivery::ShipToStore { store, .. } => {
                    prop_assert!(c.can_ship());
                    prop_assert_ne!(store, &a.location);
                }
            }
        }
        for ((location, sku), qty) in used {
            prop_assert!(qty <= by_code[location].atp_of(sku), "{location}/{sku}: {qty}");
        }
        // Each line exactly its quantity, or reported short with what was allocated.
        for line in &lines {
            let allocated = plan.allocated(&line.line_id);
            match plan.short.iter().find(|s| s.line_id == line.line_id) {
                None => prop_assert_eq!(allocated, line.qty),
                Some(s) => {
                    prop_assert!(allow_partial);
                    prop_assert_eq!(s.sourceable, allocated);
                    prop_assert!(allocated < line.qty);
                }
            }
            // The explanation lists every candidate for a shipped line, the store for a pickup,
            // and marks as chosen exactly the allocations.
            let e = plan.explanation.iter().find(|e| e.line_id == line.line_id);
            prop_assert!(e.is_some());
            let Some(e) = e else { continue };
            let expected = if line.delivery.pickup_store().is_some() { 1 } else { candidates.len() };
            prop_assert_eq!(e.considered.len(), expected);
            let chosen: i64 = e
                .considered
                .iter()
                .map(|v| match v.verdict { Verdict::Chosen { qty } => qty, _ => 0 })
                .sum();
            prop_assert_eq!(chosen, allocated);
        }
    }
}
