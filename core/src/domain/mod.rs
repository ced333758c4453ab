//! Pure rules: no IO, no async. Each module names the SPEC section it implements.

pub mod api_key;
pub mod attribution;
pub mod clicks;
pub mod commission;
pub mod credit;
pub mod earnings;
pub mod email;
pub mod ledger;
pub mod operations;
pub mod page_tokens;
pub mod paging;
pub mod partner;
pub mod payout;
pub mod purchase;
pub mod referral_code;
pub mod referrals;
pub mod stripe_signature;
pub mod user;
