//! Given a policy, when a command, then events or an error.

use ichigen_shared::money::{Currency, Money};
use rust_decimal::Decimal;

use super::*;
use crate::domain::error::RmaError as E;

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn seeded() -> Policy {
    let mut policy = Policy::default();
    for command in default_policy() {
        for event in decide_policy(&policy, &command).unwrap() {
            policy.apply(&event);
        }
    }
    policy
}

fn reason() -> ReturnReasonSpec {
    ReturnReasonSpec {
        code: "TOO_LATE".into(),
        label_ja: "到着が遅すぎた".into(),
        label_en: "Arrived too late".into(),
        window_days: 7,
        inspection_required: false,
        restocking_fee_pct: dec("5.5"),
        customer_pays_shipping: true,
        return_shipping_fee: yen(500),
        auto_approve: false,
    }
}

fn grade() -> ConditionGradeSpec {
    ConditionGradeSpec {
        code: "OUTLET".into(),
        label_ja: "アウトレット".into(),
        label_en: "Outlet".into(),
        disposition: Disposition::Resale {
            price_factor: dec("0.5"),
        },
    }
}

fn then(policy: &Policy, command: PolicyCommand) -> (Vec<PolicyEvent>, Policy) {
    let events = decide_policy(policy, &command).unwrap();
    let mut next = policy.clone();
    for e in &events {
        next.apply(e);
    }
    (events, next)
}

fn reason_err(f: impl FnOnce(&mut ReturnReasonSpec)) -> E {
    let mut spec = reason();
    f(&mut spec);
    decide_policy(&Policy::default(), &PolicyCommand::DefineReason(spec)).unwrap_err()
}

fn grade_err(f: impl FnOnce(&mut ConditionGradeSpec)) -> E {
    let mut spec = grade();
    f(&mut spec);
    decide_policy(&Policy::default(), &PolicyCommand::DefineGrade(spec)).unwrap_err()
}

#[test]
fn the_default_policy_seeds_once() {
    let policy = seeded();
    let reasons: Vec<_> = policy.active_reasons().map(|r| r.code.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "CHANGED_MIND",
            "DAMAGED_IN_TRANSIT",
            "DEFECTIVE",
            "SIZE_FIT",
            "WRONG_ITEM"
        ]
    );
    let grades: Vec<_> = policy.active_grades().map(|g| g.code.as_str()).collect();
    assert_eq!(
        grades,
        ["DAMAGED", "DEFECTIVE", "FAIR", "GOOD", "LIKE_NEW", "NEW"]
    );
    let changed_mind = &policy.reason("CHANGED_MIND").unwrap().spec;
    assert_eq!(
        changed_mind.label_ja,
        "お客様都合（イメージ違い・不要になった）"
    );
    assert_eq!(
        (
            changed_mind.window_days,
            changed_mind.restocking_fee_pct,
            changed_mind.customer_pays_shipping,
            changed_mind.return_shipping_fee,
            changed_mind.auto_approve
        ),
        (14, Decimal::from(10), true, yen(800), false)
    );
    let defective = &policy.reason("DEFECTIVE").unwrap().spec;
    assert!(defective.auto_approve && defective.inspection_required);
    assert!(!defective.customer_pays_shipping);
    assert_eq!(
        policy.grade("LIKE_NEW").unwrap().spec.disposition,
        Disposition::Resale {
            price_factor: dec("0.8")
        }
    );
    assert_eq!(policy.grade("LIKE_NEW").unwrap().spec.label_ja, "新品同様");
    // Seeding again (every start) decides nothing.
    for command in default_policy() {
        assert_eq!(decide_policy(&policy, &command), Ok(vec![]), "{command:?}");
    }
}

#[test]
fn define_is_create_or_replace_and_idempotent() {
    let (events, policy) = then(&Policy::default(), PolicyCommand::DefineReason(reason()));
    assert_eq!(events[0].event_type(), "ReturnReasonDefined.v1");
    assert!(policy.reason("TOO_LATE").unwrap().active);
    assert_eq!(
        decide_policy(&policy, &PolicyCommand::DefineReason(reason())),
        Ok(vec![])
    );
    // Numerically equal is equal: 5.50 % is the same fee as 5.5 %.
    let mut same = reason();
    same.restocking_fee_pct = dec("5.50");
    assert_eq!(
        decide_policy(&policy, &PolicyCommand::DefineReason(same)),
        Ok(vec![])
    );
    let mut longer = reason();
    longer.window_days = 30;
    let (events, policy) = then(&policy, PolicyCommand::DefineReason(longer.clone()));
    assert_eq!(
        events,
        vec![PolicyEvent::ReturnReasonDefined(ReturnReasonDefined {
            spec: longer
        })]
    );
    assert_eq!(policy.reason("TOO_LATE").unwrap().spec.window_days, 30);
}

#[test]
fn retire_then_define_again_reactivates() {
    let (_, policy) = then(&Policy::default(), PolicyCommand::DefineReason(reason()));
    let retire = PolicyCommand::RetireReason {
        code: "TOO_LATE".into(),
    };
    let (events, retired) = then(&policy, retire.clone());
    assert_eq!(
        events,
        vec![PolicyEvent::ReturnReasonRetired(ReturnReasonRetired {
            code: "TOO_LATE".into(),
            label_ja: "到着が遅すぎた".into(),
            label_en: "Arrived too late".into(),
        })]
    );
    assert!(!retired.reason("TOO_LATE").unwrap().active);
    assert_eq!(retired.active_reasons().count(), 0);
    assert_eq!(decide_policy(&retired, &retire), Ok(vec![]));
    assert_eq!(
        retired.active_reason("lines.0.reasonCode", "TOO_LATE"),
        Err(E::ReasonRetired {
            field: "lines.0.reasonCode".into(),
            code: "TOO_LATE".into()
        })
    );
    // The same spec again brings it back.
    let (events, back) = then(&retired, PolicyCommand::DefineReason(reason()));
    assert_eq!(events.len(), 1);
    assert!(back.reason("TOO_LATE").unwrap().active);
}

#[test]
fn grades_define_retire_and_reactivate() {
    let (events, policy) = then(&Policy::default(), PolicyCommand::DefineGrade(grade()));
    assert_eq!(events[0].event_type(), "ConditionGradeDefined.v1");
    assert_eq!(
        decide_policy(&policy, &PolicyCommand::DefineGrade(grade())),
        Ok(vec![])
    );
    let retire = PolicyCommand::RetireGrade {
        code: "OUTLET".into(),
    };
    let (events, retired) = then(&policy, retire.clone());
    assert_eq!(events[0].event_type(), "ConditionGradeRetired.v1");
    assert_eq!(decide_policy(&retired, &retire), Ok(vec![]));
    let e = retired.active_grade("gradeCode", "OUTLET").unwrap_err();
    assert_eq!((e.code(), e.kind()), ("INVALID_INPUT", "GRADE_RETIRED"));
    let e = retired.active_grade("gradeCode", "NOPE").unwrap_err();
    assert_eq!((e.code(), e.field()), ("NOT_FOUND", Some("gradeCode")));
    let (_, back) = then(&retired, PolicyCommand::DefineGrade(grade()));
    assert!(back.grade("OUTLET").unwrap().active);
}

#[test]
fn retiring_an_unknown_code_is_not_found() {
    let e = decide_policy(
        &Policy::default(),
        &PolicyCommand::RetireReason { code: "X".into() },
    )
    .unwrap_err();
    assert_eq!((e.code(), e.field()), ("NOT_FOUND", Some("code")));
    let e = decide_policy(
        &Policy::default(),
        &PolicyCommand::RetireGrade { code: "X".into() },
    )
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), ("NOT_FOUND", "UNKNOWN_GRADE"));
}

#[test]
fn reason_fields_are_validated() {
    let field = |e: E| e.field().map(str::to_owned);
    for code in ["", "lower", "WITH-DASH", "日本"] {
        assert_eq!(
            field(reason_err(|s| s.code = code.into())).as_deref(),
            Some("code")
        );
    }
    assert!(decide_policy(
        &Policy::default(),
        &PolicyCommand::DefineReason(ReturnReasonSpec {
            code: "A".repeat(32),
            ..reason()
        })
    )
    .is_ok());
    assert_eq!(
        field(reason_err(|s| s.code = "A".repeat(33))).as_deref(),
        Some("code")
    );
    assert_eq!(
        field(reason_err(|s| s.label_ja = " ".into())).as_deref(),
        Some("labelJa")
    );
    assert_eq!(
        field(reason_err(|s| s.label_en = "x".repeat(201))).as_deref(),
        Some("labelEn")
    );
    for days in [0, -1, 366] {
        assert_eq!(
            reason_err(|s| s.window_days = days),
            E::InvalidQuantity {
                field: "windowDays".into(),
                value: days,
                min: 1,
                max: 365
            }
        );
    }
    for pct in ["-1", "100.01", "12.345"] {
        let e = reason_err(|s| s.restocking_fee_pct = dec(pct));
        assert_eq!(
            (e.field(), e.code(), e.kind()),
            (Some("restockingFeePct"), "INVALID_INPUT", "OUT_OF_RANGE")
        );
    }
    for pct in ["0", "100", "12.34", "12.340"] {
        let mut spec = reason();
        spec.restocking_fee_pct = dec(pct);
        assert!(validate_reason(&spec).is_ok(), "{pct}");
    }
    for fee in [yen(-1), Money::parse("0.5", "JPY").unwrap()] {
        assert_eq!(
            field(reason_err(|s| s.return_shipping_fee = fee)).as_deref(),
            Some("returnShippingFee")
        );
    }
    // Not charged when the merchant pays, but still a valid amount.
    let mut spec = reason();
    spec.customer_pays_shipping = false;
    spec.return_shipping_fee = yen(0);
    assert!(validate_reason(&spec).is_ok());
}

#[test]
fn grade_fields_are_validated() {
    for factor in ["0", "-0.1", "1.01"] {
        let e = grade_err(|g| {
            g.disposition = Disposition::Resale {
                price_factor: dec(factor),
            }
        });
        assert_eq!(e.field(), Some("disposition.priceFactor"), "{factor}");
    }
    let mut full_price = grade();
    full_price.disposition = Disposition::Resale {
        price_factor: Decimal::ONE,
    };
    assert!(validate_grade(&full_price).is_ok());
    assert_eq!(
        grade_err(|g| g.code = "like_new".into()).field(),
        Some("code")
    );
    assert_eq!(
        grade_err(|g| g.label_en = String::new()).field(),
        Some("labelEn")
    );
}

#[test]
fn events_round_trip_through_their_stored_form() {
    let events: Vec<PolicyEvent> = default_policy()
        .iter()
        .flat_map(|c| decide_policy(&Policy::default(), c).unwrap())
        .chain([
            ReturnReasonRetired {
                code: "X".into(),
                label_ja: "エックス".into(),
                label_en: "X".into(),
            }
            .into(),
            ConditionGradeRetired {
                code: "Y".into(),
                label_ja: "ワイ".into(),
                label_en: "Y".into(),
            }
            .into(),
        ])
        .collect();
    for e in &events {
        let data = e.payload_json().unwrap();
        let back = PolicyEvent::decode(e.event_type(), &data).unwrap().unwrap();
        assert_eq!(&back, e);
    }
    assert!(PolicyEvent::decode("Nope.v1", b"{}").is_none());
    // The stored shape: flat spec, camelCase, decimals as strings, tagged disposition.
    let like_new = events
        .iter()
        .find_map(|e| match e {
            PolicyEvent::ConditionGradeDefined(g) if g.spec.code == "LIKE_NEW" => Some(g),
            _ => None,
        })
        .unwrap();
    let json: serde_json::Value = serde_json::to_value(like_new).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "code": "LIKE_NEW",
            "labelJa": "新品同様",
            "labelEn": "Like new",
            "disposition": { "kind": "RESALE", "priceFactor": "0.8" }
        })
    );
    let size_fit = serde_json::to_value(ReturnReasonDefined {
        spec: seeded().reason("SIZE_FIT").unwrap().spec.clone(),
    })
    .unwrap();
    assert_eq!(size_fit["restockingFeePct"], "0");
    assert_eq!(
        size_fit["returnShippingFee"],
        serde_json::json!({"amount": "800", "currency": "JPY"})
    );
    assert_eq!(Policy::from_events(&events[..11]), seeded());
}
