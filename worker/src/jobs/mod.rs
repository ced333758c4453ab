//! One handler per job. Each re-reads state and does nothing when its work is done or
//! no longer applies, because delivery is at-least-once.

mod expire_signup_credit;
mod grant_signup_credit;
mod send_email;
