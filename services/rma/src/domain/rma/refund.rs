//! What a refund or an exchange gives back, computed with `rust_decimal` (never floats).
//!
//! For the units being settled:
//!
//! - **gross** = Σ unit price (what the customer paid for each unit);
//! - **restocking fee** = per return line, `gross of the line × its reason's % / 100`, rounded
//!   *down* to the currency's minor units (a fraction of a yen goes to the customer);
//! - **shipping fee** = the customer-paid return shipping, once per return: deducted by the
//!   first settlement that covers a unit that was *sent back* (not handed in at a counter)
//!   and whose reason says the customer pays (the lowest such fee if reasons differ: one
//!   parcel, and ties go to the customer);
//! - **amount** = `max(0, gross − restocking fee − shipping fee)`, then, for a refund, capped at
//!   what the order can still refund (`captured − refunded` over every return and
//!   cancellation): a return never gives back money that was not taken.
//!
//! An exchange credits the same amount without the cap: no money moves for the credited part.

use ichigen_shared::money::{Currency, Money};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::events::SettlementBreakdown;
use super::{Rma, RmaLine};
use crate::domain::error::RmaError;

/// A return line with the ids of its units being settled (the quantity is their count), and
/// whether any of them was sent back rather than handed in at a counter (only a parcel costs
/// return shipping).
pub type QuoteItem<'a> = (&'a RmaLine, Vec<String>, bool);

/// The part of a settlement that comes from one return line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotedLine {
    pub rma_line_id: String,
    pub sku: String,
    pub qty: i64,
    pub unit_price: Money,
    pub gross: Money,
    pub restocking_fee_pct: Decimal,
    pub restocking_fee: Money,
}

/// What a refund of the settleable units would give back, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundQuote {
    pub gross: Money,
    pub restocking_fee: Money,
    pub shipping_fee: Money,
    /// What goes back: never negative, never above `refundable_left` (when capped).
    pub amount: Money,
    /// Whether `amount` was cut to `refundable_left`.
    pub capped: bool,
    pub lines: Vec<QuotedLine>,
    /// The units covered, line by line (in the order they were received within a line).
    pub units: Vec<String>,
}

impl RefundQuote {
    /// The breakdown recorded in `RefundIssued` and `ExchangeOrdered`.
    pub fn breakdown(&self) -> SettlementBreakdown {
        SettlementBreakdown {
            gross: self.gross,
            restocking_fee: self.restocking_fee,
            shipping_fee: self.shipping_fee,
            capped: self.capped,
            lines: self.lines.clone(),
        }
    }
}

/// The terms of an exchange of the settleable units for a replacement order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeTerms {
    /// The units' value: [`RefundQuote::amount`] without the cap.
    pub credit: Money,
    pub replacement_total: Money,
    /// `replacement_total − credit`: positive, the customer pays it; negative, it is due to
    /// them.
    pub difference: Money,
    pub quote: RefundQuote,
}

/// The refund of every unit that can be settled now (received, not yet refunded or exchanged,
/// graded if its reason requires an inspection), capped at `refundable_left`.
///
/// Errors: no such return, `refundable_left` in another currency, [`RmaError::NothingToSettle`]
/// when no unit is ready, an overflow.
pub fn refund_quote(rma: &Rma, refundable_left: Money) -> Result<RefundQuote, RmaError> {
    let (currency, items) = settleable(rma)?;
    quote(
        currency,
        &items,
        rma.shipping_fee_charged,
        Some(refundable_left),
    )
}

/// The terms of exchanging every unit that can be settled now for a replacement order of
/// `replacement_total` (placed by the handler before it records the exchange).
pub fn exchange_terms(rma: &Rma, replacement_total: Money) -> Result<ExchangeTerms, RmaError> {
    let (currency, items) = settleable(rma)?;
    let quote = quote(currency, &items, rma.shipping_fee_charged, None)?;
    let difference = exchange_difference(quote.amount, replacement_total)?;
    Ok(ExchangeTerms {
        credit: quote.amount,
        replacement_total,
        difference,
        quote,
    })
}

/// `replacement_total − credit` (positive: the customer pays; negative: a refund is due).
pub fn exchange_difference(credit: Money, replacement_total: Money) -> Result<Money, RmaError> {
    if credit.currency != replacement_total.currency {
        return Err(RmaError::CurrencyMismatch {
            field: "replacementTotal".into(),
            expected: credit.currency,
            actual: replacement_total.currency,
        });
    }
    replacement_total
        .checked_sub(credit)
        .map_err(|_| overflow("replacementTotal"))
}

/// The formula itself (see the module documentation), over `items` (lines without units are
/// skipped). `shipping_already_charged`:
/// an earlier settlement of the same return deducted the return shipping. `refundable_left`:
/// the cap (`None` for an exchange credit); a negative cap counts as zero.
pub fn quote(
    currency: Currency,
    items: &[QuoteItem<'_>],
    shipping_already_charged: bool,
    refundable_left: Option<Money>,
) -> Result<RefundQuote, RmaError> {
    let zero = Money::zero(currency);
    let mut gross = zero;
    let mut restocking_fee = zero;
    let mut shipping_fee: Option<Money> = None;
    let mut lines = Vec::with_capacity(items.len());
    let mut units = Vec::new();
    for (line, line_units, sent_back) in items {
        if line_units.is_empty() {
            continue;
        }
        same_currency("unitPrice", currency, &line.unit_price)?;
        same_currency(
            "returnShippingFee",
            currency,
            &line.reason.return_shipping_fee,
        )?;
        let qty = i64::try_from(line_units.len()).map_err(|_| overflow("units"))?;
        let line_gross = line
            .unit_price
            .checked_mul(qty)
            .map_err(|_| overflow("units"))?;
        let fee = restocking_fee_of(line_gross, line.reason.restocking_fee_pct)?;
        gross = gross
            .checked_add(line_gross)
            .map_err(|_| overflow("units"))?;
        restocking_fee = restocking_fee
            .checked_add(fee)
            .map_err(|_| overflow("units"))?;
        if line.reason.customer_pays_shipping && *sent_back && !shipping_already_charged {
            let fee = line.reason.return_shipping_fee;
            shipping_fee = Some(match shipping_fee {
                Some(f) if f.amount <= fee.amount => f,
                _ => fee,
            });
        }
        lines.push(QuotedLine {
            rma_line_id: line.rma_line_id.clone(),
            sku: line.sku.clone(),
            qty,
            unit_price: line.unit_price,
            gross: line_gross,
            restocking_fee_pct: line.reason.restocking_fee_pct,
            restocking_fee: fee,
        });
        units.extend(line_units.iter().cloned());
    }
    let shipping_fee = shipping_fee.unwrap_or(zero);
    let net = gross
        .amount
        .checked_sub(restocking_fee.amount)
        .and_then(|n| n.checked_sub(shipping_fee.amount))
        .ok_or_else(|| overflow("units"))?
        .max(Decimal::ZERO);
    let (amount, capped) = match refundable_left {
        None => (net, false),
        Some(left) => {
            same_currency("refundableLeft", currency, &left)?;
            let left = left.amount.max(Decimal::ZERO);
            (net.min(left), net > left)
        }
    };
    Ok(RefundQuote {
        gross,
        restocking_fee,
        shipping_fee,
        amount: Money::new(amount, currency),
        capped,
        lines,
        units,
    })
}

/// `gross × pct / 100`, rounded towards zero to the currency's minor units.
fn restocking_fee_of(gross: Money, pct: Decimal) -> Result<Money, RmaError> {
    let fee = gross
        .amount
        .checked_mul(pct)
        .and_then(|f| f.checked_div(Decimal::ONE_HUNDRED))
        .ok_or_else(|| overflow("units"))?
        .round_dp_with_strategy(gross.currency.minor_units(), RoundingStrategy::ToZero);
    Ok(Money::new(fee, gross.currency))
}

/// The return's currency and its settleable units grouped by line (in line order).
fn settleable(rma: &Rma) -> Result<(Currency, Vec<QuoteItem<'_>>), RmaError> {
    let header = rma.header.as_ref().ok_or(RmaError::RmaNotFound)?;
    let units = rma.settleable_units();
    if units.is_empty() {
        return Err(RmaError::NothingToSettle);
    }
    let items = rma
        .lines
        .iter()
        .map(|l| {
            let of_line: Vec<_> = units
                .iter()
                .filter(|u| u.rma_line_id == l.line.rma_line_id)
                .collect();
            let sent_back = of_line
                .iter()
                .any(|u| !rma.receipts.get(&u.receipt_id).is_some_and(|r| r.in_person));
            let ids = of_line.iter().map(|u| u.unit_id.clone()).collect();
            (&l.line, ids, sent_back)
        })
        .collect();
    Ok((header.currency, items))
}

fn same_currency(field: &str, expected: Currency, money: &Money) -> Result<(), RmaError> {
    if money.currency == expected {
        Ok(())
    } else {
        Err(RmaError::CurrencyMismatch {
            field: field.to_owned(),
            expected,
            actual: money.currency,
        })
    }
}

fn overflow(field: &str) -> RmaError {
    RmaError::Overflow {
        field: field.to_owned(),
    }
}
