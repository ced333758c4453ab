//! One module per flow: read state, decide with `domain`, write rows, enqueue jobs, all
//! inside the caller's transaction.

pub mod email;
