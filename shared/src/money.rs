//! Money: `rust_decimal` amounts with an ISO 4217 currency code. Never floats.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A three-letter upper-case ISO 4217 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("currency {0:?} is not a three-letter ISO 4217 code")]
    BadCurrency(String),
    #[error("amount {0:?} is not a decimal number")]
    BadAmount(String),
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflows")]
    Overflow,
}

impl Currency {
    pub const JPY: Currency = Currency(*b"JPY");
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Minor units (decimal places) retailers round to: 0 for JPY, 2 for most others.
    pub fn minor_units(&self) -> u32 {
        match &self.0 {
            b"JPY" | b"KRW" | b"VND" | b"CLP" | b"ISK" => 0,
            b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" => 3,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(MoneyError::BadCurrency(s.to_string()))
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_string()
    }
}

/// A three-letter ISO 4217 code (`JPY`, `USD`) in event payloads.
impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "A three-letter upper-case ISO 4217 code, e.g. `JPY`."
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of one currency. Serialized with the amount as a decimal string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Money {
    /// A decimal string, e.g. `"2500"` or `"59.97"` (never a float).
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money::new(Decimal::ZERO, currency)
    }

    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let amount =
            Decimal::from_str(amount).map_err(|_| MoneyError::BadAmount(amount.to_string()))?;
        Ok(Money::new(amount, currency.parse()?))
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(Decimal::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// Rounds half-even (banker's rounding, as accounting does) to the currency's minor units.
    pub fn rounded(self) -> Money {
        Money::new(
            self.amount.round_dp_with_strategy(
                self.currency.minor_units(),
                rust_decimal::RoundingStrategy::MidpointNearestEven,
            ),
            self.currency,
        )
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_serializes_amount_as_decimal_string() {
        let m = Money::parse("1234.50", "JPY").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"1234.50","currency":"JPY"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_overflow() {
        let yen = Money::parse("100", "JPY").unwrap();
        let usd = Money::parse("1", "USD").unwrap();
        assert!(matches!(
            yen.checked_add(usd),
            Err(MoneyError::CurrencyMismatch(_, _))
        ));
        assert_eq!(
            yen.checked_mul(3).unwrap(),
            Money::parse("300", "JPY").unwrap()
        );
        let huge = Money::new(Decimal::MAX, Currency::JPY);
        assert_eq!(huge.checked_add(yen), Err(MoneyError::Overflow));
    }

    #[test]
    fn bad_currency_and_amount_are_typed_errors() {
        assert!(matches!(
            Money::parse("1", "yen"),
            Err(MoneyError::BadCurrency(_))
        ));
        assert!(matches!(
            Money::parse("1.2.3", "JPY"),
            Err(MoneyError::BadAmount(_))
        ));
    }

    #[test]
    fn rounding_is_half_even_to_minor_units() {
        assert_eq!(
            Money::parse("10.125", "USD").unwrap().rounded().amount,
            Decimal::from_str("10.12").unwrap()
        );
        assert_eq!(
            Money::parse("10.5", "JPY").unwrap().rounded().amount,
            Decimal::from_str("10").unwrap()
        );
    }
}
