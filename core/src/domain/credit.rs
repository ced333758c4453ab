//! Wallet credit (SPEC: Signup credit): spent soonest-expiring first, never below zero;
//! expiry removes what is left of a grant and never more.

use chrono::{DateTime, Utc};

use crate::ids::{CreditGrantId, CreditSpendId, UserId};
use crate::money::{Money, MoneyError};

/// Why credit was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrantReason {
    /// The credit of an attributed signup; expires.
    Signup,
    /// A Basic referrer's paid commission; never expires.
    Commission,
}

impl GrantReason {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantReason::Signup => "SIGNUP",
            GrantReason::Commission => "COMMISSION",
        }
    }
}

/// Credit spendable at `now`: what is left of grants not yet past their expiry instant,
/// less any debt left by a reversed commission, and never below zero. The one home of
/// this rule: a grant past `expires_at` is not spendable even before the expiry job has
/// written it off.
pub fn available(
    grants: &[GrantBalance],
    now: DateTime<Utc>,
    zero: Money,
) -> Result<Money, MoneyError> {
    grants
        .iter()
        .filter(|g| g.is_spendable_at(now))
        .try_fold(zero, |sum, g| sum.checked_add(g.remaining))?
        .max(zero)
}

/// What is left of one grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantBalance {
    /// The grant.
    pub id: CreditGrantId,
    /// Unspent, unexpired amount.
    pub remaining: Money,
    /// When what is left expires; never for commission credit.
    pub expires_at: Option<DateTime<Utc>>,
}

impl GrantBalance {
    /// Whether the grant can still be spent at `now`.
    pub fn is_spendable_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

/// A spend larger than the unexpired balance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpendRefused {
    /// Not enough credit.
    #[error("only {available} of credit is available; {requested} was requested")]
    Insufficient {
        /// Spendable now.
        available: Money,
        /// Asked for.
        requested: Money,
    },
    /// The amount itself is unusable.
    #[error(transparent)]
    Amount(#[from] MoneyError),
}

/// Splits `amount` over `grants`, soonest-expiring first. Grants already expired at
/// `now` are not spendable, whatever their `remaining` says.
pub fn allocate_spend(
    grants: &[GrantBalance],
    amount: Money,
    now: DateTime<Utc>,
) -> Result<Vec<(CreditGrantId, Money)>, SpendRefused> {
    if !amount.is_positive() {
        return Err(MoneyError::NotPositive.into());
    }
    let available = available(grants, now, Money::zero(amount.currency()))?;
    let mut spendable: Vec<&GrantBalance> = grants
        .iter()
        .filter(|g| g.is_spendable_at(now) && g.remaining.is_positive())
        .collect();
    // Soonest-expiring first; credit that never expires goes last.
    spendable.sort_by_key(|g| (g.expires_at.is_none(), g.expires_at, g.id));
    if available < amount {
        return Err(SpendRefused::Insufficient {
            available,
            requested: amount,
        });
    }
    let mut left = amount;
    let mut parts = Vec::new();
    for grant in spendable {
        if left.is_zero() {
            break;
        }
        let take = grant.remaining.min(left)?;
        parts.push((grant.id, take));
        left = left.checked_sub(take)?;
    }
    Ok(parts)
}

/// A credit grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditGrant {
    /// Its id.
    pub id: CreditGrantId,
    /// Whose wallet.
    pub user_id: UserId,
    /// Why it was granted.
    pub reason: GrantReason,
    /// Granted amount.
    pub amount: Money,
    /// Unspent, unexpired amount (kept equal to the sum of the grant's ledger entries).
    pub remaining: Money,
    /// When granted.
    pub granted_at: DateTime<Utc>,
    /// When what is left expires; never for commission credit.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the expiry ran.
    pub expired_at: Option<DateTime<Utc>>,
}

/// A recorded spend, with what its first answer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditSpend {
    /// Its id.
    pub id: CreditSpendId,
    /// The caller's reference (idempotency key).
    pub reference: String,
    /// Amount spent.
    pub amount: Money,
    /// When.
    pub spent_at: DateTime<Utc>,
    /// Credit available right after the spend, as first answered (replays repeat it);
    /// unknown for spends recorded before it was kept.
    pub available_after: Option<Money>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn grant(n: u128, cents: i64, days_left: i64) -> GrantBalance {
        GrantBalance {
            id: CreditGrantId(Uuid::from_u128(n)),
            remaining: Money::usd_cents(cents),
            expires_at: Some(now() + Duration::days(days_left)),
        }
    }

    #[test]
    fn spends_soonest_expiring_first() {
        let grants = [grant(1, 250, 20), grant(2, 250, 5)];
        let parts = allocate_spend(&grants, Money::usd_cents(300), now()).unwrap();
        assert_eq!(
            parts,
            vec![
                (grants[1].id, Money::usd_cents(250)),
                (grants[0].id, Money::usd_cents(50))
            ]
        );
    }

    #[test]
    fn credit_that_never_expires_is_spent_last() {
        let forever = GrantBalance {
            id: CreditGrantId(Uuid::from_u128(9)),
            remaining: Money::usd_cents(500),
            expires_at: None,
        };
        let grants = [forever.clone(), grant(1, 250, 20)];
        let parts = allocate_spend(&grants, Money::usd_cents(300), now()).unwrap();
        assert_eq!(
            parts,
            vec![
                (grants[1].id, Money::usd_cents(250)),
                (forever.id, Money::usd_cents(50))
            ]
        );
    }

    #[test]
    fn a_negative_grant_nets_against_the_rest() {
        let debt = GrantBalance {
            id: CreditGrantId(Uuid::from_u128(9)),
            remaining: Money::usd_cents(-100),
            expires_at: None,
        };
        assert_eq!(
            available(std::slice::from_ref(&debt), now(), Money::usd_cents(0)),
            Ok(Money::usd_cents(0)),
            "a debt alone leaves nothing to spend, not less than nothing"
        );
        let grants = [debt, grant(1, 250, 20)];
        assert_eq!(
            available(&grants, now(), Money::usd_cents(0)),
            Ok(Money::usd_cents(150))
        );
        assert!(matches!(
            allocate_spend(&grants, Money::usd_cents(151), now()),
            Err(SpendRefused::Insufficient { .. })
        ));
    }

    #[test]
    fn refuses_more_than_the_unexpired_balance() {
        let grants = [grant(1, 250, 1), grant(2, 500, -1)];
        assert_eq!(
            allocate_spend(&grants, Money::usd_cents(251), now()),
            Err(SpendRefused::Insufficient {
                available: Money::usd_cents(250),
                requested: Money::usd_cents(251)
            })
        );
        assert!(allocate_spend(&grants, Money::usd_cents(0), now()).is_err());
    }

    proptest! {
        #[test]
        fn a_spend_takes_exactly_its_amount_and_never_overdraws(
            balances in proptest::collection::vec((0i64..1_000, -3i64..30), 0..6),
            want in 1i64..3_000,
        ) {
            let grants: Vec<_> = balances
                .iter()
                .enumerate()
                .map(|(i, (c, d))| grant(i as u128, *c, *d))
                .collect();
            if let Ok(parts) = allocate_spend(&grants, Money::usd_cents(want), now()) {
                let total: i64 = parts.iter().map(|(_, m)| m.to_minor_units().unwrap()).sum();
                prop_assert_eq!(total, want);
                for (id, taken) in parts {
                    let g = grants.iter().find(|g| g.id == id).unwrap();
                    prop_assert!(taken <= g.remaining && g.is_spendable_at(now()));
                }
            }
        }
    }
}
