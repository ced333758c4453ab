//! Pure rules: no IO, no async. Each module names the SPEC section it implements.

pub mod attribution;
pub mod credit;
pub mod email;
pub mod referral_code;
