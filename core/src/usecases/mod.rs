//! One module per flow: read state, decide with `domain`, write rows, enqueue jobs, all
//! inside the caller's transaction.

pub mod clicks;
pub mod credit;
pub mod email;
pub mod signup;
