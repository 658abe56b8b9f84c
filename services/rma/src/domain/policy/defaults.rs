//! The policy a Japanese omnichannel retailer would start from.
//!
//! Merchant-fault reasons (defective, wrong item, damaged in transit) cost the customer nothing
//! and are approved at once, as Japanese consumer expectations and most retailers' terms have
//! it; customer-convenience reasons (size, changed mind) need an agent's approval, the customer
//! pays the return shipping, and a changed mind also carries a restocking fee. Grades follow
//! the vocabulary of Japanese resale marketplaces (新品同様, 目立った傷や汚れなし, …), so resale
//! listings read the way shoppers expect.

use ichigen_shared::money::{Currency, Money};
use rust_decimal::Decimal;

use super::{ConditionGradeSpec, Disposition, PolicyCommand, ReturnReasonSpec};

/// The default reasons and grades, as commands (seed them with [`super::decide_policy`]; a
/// second run decides nothing).
pub fn default_policy() -> Vec<PolicyCommand> {
    let mut commands: Vec<PolicyCommand> = reasons()
        .into_iter()
        .map(PolicyCommand::DefineReason)
        .collect();
    commands.extend(grades().into_iter().map(PolicyCommand::DefineGrade));
    commands
}

/// The shipping fee a customer pays for a convenience return (a typical 宅配便 label).
fn customer_shipping() -> Money {
    Money::new(Decimal::from(800), Currency::JPY)
}

struct Reason {
    code: &'static str,
    ja: &'static str,
    en: &'static str,
    days: i64,
    inspect: bool,
    fee_pct: i64,
    customer_pays: bool,
    auto: bool,
}

fn reasons() -> Vec<ReturnReasonSpec> {
    let r = |r: Reason| ReturnReasonSpec {
        code: r.code.into(),
        label_ja: r.ja.into(),
        label_en: r.en.into(),
        window_days: r.days,
        inspection_required: r.inspect,
        restocking_fee_pct: Decimal::from(r.fee_pct),
        customer_pays_shipping: r.customer_pays,
        return_shipping_fee: if r.customer_pays {
            customer_shipping()
        } else {
            Money::zero(Currency::JPY)
        },
        auto_approve: r.auto,
    };
    vec![
        r(Reason {
            code: "DEFECTIVE",
            ja: "初期不良",
            en: "Defective",
            days: 30,
            inspect: true,
            fee_pct: 0,
            customer_pays: false,
            auto: true,
        }),
        r(Reason {
            code: "WRONG_ITEM",
            ja: "誤配送（注文と異なる商品）",
            en: "Wrong item received",
            days: 30,
            inspect: false,
            fee_pct: 0,
            customer_pays: false,
            auto: true,
        }),
        r(Reason {
            code: "DAMAGED_IN_TRANSIT",
            ja: "配送中の破損",
            en: "Damaged in transit",
            days: 14,
            inspect: true,
            fee_pct: 0,
            customer_pays: false,
            auto: true,
        }),
        r(Reason {
            code: "SIZE_FIT",
            ja: "サイズが合わない",
            en: "Size or fit",
            days: 30,
            inspect: true,
            fee_pct: 0,
            customer_pays: true,
            auto: false,
        }),
        r(Reason {
            code: "CHANGED_MIND",
            ja: "お客様都合（イメージ違い・不要になった）",
            en: "Changed mind",
            days: 14,
            inspect: true,
            fee_pct: 10,
            customer_pays: true,
            auto: false,
        }),
    ]
}

fn grades() -> Vec<ConditionGradeSpec> {
    let g = |code: &str, ja: &str, en: &str, disposition| ConditionGradeSpec {
        code: code.into(),
        label_ja: ja.into(),
        label_en: en.into(),
        disposition,
    };
    let resale = |pct: i64| Disposition::Resale {
        price_factor: Decimal::new(pct, 2).normalize(),
    };
    vec![
        g("NEW", "新品・未開封", "New, unopened", Disposition::Restock),
        g("LIKE_NEW", "新品同様", "Like new", resale(80)),
        g("GOOD", "目立った傷や汚れなし", "Good", resale(60)),
        g("FAIR", "やや傷や汚れあり", "Fair", resale(40)),
        g(
            "DAMAGED",
            "傷や汚れあり（販売不可）",
            "Damaged, not sellable",
            Disposition::Dispose,
        ),
        g(
            "DEFECTIVE",
            "不良品（メーカー返品）",
            "Defective, return to vendor",
            Disposition::ReturnToVendor,
        ),
    ]
}
