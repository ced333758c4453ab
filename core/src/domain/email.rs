//! E-mail addresses and their normalized form (SPEC: Attribution, rule 3).
//!
//! Two addresses are the same person when their normalized forms match: lowercase,
//! `+tag` removed, and for gmail.com / googlemail.com dots ignored (one mailbox).

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Not of the form `local@domain.tld`.
    #[error("not an e-mail address")]
    Malformed,
    /// Longer than RFC 5321 allows.
    #[error("longer than 254 characters")]
    TooLong,
}

/// A syntactically valid address, as given (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Checks the shape: an RFC 5322 dot-atom local part (no quoted forms, no `<`, `>`,
    /// spaces or brackets, which only ever reach us in injection attempts) and a domain of
    /// at least two DNS labels. Whether the mailbox exists is the platform's concern.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let address = raw.trim();
        if address.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = address.rsplit_once('@').ok_or(EmailError::Malformed)?;
        if is_dot_atom(local) && local.chars().count() <= 64 && is_domain(domain) {
            Ok(Self(address.to_owned()))
        } else {
            Err(EmailError::Malformed)
        }
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two addresses of one person share.
    pub fn normalized(&self) -> String {
        let lower = self.0.to_lowercase();
        let (local, domain) = lower.split_once('@').unwrap_or((&lower, ""));
        let local = local.split('+').next().unwrap_or(local);
        match domain {
            "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
            _ => format!("{local}@{domain}"),
        }
    }
}

/// RFC 5322 `atext` (letters and digits of any script for internationalized addresses).
fn is_atext(c: char) -> bool {
    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn is_dot_atom(local: &str) -> bool {
    !local.is_empty()
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.chars().count())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_per_spec() {
        for (raw, normalized) in [
            ("Ana@Example.com", "ana@example.com"),
            ("ana+promo@example.com", "ana@example.com"),
            ("j.o.h.n@gmail.com", "john@gmail.com"),
            ("John.Doe+x@GoogleMail.com", "johndoe@gmail.com"),
            ("j.doe@example.com", "j.doe@example.com"),
            ("  ana@example.com ", "ana@example.com"),
        ] {
            assert_eq!(
                EmailAddress::parse(raw).unwrap().normalized(),
                normalized,
                "{raw}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for raw in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "a@b@c.com",
            "ana@.com",
            "<script>alert(1)</script>x@example.com",
            "ana@exa mple.com",
            "a..b@example.com",
            ".ana@example.com",
            "ana@-example.com",
            "ana@example..com",
            "\"quoted\"@example.com",
            "ana\u{0}@example.com",
        ] {
            assert_eq!(
                EmailAddress::parse(raw),
                Err(EmailError::Malformed),
                "{raw:?}"
            );
        }
        for raw in [
            "o'brien@example.com",
            "a!#$%&*+-/=?^_`{|}~@ex-ample.co.uk",
            "zoë@exämple.de",
        ] {
            assert!(EmailAddress::parse(raw).is_ok(), "{raw:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
    }
}
