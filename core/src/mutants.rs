//! Planted bugs, for measuring how well the fault suite sees (`scripts/faults --mutants`,
//! RELIABILITY.md). Each is a regression someone could plausibly write; the suite must
//! report every one of them in most seeds.
//!
//! Only a build with the `mutants` feature can plant one: there `REFERRAL_MUTANT=<name>`
//! in a process's environment switches that bug on. In every other build [`planted`] is
//! the constant `false` and the bug's branch is compiled away.

/// Whether this build can plant bugs at all.
pub const COMPILED: bool = cfg!(feature = "mutants");

/// A bug that can be planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutant {
    /// A commission is made eligible and paid without checking its 30-day hold against
    /// the deciding process's clock.
    HoldUnchecked,
    /// A refund's clawback is applied twice: the refund is counted on top of a refunded
    /// total that already includes it.
    ClawbackTwice,
    /// The signup-credit grant job, finding the grant already there, credits it again.
    SignupCreditTwice,
    /// A payout request reads the referral balance without locking the user first.
    PayoutWithoutLock,
    /// The e-mail job sends a message and never records that it did.
    EmailUnrecorded,
}

impl Mutant {
    /// Every bug the product's code can plant (the suite's own, in the Stripe stand-in,
    /// lives in the test code).
    pub const ALL: [Mutant; 5] = [
        Mutant::HoldUnchecked,
        Mutant::ClawbackTwice,
        Mutant::SignupCreditTwice,
        Mutant::PayoutWithoutLock,
        Mutant::EmailUnrecorded,
    ];

    /// The name `REFERRAL_MUTANT` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Mutant::HoldUnchecked => "hold-unchecked",
            Mutant::ClawbackTwice => "clawback-twice",
            Mutant::SignupCreditTwice => "signup-credit-twice",
            Mutant::PayoutWithoutLock => "payout-without-lock",
            Mutant::EmailUnrecorded => "email-unrecorded",
        }
    }
}

/// Whether `mutant` is planted in this process.
#[cfg(feature = "mutants")]
pub fn planted(mutant: Mutant) -> bool {
    static PLANTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PLANTED
        .get_or_init(|| std::env::var("REFERRAL_MUTANT").ok())
        .as_deref()
        == Some(mutant.name())
}

/// Whether `mutant` is planted in this process: never, in this build.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub const fn planted(_mutant: Mutant) -> bool {
    false
}
