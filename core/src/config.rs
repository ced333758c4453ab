//! Reading settings from environment variables, with one-line errors naming the variable.
//!
//! Hand-written rather than clap because a service's start-up failure should be a single
//! line naming the variable, and both binaries share these readers.

use std::str::FromStr;

/// A setting that is present but unusable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What it held.
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// The variable's value, or `default` when unset or empty.
pub fn string(var: &'static str, default: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => default.to_owned(),
    }
}

/// The variable parsed as `T`, or `default` when unset or empty.
pub fn parsed<T>(var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|e: T::Err| ConfigError {
                var,
                value: value.clone(),
                reason: e.to_string(),
            })
        }
        _ => Ok(default),
    }
}

/// A positive integer setting.
pub fn positive(var: &'static str, default: u64) -> Result<u64, ConfigError> {
    let value = parsed(var, default)?;
    if value == 0 {
        return Err(ConfigError {
            var,
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(value)
}

/// A URL setting whose scheme must be one of `schemes`.
pub fn url(var: &'static str, default: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let value = string(var, default);
    let scheme = value.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some(scheme) if schemes.contains(&scheme) => Ok(value),
        _ => Err(ConfigError {
            var,
            value,
            reason: format!("expected a URL starting with {}://", schemes.join("://, ")),
        }),
    }
}
