//! Money (SPEC: Ledger): `rust_decimal` amounts in USD with cents, never floats.
//!
//! [`Money::apply_rate`] is the single rounding point of the system.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Currencies the program accepts. Only USD until others are supported end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Currency {
    /// United States dollar.
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    /// ISO 4217 code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(code: &str) -> Result<Self, MoneyError> {
        match code {
            "USD" => Ok(Currency::Usd),
            other => Err(MoneyError::UnsupportedCurrency(other.to_owned())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// A currency code other than the supported ones.
    #[error("currency `{0}` is not supported; use USD")]
    UnsupportedCurrency(String),
    /// More than two decimal places.
    #[error("amount `{0}` has more than 2 decimal places")]
    TooPrecise(Decimal),
    /// Not a decimal number.
    #[error("amount `{0}` is not a decimal number like \"12.50\"")]
    NotANumber(String),
    /// Negative where only positive amounts make sense.
    #[error("amount must be greater than zero")]
    NotPositive,
    /// The sum does not fit.
    #[error("amount overflow")]
    Overflow,
    /// Two different currencies in one operation.
    #[error("currency mismatch")]
    CurrencyMismatch,
}

/// An amount of money with at most two decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Checks the scale (cents at most).
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let normalized = amount.normalize();
        if normalized.scale() > 2 {
            return Err(MoneyError::TooPrecise(amount));
        }
        let mut amount = normalized;
        amount.rescale(2);
        Ok(Self { amount, currency })
    }

    /// Zero dollars.
    pub fn zero(currency: Currency) -> Self {
        Self {
            amount: Decimal::new(0, 2),
            currency,
        }
    }

    /// US dollars from cents, for constants and tests.
    pub fn usd_cents(cents: i64) -> Self {
        Self {
            amount: Decimal::new(cents, 2),
            currency: Currency::Usd,
        }
    }

    /// Parses `"12.50"` and a currency code, as the API receives them.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let currency = Currency::from_str(currency)?;
        let value = Decimal::from_str_exact(amount.trim())
            .map_err(|_| MoneyError::NotANumber(amount.to_owned()))?;
        Self::new(value, currency)
    }

    /// The decimal amount (scale 2).
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// True when strictly above zero.
    pub fn is_positive(&self) -> bool {
        self.amount > Decimal::ZERO
    }

    /// True when zero.
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// `self + other`.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { amount, ..self })
    }

    /// `self - other` (may go negative: balances net against later earnings).
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { amount, ..self })
    }

    /// The smaller of two amounts of one currency.
    pub fn min(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(if other.amount < self.amount {
            other
        } else {
            self
        })
    }

    /// The larger of two amounts of one currency.
    pub fn max(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(if other.amount > self.amount {
            other
        } else {
            self
        })
    }

    /// The negated amount, for ledger entries that take money out.
    pub fn negated(self) -> Money {
        Money {
            amount: -self.amount,
            ..self
        }
    }

    /// `self × rate`, rounded half away from zero to the cent (SPEC: $50.00 × 5 % = $2.50).
    pub fn apply_rate(self, rate: Rate) -> Money {
        let amount = (self.amount * rate.0)
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        Money { amount, ..self }
    }

    /// Whole cents, the one conversion to a payment provider's minor units.
    pub fn to_minor_units(self) -> Result<i64, MoneyError> {
        let cents = self.amount * Decimal::ONE_HUNDRED;
        i64::try_from(cents).map_err(|_| MoneyError::Overflow)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch)
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// A commission rate such as 5 % (`0.05`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate(Decimal);

impl Rate {
    /// A rate in percent: `Rate::percent(5)` is 5 %.
    pub fn percent(percent: u32) -> Self {
        Rate(Decimal::new(i64::from(percent), 2))
    }

    /// The rate as a fraction (`0.05`).
    pub fn as_fraction(self) -> Decimal {
        self.0
    }

    /// A rate from a stored fraction: above zero, at most one, at most 4 decimals.
    pub fn from_fraction(fraction: Decimal) -> Option<Self> {
        (fraction > Decimal::ZERO && fraction <= Decimal::ONE && fraction.normalize().scale() <= 4)
            .then_some(Rate(fraction))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::dec;

    #[test]
    fn spec_examples_round_to_the_cent() {
        let fifty = Money::parse("50.00", "USD").unwrap();
        assert_eq!(fifty.apply_rate(Rate::percent(5)).amount(), dec!(2.50));
        assert_eq!(fifty.apply_rate(Rate::percent(10)).amount(), dec!(5.00));
    }

    #[test]
    fn midpoint_rounds_away_from_zero() {
        // 0.10 × 5 % = 0.005 → 0.01 (banker's rounding would give 0.00); 0.30 × 5 % = 0.015 → 0.02
        assert_eq!(
            Money::usd_cents(30).apply_rate(Rate::percent(5)).amount(),
            dec!(0.02)
        );
        assert_eq!(
            Money::usd_cents(10).apply_rate(Rate::percent(5)).amount(),
            dec!(0.01)
        );
        assert_eq!(
            Money::usd_cents(-30).apply_rate(Rate::percent(5)).amount(),
            dec!(-0.02)
        );
    }

    #[test]
    fn refuses_other_currencies_and_sub_cent_amounts() {
        assert_eq!(
            Money::parse("1.00", "EUR"),
            Err(MoneyError::UnsupportedCurrency("EUR".into()))
        );
        assert!(matches!(
            Money::parse("1.005", "USD"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Money::parse("1e3", "USD"),
            Err(MoneyError::NotANumber(_))
        ));
        assert_eq!(
            Money::parse("2.5", "USD").unwrap().amount().to_string(),
            "2.50"
        );
        assert_eq!(Money::parse("2.500", "USD").unwrap(), Money::usd_cents(250));
    }

    #[test]
    fn minor_units() {
        assert_eq!(Money::usd_cents(2550).to_minor_units(), Ok(2550));
    }

    proptest! {
        #[test]
        fn commission_never_exceeds_the_cash_part(cents in 0i64..10_000_000, pct in 0u32..=100) {
            let cash = Money::usd_cents(cents);
            let commission = cash.apply_rate(Rate::percent(pct));
            prop_assert!(commission <= cash);
            prop_assert!(commission.amount().scale() <= 2);
        }
    }
}
