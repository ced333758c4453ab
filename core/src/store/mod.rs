//! SQL, one file per table group. Every function takes the caller's connection so it
//! can run inside the caller's transaction.

pub mod api_keys;
pub mod emails;
pub mod jobs;
