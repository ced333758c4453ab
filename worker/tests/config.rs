//! A malformed setting stops the worker at start with one line naming the variable, and
//! no secret setting is ever printed: not in that line, not in the config's `Debug`.
//!
//! Each case runs in a child process with its own environment, because environment
//! variables are process-wide and tests in one process run in parallel.

use std::process::Command;

use referral_worker::WorkerConfig;

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

#[test]
fn malformed_database_url_is_named_without_its_password() {
    for value in [
        "mysql://user:hunter2@host/db",
        "postgres://user:hunter2@",
        "postgres://user:hunter2@host:port/db",
        "postgres://user:hunter2@[::1/db",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_referral-worker"))
            .env("DATABASE_URL", value)
            .output()
            .expect("worker binary runs");
        assert!(!output.status.success(), "{value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("DATABASE_URL"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

/// Marks the child process that [`print_config_from_env`] runs in.
const CHILD: &str = "REFERRAL_WORKER_CONFIG_TEST_CHILD";

#[test]
fn debug_of_the_config_hides_every_secret() {
    let output = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            "print_config_from_env",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2@db.internal:5432/referral",
        )
        .env("STRIPE_SECRET_KEY", "sk_live_do_not_print_me")
        .env("WORKER_CONCURRENCY", "7")
        .output()
        .expect("test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let debug = stdout
        .lines()
        .find_map(|line| line.strip_prefix("CONFIG: "))
        .unwrap_or_else(|| panic!("no config printed: {stdout}"));
    // The config was read from the environment given above, secrets included.
    assert!(debug.contains("concurrency: 7"), "{debug}");
    assert!(debug.contains("database_url"), "{debug}");
    assert!(debug.contains("secret_key"), "{debug}");
    for secret in ["hunter2", "sk_live_do_not_print_me", "db.internal"] {
        assert!(!debug.contains(secret), "{secret} shown: {debug}");
    }
}

#[test]
#[ignore = "run by debug_of_the_config_hides_every_secret in a child process"]
fn print_config_from_env() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let config = WorkerConfig::from_env().expect("the parent gives a valid environment");
    println!("CONFIG: {config:?}");
}
