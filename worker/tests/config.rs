//! A malformed setting stops the worker at start with one line naming the variable.

use std::process::Command;

#[test]
fn malformed_setting_stops_the_worker_naming_the_variable() {
    for (var, value) in [
        ("WORKER_CONCURRENCY", "many"),
        ("WORKER_CONCURRENCY", "0"),
        ("SMTP_URL", "mail.example.com"),
        ("DATABASE_URL", "mysql://localhost/db"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_referral-worker"))
            .env(var, value)
            .output()
            .expect("worker binary runs");
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
}
