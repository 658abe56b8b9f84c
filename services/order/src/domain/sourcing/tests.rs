//! One test per sourcing rule, with the explanation checked where it carries the rule.

use super::*;

/// The customer, in Shibuya.
const HOME: (f64, f64) = (35.66, 139.70);

fn candidate(code: &str, kind: LocationKind, at: (f64, f64), atp: &[(&str, i64)]) -> Candidate {
    let capabilities = match kind {
        LocationKind::Dc => [Capability::Ship].into_iter().collect(),
        LocationKind::Store => [Capability::Pickup, Capability::ShipFromStore]
            .into_iter()
            .collect(),
    };
    Candidate {
        code: code.into(),
        kind,
        capabilities,
        lat: at.0,
        lon: at.1,
        active: true,
        remaining_capacity: 10,
        atp: atp.iter().map(|(s, q)| ((*s).to_owned(), *q)).collect(),
    }
}

/// Shinjuku, ~3 km from home.
fn store_a(atp: &[(&str, i64)]) -> Candidate {
    candidate("STORE-A", LocationKind::Store, (35.69, 139.70), atp)
}
/// Yokohama, ~25 km.
fn store_b(atp: &[(&str, i64)]) -> Candidate {
    candidate("STORE-B", LocationKind::Store, (35.44, 139.63), atp)
}
/// Chiba side, ~24 km (nearer than STORE-B).
fn dc_east(atp: &[(&str, i64)]) -> Candidate {
    candidate("DC-EAST", LocationKind::Dc, (35.80, 139.90), atp)
}
/// Osaka, ~400 km.
fn dc_west(atp: &[(&str, i64)]) -> Candidate {
    candidate("DC-WEST", LocationKind::Dc, (34.69, 135.50), atp)
}

fn ship(id: &str, sku: &str, qty: i64) -> SourcingLine {
    SourcingLine {
        line_id: id.into(),
        sku: sku.into(),
        qty,
        delivery: Delivery::Ship {
            lat: HOME.0,
            lon: HOME.1,
        },
    }
}

fn pickup(id: &str, sku: &str, qty: i64, store: &str) -> SourcingLine {
    SourcingLine {
        line_id: id.into(),
        sku: sku.into(),
        qty,
        delivery: Delivery::Pickup {
            store: store.into(),
        },
    }
}

fn alloc(line: &str, location: &str, qty: i64) -> Allocation {
    Allocation {
        line_id: line.into(),
        location: location.into(),
        qty,
    }
}

/// (location, verdict) of a line's explanation, in ranking order.
fn verdicts<'p>(plan: &'p SourcingPlan, line: &str) -> Vec<(&'p str, Verdict)> {
    plan.explanation
        .iter()
        .find(|e| e.line_id == line)
        .unwrap()
        .considered
        .iter()
        .map(|v| (v.location.as_str(), v.verdict.clone()))
        .collect()
}

fn chosen(qty: i64) -> Verdict {
    Verdict::Chosen { qty }
}

fn skipped(reason: SkipReason) -> Verdict {
    Verdict::Skipped { reason }
}

#[test]
fn haversine_matches_known_distances() {
    // One degree of longitude on the equator is 2πR/360.
    let d = haversine_km(0.0, 0.0, 0.0, 1.0);
    assert!((d - 111.19508).abs() < 1e-3, "{d}");
    // Tokyo station to Osaka station, about 403 km.
    let d = haversine_km(35.6812, 139.7671, 34.7025, 135.4959);
    assert!((d - 403.0).abs() < 3.0, "{d}");
    assert_eq!(haversine_km(10.0, 20.0, 10.0, 20.0), 0.0);
}

#[test]
fn pickup_comes_from_that_store_only() {
    let candidates = [
        store_a(&[("SKU1", 1)]),
        store_b(&[("SKU1", 5)]),
        dc_east(&[("SKU1", 100)]),
    ];
    let plan = source(&[pickup("L1", "SKU1", 2, "STORE-B")], &candidates, false).unwrap();
    assert_eq!(plan.allocations, vec![alloc("L1", "STORE-B", 2)]);
    // Only the pickup store is considered, without a distance.
    assert_eq!(
        plan.explanation[0].considered,
        vec![CandidateVerdict {
            location: "STORE-B".into(),
            distance_km: None,
            available: 5,
            verdict: chosen(2),
        }]
    );
    // Short at the pickup store: the DC's stock does not help.
    let e = source(&[pickup("L1", "SKU1", 2, "STORE-A")], &candidates, false).unwrap_err();
    assert_eq!(
        e,
        SourcingError::Shortage {
            lines: vec![ShortLine {
                line_id: "L1".into(),
                sku: "SKU1".into(),
                requested: 2,
                sourceable: 1,
                full_locations: vec![],
            }]
        }
    );
    assert_eq!(e.code(), "INSUFFICIENT_STOCK");
}

#[test]
fn pickup_store_must_exist_be_active_offer_pickup_and_have_capacity() {
    let problem = |candidate: Candidate, store: &str| match source(
        &[pickup("L1", "SKU1", 1, store)],
        &[candidate],
        false,
    ) {
        Err(SourcingError::InvalidDelivery { line_id, reason }) => {
            assert_eq!(line_id, "L1");
            reason
        }
        other => panic!("{other:?}"),
    };
    let a = || store_a(&[("SKU1", 5)]);
    assert_eq!(problem(a(), "STORE-X"), DeliveryProblem::UnknownStore);
    let mut inactive = a();
    inactive.active = false;
    assert_eq!(problem(inactive, "STORE-A"), DeliveryProblem::StoreInactive);
    let mut no_pickup = a();
    no_pickup.capabilities.remove(&Capability::Pickup);
    assert_eq!(
        problem(no_pickup, "STORE-A"),
        DeliveryProblem::NoPickupCapability
    );
    let mut full = a();
    full.remaining_capacity = 0;
    assert_eq!(problem(full, "STORE-A"), DeliveryProblem::NoPickupCapacity);
    assert_eq!(
        problem(dc_east(&[]), "DC-EAST"),
        DeliveryProblem::NoPickupCapability
    );
}

#[test]
fn one_location_covering_every_line_is_preferred() {
    // STORE-A is nearest and has SKU1; only DC-EAST has both: one parcel from DC-EAST.
    let candidates = [
        store_a(&[("SKU1", 5)]),
        dc_east(&[("SKU1", 5), ("SKU2", 5)]),
        dc_west(&[("SKU1", 5), ("SKU2", 5)]),
    ];
    let lines = [ship("L1", "SKU1", 2), ship("L2", "SKU2", 1)];
    let plan = source(&lines, &candidates, false).unwrap();
    assert_eq!(
        plan.allocations,
        vec![alloc("L1", "DC-EAST", 2), alloc("L2", "DC-EAST", 1)]
    );
    assert_eq!(
        verdicts(&plan, "L1"),
        vec![
            ("STORE-A", skipped(SkipReason::NotNeeded)),
            ("DC-EAST", chosen(2)),
            ("DC-WEST", skipped(SkipReason::Farther)),
        ]
    );
    assert_eq!(
        verdicts(&plan, "L2"),
        vec![
            ("STORE-A", skipped(SkipReason::NoStock)),
            ("DC-EAST", chosen(1)),
            ("DC-WEST", skipped(SkipReason::Farther)),
        ]
    );
    assert_eq!(plan.locations(), ["DC-EAST"].into_iter().collect());
    assert!(plan.short.is_empty());
}

#[test]
fn nearest_location_wins() {
    let candidates = [
        dc_west(&[("SKU1", 9)]),
        store_a(&[("SKU1", 9)]),
        dc_east(&[("SKU1", 9)]),
    ];
    let plan = source(&[ship("L1", "SKU1", 3)], &candidates, false).unwrap();
    assert_eq!(plan.allocations, vec![alloc("L1", "STORE-A", 3)]);
    let considered = &plan.explanation[0].considered;
    let distances: Vec<f64> = considered.iter().map(|v| v.distance_km.unwrap()).collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(distances[0] < 5.0 && distances[2] > 350.0, "{distances:?}");
}

#[test]
fn locations_without_capacity_activity_or_capability_are_skipped() {
    let mut full = store_a(&[("SKU1", 9)]);
    full.remaining_capacity = 0;
    let mut closed = store_b(&[("SKU1", 9)]);
    closed.active = false;
    let mut pickup_only = candidate(
        "STORE-C",
        LocationKind::Store,
        (35.67, 139.70),
        &[("SKU1", 9)],
    );
    pickup_only.capabilities.remove(&Capability::ShipFromStore);
    // A DC needs SHIP; a store's SHIP without SHIP_FROM_STORE is not enough.
    let mut dc_no_ship = candidate(
        "DC-NORTH",
        LocationKind::Dc,
        (35.70, 139.71),
        &[("SKU1", 9)],
    );
    dc_no_ship.capabilities.clear();
    let mut store_ship = candidate(
        "STORE-D",
        LocationKind::Store,
        (35.68, 139.70),
        &[("SKU1", 9)],
    );
    store_ship.capabilities = [Capability::Ship].into_iter().collect();
    let candidates = [
        full,
        closed,
        pickup_only,
        dc_no_ship,
        store_ship,
        dc_west(&[("SKU1", 9)]),
    ];
    let plan = source(&[ship("L1", "SKU1", 1)], &candidates, false).unwrap();
    assert_eq!(plan.allocations, vec![alloc("L1", "DC-WEST", 1)]);
    let v: BTreeMap<&str, Verdict> = verdicts(&plan, "L1").into_iter().collect();
    assert_eq!(v["STORE-A"], skipped(SkipReason::NoCapacity));
    assert_eq!(v["STORE-B"], skipped(SkipReason::Inactive));
    assert_eq!(v["STORE-C"], skipped(SkipReason::NoCapability));
    assert_eq!(v["STORE-D"], skipped(SkipReason::NoCapability));
    assert_eq!(v["DC-NORTH"], skipped(SkipReason::NoCapability));
    assert_eq!(v["DC-WEST"], chosen(1));
    // Nothing else: a shortage, not a plan from an ineligible location.
    let e = source(&[ship("L1", "SKU1", 1)], &candidates[..5], false).unwrap_err();
    assert!(matches!(e, SourcingError::Shortage { .. }));
}

#[test]
fn a_line_short_because_of_capacity_names_the_full_locations() {
    let mut full = dc_east(&[("SKU1", 9)]);
    full.remaining_capacity = 0;
    let candidates = [full, dc_west(&[("SKU1", 1)])];
    let e = source(&[ship("L1", "SKU1", 3)], &candidates, false).unwrap_err();
    let SourcingError::Shortage { lines } = e else {
        panic!("{e:?}")
    };
    assert_eq!(lines[0].sourceable, 1);
    assert_eq!(lines[0].full_locations, vec!["DC-EAST".to_string()]);
    // A location without the SKU is not why a line is short.
    let mut empty = dc_east(&[]);
    empty.remaining_capacity = 0;
    let e = source(&[ship("L1", "SKU1", 3)], &[empty], false).unwrap_err();
    let SourcingError::Shortage { lines } = e else {
        panic!("{e:?}")
    };
    assert!(lines[0].full_locations.is_empty());
}

#[test]
fn per_line_when_no_single_location_covers_everything() {
    let candidates = [store_a(&[("SKU1", 5)]), store_b(&[("SKU2", 5)])];
    let lines = [ship("L1", "SKU1", 2), ship("L2", "SKU2", 2)];
    let plan = source(&lines, &candidates, false).unwrap();
    assert_eq!(
        plan.allocations,
        vec![alloc("L1", "STORE-A", 2), alloc("L2", "STORE-B", 2)]
    );
    assert_eq!(
        verdicts(&plan, "L2"),
        vec![
            ("STORE-A", skipped(SkipReason::NoStock)),
            ("STORE-B", chosen(2)),
        ]
    );
}

#[test]
fn a_location_already_shipping_is_reused_before_a_nearer_one() {
    // SKU1 only at DC-WEST; SKU3 only at STORE-A: no single location. SKU2 is at both:
    // L2 rides along with L1's parcel from DC-WEST although STORE-A is nearer.
    let candidates = [
        store_a(&[("SKU2", 5), ("SKU3", 5)]),
        dc_west(&[("SKU1", 5), ("SKU2", 5)]),
    ];
    let lines = [
        ship("L1", "SKU1", 1),
        ship("L2", "SKU2", 1),
        ship("L3", "SKU3", 1),
    ];
    let plan = source(&lines, &candidates, false).unwrap();
    assert_eq!(
        plan.allocations,
        vec![
            alloc("L1", "DC-WEST", 1),
            alloc("L2", "DC-WEST", 1),
            alloc("L3", "STORE-A", 1)
        ]
    );
    assert_eq!(
        verdicts(&plan, "L2"),
        vec![
            ("STORE-A", skipped(SkipReason::Consolidated)),
            ("DC-WEST", chosen(1)),
        ]
    );
}

#[test]
fn a_line_is_split_only_when_no_location_has_it_all() {
    let lines = [ship("L1", "SKU1", 5)];
    // DC-WEST has all 5: no split although nearer locations have some.
    let plan = source(
        &lines,
        &[
            store_a(&[("SKU1", 3)]),
            dc_east(&[("SKU1", 4)]),
            dc_west(&[("SKU1", 10)]),
        ],
        false,
    )
    .unwrap();
    assert_eq!(plan.allocations, vec![alloc("L1", "DC-WEST", 5)]);
    assert_eq!(
        verdicts(&plan, "L1"),
        vec![
            ("STORE-A", skipped(SkipReason::NotEnoughStock)),
            ("DC-EAST", skipped(SkipReason::NotEnoughStock)),
            ("DC-WEST", chosen(5)),
        ]
    );
    // Nobody has 5: nearest first, only as much as needed.
    let plan = source(
        &lines,
        &[
            store_a(&[("SKU1", 3)]),
            dc_east(&[("SKU1", 4)]),
            dc_west(&[("SKU1", 10)]),
            store_b(&[]),
        ]
        .map(|mut c| {
            if c.code == "DC-WEST" {
                c.atp.clear();
            }
            c
        }),
        false,
    )
    .unwrap();
    assert_eq!(
        plan.allocations,
        vec![alloc("L1", "STORE-A", 3), alloc("L1", "DC-EAST", 2)]
    );
    assert_eq!(
        verdicts(&plan, "L1"),
        vec![
            ("STORE-A", chosen(3)),
            ("DC-EAST", chosen(2)),
            ("STORE-B", skipped(SkipReason::NoStock)),
            ("DC-WEST", skipped(SkipReason::NoStock)),
        ]
    );
    // A third location with stock that the split did not need is Farther.
    let plan = source(
        &lines,
        &[
            store_a(&[("SKU1", 3)]),
            dc_east(&[("SKU1", 2)]),
            dc_west(&[("SKU1", 4)]),
        ],
        false,
    )
    .unwrap();
    assert_eq!(
        verdicts(&plan, "L1")[2],
        ("DC-WEST", skipped(SkipReason::Farther))
    );
}

#[test]
fn lines_on_the_same_sku_share_atp() {
    // Together 6 > 5 at STORE-A: L1 takes 3 there, L2 finds only 2 left and goes to DC-EAST.
    let candidates = [store_a(&[("SKU1", 5)]), dc_east(&[("SKU1", 3)])];
    let lines = [ship("L1", "SKU1", 3), ship("L2", "SKU1", 3)];
    let plan = source(&lines, &candidates, false).unwrap();
    assert_eq!(
        plan.allocations,
        vec![alloc("L1", "STORE-A", 3), alloc("L2", "DC-EAST", 3)]
    );
    let l2 = &plan.explanation[1].considered;
    assert_eq!(
        (l2[0].available, l2[0].verdict.clone()),
        (2, skipped(SkipReason::NotEnoughStock))
    );
    // A pickup of the same SKU takes its store's stock first.
    let lines = [ship("L1", "SKU1", 3), pickup("L2", "SKU1", 4, "STORE-A")];
    let plan = source(&lines, &candidates, false).unwrap();
    assert_eq!(
        plan.allocations,
        vec![alloc("L1", "DC-EAST", 3), alloc("L2", "STORE-A", 4)]
    );
    // 3 + 3 + 3 with 8 in the network: the third line is short by one.
    let lines = [
        ship("L1", "SKU1", 3),
        ship("L2", "SKU1", 3),
        ship("L3", "SKU1", 3),
    ];
    let e = source(&lines, &candidates, false).unwrap_err();
    assert_eq!(
        e,
        SourcingError::Shortage {
            lines: vec![ShortLine {
                line_id: "L3".into(),
                sku: "SKU1".into(),
                requested: 3,
                sourceable: 2,
                full_locations: vec![],
            }]
        }
    );
}

#[test]
fn shortage_names_every_short_line_unless_partial_is_allowed() {
    let candidates = [store_a(&[("SKU1", 1)]), dc_east(&[("SKU3", 4)])];
    let lines = [
        ship("L1", "SKU1", 2),
        ship("L2", "SKU2", 1),
        ship("L3", "SKU3", 4),
    ];
    let Err(SourcingError::Shortage { lines: short }) = source(&lines, &candidates, false) else {
        panic!("expected a shortage");
    };
    let named: Vec<(&str, i64)> = short
        .iter()
        .map(|s| (s.line_id.as_str(), s.sourceable))
        .collect();
    assert_eq!(named, vec![("L1", 1), ("L2", 0)]);
    // Partial: what can be sourced is planned, the short lines are listed.
    let plan = source(&lines, &candidates, true).unwrap();
    assert_eq!(
        plan.allocations,
        vec![alloc("L1", "STORE-A", 1), alloc("L3", "DC-EAST", 4)]
    );
    assert_eq!(plan.short, short);
    assert_eq!(plan.allocated("L1"), 1);
    assert_eq!(plan.explanation.len(), 3);
}

#[test]
fn ties_are_broken_by_code_and_candidate_order_does_not_matter() {
    let twin = |code: &str| candidate(code, LocationKind::Dc, (35.80, 139.90), &[("SKU1", 5)]);
    let lines = [ship("L1", "SKU1", 2)];
    let one = source(&lines, &[twin("DC-B"), twin("DC-A")], false).unwrap();
    let other = source(&lines, &[twin("DC-A"), twin("DC-B")], false).unwrap();
    assert_eq!(one, other);
    assert_eq!(one.allocations, vec![alloc("L1", "DC-A", 2)]);
    assert_eq!(
        verdicts(&one, "L1")[1],
        ("DC-B", skipped(SkipReason::Farther))
    );
}

#[test]
fn ship_to_store_never_sources_from_the_destination_store() {
    let line = SourcingLine {
        line_id: "L1".into(),
        sku: "SKU1".into(),
        qty: 1,
        delivery: Delivery::ShipToStore {
            store: "STORE-A".into(),
            lat: 35.69,
            lon: 139.70,
        },
    };
    let candidates = [store_a(&[("SKU1", 5)]), store_b(&[("SKU1", 5)])];
    let plan = source(std::slice::from_ref(&line), &candidates, false).unwrap();
    assert_eq!(plan.allocations, vec![alloc("L1", "STORE-B", 1)]);
    assert_eq!(
        verdicts(&plan, "L1"),
        vec![
            ("STORE-A", skipped(SkipReason::Destination)),
            ("STORE-B", chosen(1)),
        ]
    );
}

#[test]
fn different_destinations_are_planned_separately() {
    // Each address gets its own nearest location, even though DC-WEST could serve both.
    let osaka = SourcingLine {
        delivery: Delivery::Ship {
            lat: 34.70,
            lon: 135.49,
        },
        ..ship("L2", "SKU1", 1)
    };
    let candidates = [store_a(&[("SKU1", 5)]), dc_west(&[("SKU1", 5)])];
    let plan = source(&[ship("L1", "SKU1", 1), osaka], &candidates, false).unwrap();
    assert_eq!(
        plan.allocations,
        vec![alloc("L1", "STORE-A", 1), alloc("L2", "DC-WEST", 1)]
    );
}

#[test]
fn malformed_lines_and_candidates_are_refused() {
    let c = [store_a(&[("SKU1", 5)])];
    let reason = |lines: &[SourcingLine]| match source(lines, &c, false) {
        Err(e @ SourcingError::InvalidLine { .. }) => {
            assert_eq!(e.code(), "INVALID_INPUT");
            e.to_string()
        }
        other => panic!("{other:?}"),
    };
    assert!(reason(&[ship("L1", "SKU1", 0)]).contains("at least 1"));
    assert!(reason(&[ship("L1", "SKU1", 1), ship("L1", "SKU1", 1)]).contains("twice"));
    assert!(reason(&[ship("", "SKU1", 1)]).contains("empty"));
    assert!(reason(&[ship("L1", " ", 1)]).contains("SKU"));
    let bad = SourcingLine {
        delivery: Delivery::Ship {
            lat: 91.0,
            lon: f64::NAN,
        },
        ..ship("L1", "SKU1", 1)
    };
    assert_eq!(
        source(&[bad], &c, false),
        Err(SourcingError::InvalidDelivery {
            line_id: "L1".into(),
            reason: DeliveryProblem::InvalidCoordinates
        })
    );
    let twice = [store_a(&[]), store_a(&[])];
    assert!(matches!(
        source(&[ship("L1", "SKU1", 1)], &twice, false),
        Err(SourcingError::DuplicateLocation { .. })
    ));
}

#[test]
fn explanation_serializes_for_the_order_record() {
    let plan = source(&[ship("L1", "SKU1", 1)], &[store_a(&[("SKU1", 5)])], false).unwrap();
    let json = serde_json::to_value(&plan.explanation).unwrap();
    assert_eq!(json[0]["considered"][0]["verdict"]["verdict"], "CHOSEN");
    assert_eq!(json[0]["considered"][0]["verdict"]["qty"], 1);
    let back: Vec<LineExplanation> = serde_json::from_value(json).unwrap();
    assert_eq!(back, plan.explanation);
    let d = serde_json::to_value(Delivery::ShipToStore {
        store: "S".into(),
        lat: 1.0,
        lon: 2.0,
    })
    .unwrap();
    assert_eq!(d["method"], "SHIP_TO_STORE");
}
