//! The return policy as data, one aggregate in stream `rma-policy`.
//!
//! Reasons (why a customer returns something, and what that costs them) and condition grades
//! (what an inspector found, and what then happens to the unit) are configured by the business,
//! not coded: a retailer changes its window or its restocking fee without a release. The RMA
//! aggregate *snapshots* what it uses from here when a return is requested or a unit graded, so
//! a later policy change never alters an open return.
//!
//! Definitions are absolute: `DefineReason(spec)` creates or replaces the reason (and makes it
//! active again if it was retired); the same spec twice decides nothing, so a script that loads
//! [`default_policy`] can be run on every start. A code is never deleted, only retired: old
//! returns keep naming it.

mod defaults;
mod events;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use ichigen_shared::money::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use defaults::default_policy;
pub use events::*;

use super::error::{non_negative_minor_units, quantity, text, validate_code, RmaError};

/// The one stream of the policy (category `rma`, id `policy`: not a UUID, so readers of
/// `rma-<uuid>` streams tell it apart).
pub const POLICY_STREAM: &str = "rma-policy";
/// Labels are shown to customers and staff: short text, not documents.
pub const MAX_LABEL_CHARS: usize = 200;
/// A return window longer than a year is not a return policy but a warranty.
pub const MAX_WINDOW_DAYS: i64 = 365;

/// Everything that describes a return reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnReasonSpec {
    /// `[A-Z0-9_]{1,32}`, e.g. `DEFECTIVE`.
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    /// Days after delivery or pickup during which the reason may be chosen (1..=365).
    pub window_days: i64,
    /// Whether a unit must be graded before it is refunded or exchanged.
    pub inspection_required: bool,
    /// Percentage of the returned value kept by the merchant (0..=100, at most 2 decimals).
    pub restocking_fee_pct: Decimal,
    /// Whether the customer bears the return shipping (deducted once per return).
    pub customer_pays_shipping: bool,
    /// What return shipping costs the customer; only used when `customer_pays_shipping`.
    pub return_shipping_fee: Money,
    /// Whether a request with only auto-approving reasons is approved at once.
    pub auto_approve: bool,
}

/// What an inspector's grade means for the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Disposition {
    /// Back to sellable stock of the original SKU.
    Restock,
    /// Sold as a resale SKU at `original price × price_factor` (0 < factor ≤ 1).
    #[serde(rename_all = "camelCase")]
    Resale { price_factor: Decimal },
    /// Written off.
    Dispose,
    /// Sent back to the supplier (typically for a vendor credit).
    ReturnToVendor,
}

impl Disposition {
    /// The wire name (`RESTOCK`, `RESALE`, `DISPOSE`, `RETURN_TO_VENDOR`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Disposition::Restock => "RESTOCK",
            Disposition::Resale { .. } => "RESALE",
            Disposition::Dispose => "DISPOSE",
            Disposition::ReturnToVendor => "RETURN_TO_VENDOR",
        }
    }
}

/// Everything that describes a condition grade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionGradeSpec {
    /// `[A-Z0-9_]{1,32}`, e.g. `LIKE_NEW` (it is part of resale SKUs).
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    pub disposition: Disposition,
}

/// A defined reason and whether it is still offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnReason {
    pub spec: ReturnReasonSpec,
    pub active: bool,
}

/// A defined grade and whether inspectors may still use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionGrade {
    pub spec: ConditionGradeSpec,
    pub active: bool,
}

/// The folded policy stream. `Default` is an empty policy (nothing can be returned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub reasons: BTreeMap<String, ReturnReason>,
    pub grades: BTreeMap<String, ConditionGrade>,
}

/// What an administrator (or the seeding of [`default_policy`]) asks of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyCommand {
    /// Create or replace a reason; it is active afterwards.
    DefineReason(ReturnReasonSpec),
    RetireReason {
        code: String,
    },
    /// Create or replace a grade; it is active afterwards.
    DefineGrade(ConditionGradeSpec),
    RetireGrade {
        code: String,
    },
}

impl Policy {
    /// Folds a whole history.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a PolicyEvent>) -> Self {
        let mut policy = Policy::default();
        for e in events {
            policy.apply(e);
        }
        policy
    }

    pub fn reason(&self, code: &str) -> Option<&ReturnReason> {
        self.reasons.get(code)
    }

    pub fn grade(&self, code: &str) -> Option<&ConditionGrade> {
        self.grades.get(code)
    }

    /// Reasons a customer may choose now, in code order.
    pub fn active_reasons(&self) -> impl Iterator<Item = &ReturnReasonSpec> {
        self.reasons.values().filter(|r| r.active).map(|r| &r.spec)
    }

    /// Grades an inspector may use now, in code order.
    pub fn active_grades(&self) -> impl Iterator<Item = &ConditionGradeSpec> {
        self.grades.values().filter(|g| g.active).map(|g| &g.spec)
    }

    /// The reason `code`, if it exists and is active; `field` names the input in the error.
    pub fn active_reason(&self, field: &str, code: &str) -> Result<&ReturnReasonSpec, RmaError> {
        match self.reasons.get(code) {
            Some(r) if r.active => Ok(&r.spec),
            Some(_) => Err(RmaError::ReasonRetired {
                field: field.to_owned(),
                code: code.to_owned(),
            }),
            None => Err(RmaError::UnknownReason {
                field: field.to_owned(),
                code: code.to_owned(),
            }),
        }
    }

    /// The grade `code`, if it exists and is active; `field` names the input in the error.
    pub fn active_grade(&self, field: &str, code: &str) -> Result<&ConditionGradeSpec, RmaError> {
        match self.grades.get(code) {
            Some(g) if g.active => Ok(&g.spec),
            Some(_) => Err(RmaError::GradeRetired {
                field: field.to_owned(),
                code: code.to_owned(),
            }),
            None => Err(RmaError::UnknownGrade {
                field: field.to_owned(),
                code: code.to_owned(),
            }),
        }
    }

    /// Applies one event (never fails: `decide_policy` validated it).
    pub fn apply(&mut self, event: &PolicyEvent) {
        match event {
            PolicyEvent::ReturnReasonDefined(e) => {
                self.reasons.insert(
                    e.spec.code.clone(),
                    ReturnReason {
                        spec: e.spec.clone(),
                        active: true,
                    },
                );
            }
            PolicyEvent::ReturnReasonRetired(e) => {
                if let Some(r) = self.reasons.get_mut(&e.code) {
                    r.active = false;
                }
            }
            PolicyEvent::ConditionGradeDefined(e) => {
                self.grades.insert(
                    e.spec.code.clone(),
                    ConditionGrade {
                        spec: e.spec.clone(),
                        active: true,
                    },
                );
            }
            PolicyEvent::ConditionGradeRetired(e) => {
                if let Some(g) = self.grades.get_mut(&e.code) {
                    g.active = false;
                }
            }
        }
    }
}

/// Decides a policy command. Defining what is already defined and active, or retiring what is
/// already retired, is a retry: `Ok(vec![])`.
pub fn decide_policy(
    policy: &Policy,
    command: &PolicyCommand,
) -> Result<Vec<PolicyEvent>, RmaError> {
    match command {
        PolicyCommand::DefineReason(spec) => {
            validate_reason(spec)?;
            let unchanged = policy
                .reasons
                .get(&spec.code)
                .is_some_and(|r| r.active && r.spec == *spec);
            Ok(if unchanged {
                vec![]
            } else {
                vec![ReturnReasonDefined { spec: spec.clone() }.into()]
            })
        }
        PolicyCommand::RetireReason { code } => {
            let reason = policy
                .reasons
                .get(code)
                .ok_or_else(|| RmaError::UnknownReason {
                    field: "code".into(),
                    code: code.clone(),
                })?;
            Ok(if reason.active {
                vec![ReturnReasonRetired {
                    code: code.clone(),
                    label_ja: reason.spec.label_ja.clone(),
                    label_en: reason.spec.label_en.clone(),
                }
                .into()]
            } else {
                vec![]
            })
        }
        PolicyCommand::DefineGrade(spec) => {
            validate_grade(spec)?;
            let unchanged = policy
                .grades
                .get(&spec.code)
                .is_some_and(|g| g.active && g.spec == *spec);
            Ok(if unchanged {
                vec![]
            } else {
                vec![ConditionGradeDefined { spec: spec.clone() }.into()]
            })
        }
        PolicyCommand::RetireGrade { code } => {
            let grade = policy
                .grades
                .get(code)
                .ok_or_else(|| RmaError::UnknownGrade {
                    field: "code".into(),
                    code: code.clone(),
                })?;
            Ok(if grade.active {
                vec![ConditionGradeRetired {
                    code: code.clone(),
                    label_ja: grade.spec.label_ja.clone(),
                    label_en: grade.spec.label_en.clone(),
                }
                .into()]
            } else {
                vec![]
            })
        }
    }
}

/// Checks every field of a reason (the whole spec, since a definition replaces it).
pub fn validate_reason(spec: &ReturnReasonSpec) -> Result<(), RmaError> {
    validate_code("code", &spec.code)?;
    text("labelJa", &spec.label_ja, MAX_LABEL_CHARS)?;
    text("labelEn", &spec.label_en, MAX_LABEL_CHARS)?;
    quantity("windowDays", spec.window_days, 1, MAX_WINDOW_DAYS)?;
    let pct = spec.restocking_fee_pct;
    if pct < Decimal::ZERO || pct > Decimal::ONE_HUNDRED {
        return Err(RmaError::OutOfRange {
            field: "restockingFeePct".into(),
            value: pct,
            expected: "between 0 and 100",
        });
    }
    if pct.normalize().scale() > 2 {
        return Err(RmaError::OutOfRange {
            field: "restockingFeePct".into(),
            value: pct,
            expected: "a percentage with at most 2 decimals",
        });
    }
    non_negative_minor_units("returnShippingFee", &spec.return_shipping_fee)
}

/// Checks every field of a grade.
pub fn validate_grade(spec: &ConditionGradeSpec) -> Result<(), RmaError> {
    validate_code("code", &spec.code)?;
    text("labelJa", &spec.label_ja, MAX_LABEL_CHARS)?;
    text("labelEn", &spec.label_en, MAX_LABEL_CHARS)?;
    if let Disposition::Resale { price_factor } = spec.disposition {
        if price_factor <= Decimal::ZERO || price_factor > Decimal::ONE {
            return Err(RmaError::OutOfRange {
                field: "disposition.priceFactor".into(),
                value: price_factor,
                expected: "greater than 0 and at most 1",
            });
        }
    }
    Ok(())
}
