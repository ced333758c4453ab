//! Test support lives in the e2e binary.
