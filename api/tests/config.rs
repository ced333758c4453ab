//! A malformed setting stops the api at start with one line naming the variable.

use std::process::Command;

#[test]
fn malformed_setting_stops_the_api_naming_the_variable() {
    for (var, value) in [
        ("LISTEN_ADDR", "everywhere"),
        ("PUBLIC_BASE_URL", "example.com/r"),
        ("DATABASE_URL", "not a url"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_referral-api"))
            .arg("serve")
            .env(var, value)
            .output()
            .expect("api binary runs");
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
}
