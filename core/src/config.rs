//! Reading settings from environment variables, with one-line errors naming the variable.
//!
//! Hand-written rather than clap because a service's start-up failure should be a single
//! line naming the variable, and both binaries share these readers.
//!
//! An error never repeats the value it refused: settings such as `DATABASE_URL` carry a
//! password, and start-up errors end up in terminals, logs and bug reports.

use std::str::FromStr;

/// A setting that is present but unusable. Names the variable and the problem, never
/// the value.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var} is invalid: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// Why it was refused, without the refused value.
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
///
/// The refusal's reason is `T::Err`'s message, so use this only for types whose parse
/// errors do not quote their input (numbers, booleans, socket addresses), never for a
/// secret.
pub fn parsed<T>(var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|e: T::Err| ConfigError {
                var,
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
            reason: "must be at least 1".into(),
        });
    }
    Ok(value)
}

/// A URL setting whose scheme must be one of `schemes`.
pub fn url(var: &'static str, default: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let value = string(var, default);
    check_url(var, &value, schemes)?;
    Ok(value)
}

/// Refuses `value` unless it parses as a URL with one of `schemes`. The `url` crate's
/// parse errors are fixed phrases ("invalid port number"), so they are safe to show.
fn check_url(var: &'static str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let expected = || {
        let schemes: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        format!("expected a URL starting with {}", schemes.join(" or "))
    };
    let scheme = value.split_once("://").map(|(scheme, _)| scheme);
    if !scheme.is_some_and(|scheme| schemes.contains(&scheme)) {
        return Err(ConfigError {
            var,
            reason: expected(),
        });
    }
    url::Url::parse(value).map_err(|e| ConfigError {
        var,
        reason: format!("not a valid URL ({e})"),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTGRES: &[&str] = &["postgres", "postgresql"];

    #[test]
    fn a_refused_url_is_named_but_not_repeated() {
        for value in [
            "mysql://user:hunter2@host/db",
            "postgres://user:hunter2@host:port/db",
            "postgres://user:hunter2@[::1/db",
            "user:hunter2@host/db",
        ] {
            let error = check_url("DATABASE_URL", value, POSTGRES).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("DATABASE_URL"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
            assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
        }
    }

    #[test]
    fn a_wrong_scheme_says_which_schemes_are_expected() {
        let error = check_url("DATABASE_URL", "mysql://localhost/db", POSTGRES).unwrap_err();
        assert_eq!(
            error.to_string(),
            "configuration error: DATABASE_URL is invalid: expected a URL starting with \
             postgres:// or postgresql://"
        );
    }

    #[test]
    fn well_formed_urls_pass() {
        for value in [
            "postgres://postgres:postgres@127.0.0.1:5432/referral",
            "postgresql://localhost/referral",
            "postgres:///referral?host=/var/run/postgresql",
        ] {
            assert!(
                check_url("DATABASE_URL", value, POSTGRES).is_ok(),
                "{value}"
            );
        }
    }
}
