//! The payment port: how the order handler moves money, whatever the provider.
//!
//! The order aggregate records every step as an event (`PaymentAuthorized`, `PaymentCaptured`,
//! `PaymentVoided`, `PaymentRefunded`) and enforces the money identities (captured ≤ authorized,
//! refunded ≤ captured); the provider behind this trait does the actual moving. The handler
//! calls the provider first and records the result with the order's next command.
//!
//! **Idempotency.** A handler may crash between the provider call and the append, and retry.
//! So every call is safe to repeat: `authorize` is keyed by the payment id (the same id gives
//! the same reference), and `capture` / `refund` take an `operation` key (the handler passes
//! the fulfillment id or the command's idempotency key) under which a repeated call returns the
//! first answer instead of moving money twice — the pattern real providers' idempotency keys
//! follow. This is why `capture` and `refund` take one more argument than a bare port would,
//! and answer with the provider's reference for the operation (what the order event records).
//!
//! [`ManualProvider`] is built in: in memory, deterministic, for stores that take payment at
//! the counter and for tests (with a decline rule).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use ichigen_shared::money::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// The provider's name for an authorization, a capture or a refund.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderReference(pub String);

impl ProviderReference {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the provider refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PaymentError {
    /// The customer's means of payment was refused (limit, fraud rule, …).
    #[error("payment declined: {reason}")]
    Declined { reason: String },
    /// Zero, negative, or in another currency than the authorization.
    #[error("invalid amount: {reason}")]
    InvalidAmount { reason: &'static str },
    #[error("unknown payment reference {reference}")]
    UnknownReference { reference: String },
    #[error("cannot capture {requested}: {available} left on the authorization")]
    ExceedsAuthorized { requested: Money, available: Money },
    #[error("cannot refund {requested}: {available} captured and not refunded")]
    ExceedsCaptured { requested: Money, available: Money },
    /// A void after money was captured (refund instead).
    #[error("the authorization has captures; refund instead of voiding")]
    AlreadyCaptured,
    #[error("the authorization was voided")]
    Voided,
    /// The same payment id or operation key with a different request.
    #[error("{key} was already used for a different request")]
    Conflict { key: String },
    /// The provider could not be reached or failed; the call may be retried as is.
    #[error("payment provider unavailable: {detail}")]
    Unavailable { detail: String },
}

impl PaymentError {
    /// The stable code the API layers use.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::Declined { .. } => "PAYMENT_DECLINED",
            PaymentError::InvalidAmount { .. } => "INVALID_INPUT",
            PaymentError::UnknownReference { .. } => "NOT_FOUND",
            PaymentError::ExceedsAuthorized { .. }
            | PaymentError::ExceedsCaptured { .. }
            | PaymentError::AlreadyCaptured
            | PaymentError::Voided
            | PaymentError::Conflict { .. } => "CONFLICT",
            PaymentError::Unavailable { .. } => "PAYMENT_UNAVAILABLE",
        }
    }
}

/// A payment provider. Every method is idempotent (see the module documentation).
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Recorded in `PaymentAuthorized.provider`.
    fn name(&self) -> &'static str;

    /// Reserves `amount` on the customer's means of payment. Again with the same `payment_id`
    /// and amount: the same reference.
    async fn authorize(
        &self,
        payment_id: Uuid,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError>;

    /// Takes `amount` of the authorization. Again with the same `operation`: the first answer.
    async fn capture(
        &self,
        reference: &ProviderReference,
        operation: &str,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError>;

    /// Releases the whole authorization (nothing captured). Again: Ok.
    async fn void(&self, reference: &ProviderReference) -> Result<(), PaymentError>;

    /// Gives back `amount` of what was captured. Again with the same `operation`: the first
    /// answer.
    async fn refund(
        &self,
        reference: &ProviderReference,
        operation: &str,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OperationKind {
    Capture,
    Refund,
}

#[derive(Debug)]
struct Authorization {
    amount: Money,
    captured: Decimal,
    refunded: Decimal,
    voided: bool,
    /// By operation key: what was asked and answered.
    operations: BTreeMap<String, (OperationKind, Money, ProviderReference)>,
}

/// The built-in provider: money is taken by hand (at the counter, by bank transfer) and this
/// keeps the books. Deterministic: the reference of an authorization is `manual-<payment id>`,
/// of a capture or refund `manual-<payment id>/capture:<operation>` / `/refund:<operation>`, so
/// a repeated operation gets the same answer also after a restart.
///
/// The books are in memory. After a restart an authorization made before it is unknown here;
/// the order's own events are then the books (the order domain enforces captured ≤ authorized
/// and refunded ≤ captured before it calls the provider), so an operation on an unknown
/// `manual-…` reference is accepted and the books start again from it.
#[derive(Debug, Default)]
pub struct ManualProvider {
    /// Authorizations above this amount are declined (tests use it to exercise declines).
    decline_above: Option<Decimal>,
    authorizations: Mutex<BTreeMap<ProviderReference, Authorization>>,
}

impl ManualProvider {
    /// Approves every authorization.
    pub fn new() -> Self {
        ManualProvider::default()
    }

    /// Declines authorizations whose amount is above `limit` (in any currency).
    pub fn with_decline_above(limit: Decimal) -> Self {
        ManualProvider {
            decline_above: Some(limit),
            ..ManualProvider::default()
        }
    }

    /// The deterministic reference of a payment's authorization.
    pub fn reference_for(payment_id: Uuid) -> ProviderReference {
        ProviderReference(format!("manual-{payment_id}"))
    }

    /// (authorized, captured, refunded, voided) of an authorization, for tests and support.
    pub fn balance(&self, reference: &ProviderReference) -> Option<(Money, Money, Money, bool)> {
        let books = self.books();
        books.get(reference).map(|a| {
            let c = a.amount.currency;
            (
                a.amount,
                Money::new(a.captured, c),
                Money::new(a.refunded, c),
                a.voided,
            )
        })
    }

    fn books(&self) -> std::sync::MutexGuard<'_, BTreeMap<ProviderReference, Authorization>> {
        // A panic while holding the lock cannot leave the books half-written (every update is
        // a few field assignments after all checks), so a poisoned lock is still usable.
        self.authorizations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shared path of capture and refund.
    fn operate(
        &self,
        reference: &ProviderReference,
        operation: &str,
        amount: &Money,
        kind: OperationKind,
    ) -> Result<ProviderReference, PaymentError> {
        if operation.trim().is_empty() {
            return Err(PaymentError::Conflict {
                key: "an empty operation key".into(),
            });
        }
        let mut books = self.books();
        if !books.contains_key(reference) && reference.as_str().starts_with("manual-") {
            // Authorized before a restart (see the type's documentation).
            books.insert(
                reference.clone(),
                Authorization {
                    amount: *amount,
                    captured: match kind {
                        OperationKind::Capture => Decimal::ZERO,
                        OperationKind::Refund => amount.amount,
                    },
                    refunded: Decimal::ZERO,
                    voided: false,
                    operations: BTreeMap::new(),
                },
            );
        }
        let auth = books
            .get_mut(reference)
            .ok_or_else(|| PaymentError::UnknownReference {
                reference: reference.to_string(),
            })?;
        if let Some((k, asked, answer)) = auth.operations.get(operation) {
            return if *k == kind && asked == amount {
                Ok(answer.clone())
            } else {
                Err(PaymentError::Conflict {
                    key: format!("operation {operation}"),
                })
            };
        }
        check_amount(amount, &auth.amount)?;
        let currency = auth.amount.currency;
        let word = match kind {
            OperationKind::Capture => {
                if auth.voided {
                    return Err(PaymentError::Voided);
                }
                let available = auth.amount.amount - auth.captured;
                if amount.amount > available {
                    return Err(PaymentError::ExceedsAuthorized {
                        requested: *amount,
                        available: Money::new(available, currency),
                    });
                }
                auth.captured += amount.amount;
                "capture"
            }
            OperationKind::Refund => {
                let available = auth.captured - auth.refunded;
                if amount.amount > available {
                    return Err(PaymentError::ExceedsCaptured {
                        requested: *amount,
                        available: Money::new(available, currency),
                    });
                }
                auth.refunded += amount.amount;
                "refund"
            }
        };
        let answer = ProviderReference(format!("{reference}/{word}:{operation}"));
        auth.operations
            .insert(operation.to_owned(), (kind, *amount, answer.clone()));
        Ok(answer)
    }
}

/// Positive and in the authorization's currency.
fn check_amount(amount: &Money, authorized: &Money) -> Result<(), PaymentError> {
    if amount.currency != authorized.currency {
        return Err(PaymentError::InvalidAmount {
            reason: "not the authorization's currency",
        });
    }
    if amount.amount <= Decimal::ZERO {
        return Err(PaymentError::InvalidAmount {
            reason: "must be positive",
        });
    }
    Ok(())
}

#[async_trait]
impl PaymentProvider for ManualProvider {
    fn name(&self) -> &'static str {
        "manual"
    }

    async fn authorize(
        &self,
        payment_id: Uuid,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError> {
        // Zero is allowed: a fully discounted order still records its (empty) authorization.
        if amount.amount < Decimal::ZERO {
            return Err(PaymentError::InvalidAmount {
                reason: "must not be negative",
            });
        }
        let reference = Self::reference_for(payment_id);
        let mut books = self.books();
        if let Some(existing) = books.get(&reference) {
            return if existing.amount == *amount {
                Ok(reference)
            } else {
                Err(PaymentError::Conflict {
                    key: format!("payment {payment_id}"),
                })
            };
        }
        if self
            .decline_above
            .is_some_and(|limit| amount.amount > limit)
        {
            return Err(PaymentError::Declined {
                reason: "amount above the limit".into(),
            });
        }
        books.insert(
            reference.clone(),
            Authorization {
                amount: *amount,
                captured: Decimal::ZERO,
                refunded: Decimal::ZERO,
                voided: false,
                operations: BTreeMap::new(),
            },
        );
        Ok(reference)
    }

    async fn capture(
        &self,
        reference: &ProviderReference,
        operation: &str,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError> {
        self.operate(reference, operation, amount, OperationKind::Capture)
    }

    async fn void(&self, reference: &ProviderReference) -> Result<(), PaymentError> {
        let mut books = self.books();
        if !books.contains_key(reference) && reference.as_str().starts_with("manual-") {
            // Authorized before a restart: the order domain allowed the void (nothing captured).
            return Ok(());
        }
        let auth = books
            .get_mut(reference)
            .ok_or_else(|| PaymentError::UnknownReference {
                reference: reference.to_string(),
            })?;
        if !auth.captured.is_zero() {
            return Err(PaymentError::AlreadyCaptured);
        }
        auth.voided = true;
        Ok(())
    }

    async fn refund(
        &self,
        reference: &ProviderReference,
        operation: &str,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError> {
        self.operate(reference, operation, amount, OperationKind::Refund)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::executor::block_on;

    use super::*;

    fn yen(n: i64) -> Money {
        Money::new(Decimal::from(n), ichigen_shared::money::Currency::JPY)
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn authorize_is_deterministic_and_idempotent() {
        let p = ManualProvider::new();
        let r = block_on(p.authorize(id(1), &yen(1000))).unwrap();
        assert_eq!(r, ManualProvider::reference_for(id(1)));
        assert_eq!(r.as_str(), format!("manual-{}", id(1)));
        assert_eq!(block_on(p.authorize(id(1), &yen(1000))), Ok(r.clone()));
        let e = block_on(p.authorize(id(1), &yen(999))).unwrap_err();
        assert_eq!(e.code(), "CONFLICT");
        assert_eq!(p.balance(&r), Some((yen(1000), yen(0), yen(0), false)));
        assert_eq!(p.name(), "manual");
        assert!(block_on(p.authorize(id(2), &yen(-1))).is_err());
    }

    #[test]
    fn declines_follow_the_configured_rule() {
        let p = ManualProvider::with_decline_above(Decimal::from(5000));
        assert!(block_on(p.authorize(id(1), &yen(5000))).is_ok());
        let e = block_on(p.authorize(id(2), &yen(5001))).unwrap_err();
        assert!(matches!(e, PaymentError::Declined { .. }));
        assert_eq!(e.code(), "PAYMENT_DECLINED");
        // Nothing was recorded for the declined payment.
        assert_eq!(p.balance(&ManualProvider::reference_for(id(2))), None);
    }

    #[test]
    fn capture_never_exceeds_the_authorization_and_is_idempotent_per_operation() {
        let p = ManualProvider::new();
        let r = block_on(p.authorize(id(1), &yen(1000))).unwrap();
        let c1 = block_on(p.capture(&r, "ship-1", &yen(600))).unwrap();
        assert_eq!(c1.as_str(), format!("{r}/capture:ship-1"));
        // Retried: same answer, no second capture.
        assert_eq!(block_on(p.capture(&r, "ship-1", &yen(600))), Ok(c1));
        assert_eq!(
            block_on(p.capture(&r, "ship-1", &yen(500))),
            Err(PaymentError::Conflict {
                key: "operation ship-1".into()
            })
        );
        assert_eq!(
            block_on(p.capture(&r, "ship-2", &yen(401))),
            Err(PaymentError::ExceedsAuthorized {
                requested: yen(401),
                available: yen(400)
            })
        );
        let c2 = block_on(p.capture(&r, "ship-2", &yen(400))).unwrap();
        assert_eq!(c2.as_str(), format!("{r}/capture:ship-2"));
        assert_eq!(p.balance(&r), Some((yen(1000), yen(1000), yen(0), false)));
        // Bad amounts and references.
        let usd = Money::parse("1", "USD").unwrap();
        assert!(matches!(
            block_on(p.capture(&r, "x", &usd)),
            Err(PaymentError::InvalidAmount { .. })
        ));
        assert!(matches!(
            block_on(p.capture(&r, "y", &yen(0))),
            Err(PaymentError::InvalidAmount { .. })
        ));
        let unknown = ProviderReference("nope".into());
        assert_eq!(
            block_on(p.capture(&unknown, "z", &yen(1)))
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
    }

    #[test]
    fn refund_never_exceeds_what_was_captured() {
        let p = ManualProvider::new();
        let r = block_on(p.authorize(id(1), &yen(1000))).unwrap();
        assert!(matches!(
            block_on(p.refund(&r, "rf-1", &yen(1))),
            Err(PaymentError::ExceedsCaptured { .. })
        ));
        block_on(p.capture(&r, "ship-1", &yen(700))).unwrap();
        let rf = block_on(p.refund(&r, "rf-1", &yen(300))).unwrap();
        assert!(rf.as_str().starts_with(&format!("{r}/refund:")));
        assert_eq!(block_on(p.refund(&r, "rf-1", &yen(300))), Ok(rf));
        assert_eq!(
            block_on(p.refund(&r, "rf-2", &yen(401))),
            Err(PaymentError::ExceedsCaptured {
                requested: yen(401),
                available: yen(400)
            })
        );
        // An operation key belongs to one kind of operation.
        assert!(matches!(
            block_on(p.refund(&r, "ship-1", &yen(700))),
            Err(PaymentError::Conflict { .. })
        ));
        assert_eq!(p.balance(&r), Some((yen(1000), yen(700), yen(300), false)));
    }

    #[test]
    fn void_only_before_any_capture() {
        let p = ManualProvider::new();
        let r = block_on(p.authorize(id(1), &yen(1000))).unwrap();
        assert_eq!(block_on(p.void(&r)), Ok(()));
        assert_eq!(block_on(p.void(&r)), Ok(()));
        assert_eq!(
            block_on(p.capture(&r, "ship-1", &yen(1))),
            Err(PaymentError::Voided)
        );
        let r2 = block_on(p.authorize(id(2), &yen(1000))).unwrap();
        block_on(p.capture(&r2, "ship-1", &yen(1))).unwrap();
        assert_eq!(block_on(p.void(&r2)), Err(PaymentError::AlreadyCaptured));
        assert!(block_on(p.void(&ProviderReference("nope".into()))).is_err());
    }

    #[test]
    fn usable_as_a_shared_trait_object() {
        let p: Arc<dyn PaymentProvider> = Arc::new(ManualProvider::new());
        let r = block_on(p.authorize(id(9), &yen(10))).unwrap();
        assert!(block_on(p.capture(&r, "op", &yen(10))).is_ok());
    }

    #[test]
    fn an_authorization_from_before_a_restart_can_still_be_captured_once() {
        let before = ManualProvider::new();
        let r = block_on(before.authorize(id(7), &yen(1000))).unwrap();
        // A new process: the books are empty, the reference comes from the order's events.
        let after = ManualProvider::new();
        let c = block_on(after.capture(&r, "ship-1", &yen(1000))).unwrap();
        assert_eq!(c.as_str(), format!("{r}/capture:ship-1"));
        assert_eq!(block_on(after.capture(&r, "ship-1", &yen(1000))), Ok(c));
        assert!(matches!(
            block_on(after.capture(&r, "ship-2", &yen(1))),
            Err(PaymentError::ExceedsAuthorized { .. })
        ));
    }
}
