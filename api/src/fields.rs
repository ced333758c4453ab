//! Input field types whose OpenAPI schema and whose parsing come from one declaration.
//!
//! Request bodies are parsed with serde (so errors name the field, see `body`), which
//! skips poem-openapi's `#[oai(validator)]` checks. Rather than state each limit twice,
//! every constrained input is one of these types: the same constants produce the schema
//! a client or fuzzer reads and the check the server runs, so the two cannot drift.

use std::borrow::Cow;
use std::marker::PhantomData;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde::de::Error as _;
use serde_json::Value;

/// Characters that have no business in an identifier or a header-like text and that
/// Postgres refuses in `text` (NUL): the C0 and C1 control characters and DEL. The
/// pattern is the same rule for clients, in ECMA-262 syntax.
const NO_CONTROL_CHARS: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

fn has_control_chars(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// The rule of one kind of text input.
pub trait TextRule: Send + Sync + 'static {
    /// Fewest characters (Unicode scalar values, as JSON Schema counts).
    const MIN_CHARS: usize;
    /// Most characters.
    const MAX_CHARS: usize;
    /// The pattern clients see; [`TextRule::check`] enforces the same.
    const PATTERN: &'static str = NO_CONTROL_CHARS;
    /// A `format` for the schema, where one applies.
    const FORMAT: Option<&'static str> = None;
    /// What the text is, for error messages.
    const WHAT: &'static str;

    /// The rule beyond length; by default, no control characters.
    fn check(value: &str) -> Result<(), String> {
        if has_control_chars(value) {
            Err("must not contain control characters".into())
        } else {
            Ok(())
        }
    }
}

/// A text input that obeys `R`.
pub struct Text<R> {
    value: String,
    rule: PhantomData<R>,
}

impl<R> std::fmt::Debug for Text<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

impl<R> Clone for Text<R> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            rule: PhantomData,
        }
    }
}

impl<R: TextRule> Text<R> {
    /// Checks `value` against `R`.
    pub fn parse(value: String) -> Result<Self, String> {
        let chars = value.chars().count();
        if chars < R::MIN_CHARS || chars > R::MAX_CHARS {
            return Err(if R::MIN_CHARS == 0 {
                format!("must be at most {} characters", R::MAX_CHARS)
            } else if R::MIN_CHARS == R::MAX_CHARS {
                format!("must be exactly {} characters long", R::MAX_CHARS)
            } else {
                format!(
                    "must be {} to {} characters long",
                    R::MIN_CHARS,
                    R::MAX_CHARS
                )
            });
        }
        R::check(&value)?;
        Ok(Self {
            value,
            rule: PhantomData,
        })
    }

    /// Wraps a value known to obey `R` (examples, tests).
    pub fn known(value: &str) -> Self {
        Self {
            value: value.to_owned(),
            rule: PhantomData,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.value
    }
}

impl<R: TextRule> Type for Text<R> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        format!("string({})", R::WHAT).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            ty: "string",
            format: R::FORMAT,
            min_length: Some(R::MIN_CHARS),
            max_length: Some(R::MAX_CHARS),
            pattern: Some(R::PATTERN.to_owned()),
            ..MetaSchema::ANY
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.value)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.value))
    }
}

impl<R: TextRule> ParseFromJSON for Text<R> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Self::parse(text).map_err(ParseError::custom),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<R: TextRule> ParseFromParameter for Text<R> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Self::parse(value.to_owned()).map_err(ParseError::custom)
    }
}

impl<R: TextRule> ToJSON for Text<R> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.value.clone()))
    }
}

impl<'de, R: TextRule> serde::Deserialize<'de> for Text<R> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(value).map_err(D::Error::custom)
    }
}

/// Printable and not blank: at least one character that is not white space.
const PRINTABLE_NOT_BLANK: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

fn check_printable_not_blank(value: &str) -> Result<(), String> {
    if has_control_chars(value) {
        Err("must not contain control characters".into())
    } else if value.chars().all(|c| c.is_whitespace() || c == '\u{feff}') {
        // ECMA-262's `\s` (the pattern's) is Unicode's white space plus the BOM.
        Err("must not be blank".into())
    } else {
        Ok(())
    }
}

macro_rules! text_rule {
    ($(#[$doc:meta])* $name:ident, $what:literal, $min:literal ..= $max:literal, not blank) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}

        impl TextRule for $name {
            const MIN_CHARS: usize = $min;
            const MAX_CHARS: usize = $max;
            const PATTERN: &'static str = PRINTABLE_NOT_BLANK;
            const WHAT: &'static str = $what;

            fn check(value: &str) -> Result<(), String> {
                check_printable_not_blank(value)
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $what:literal, $min:literal ..= $max:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}

        impl TextRule for $name {
            const MIN_CHARS: usize = $min;
            const MAX_CHARS: usize = $max;
            const WHAT: &'static str = $what;
        }
    };
}

text_rule!(
    /// The platform's id for a user: what it uses in its own database. Blank ids are
    /// refused like empty ones: no platform names a user "   ".
    PlatformId, "platform id", 1..=128, not blank
);
text_rule!(
    /// A caller's idempotency key, such as a purchase id; not blank, as a user id.
    Reference, "reference", 1..=128, not blank
);
text_rule!(
    /// A referral code as typed or carried in a link. Unknown codes are a 404, not a
    /// format error, so a browser following a mangled link gets the clear "no such
    /// link" answer.
    CodeText, "referral code", 1..=64
);
text_rule!(
    /// The name of a plan bought.
    PlanText, "plan", 1..=128
);
text_rule!(
    /// Browser metadata of a click (user agent, referer, landing page).
    ClickMetaText, "click metadata", 0..=1024
);

text_rule!(
    /// A full name typed as a signature: printable, and not blank.
    FullNameText, "full name", 1..=200, not blank
);
text_rule!(
    /// Why an operator discarded a job: printable, not blank.
    ReasonText, "reason", 1..=500, not blank
);

/// A version name, such as an agreement's.
#[derive(Debug)]
pub enum VersionText {}

impl TextRule for VersionText {
    const MIN_CHARS: usize = 1;
    const MAX_CHARS: usize = 32;
    const WHAT: &'static str = "version";
}

/// A SHA-256 in hex.
#[derive(Debug)]
pub enum Sha256Text {}

impl TextRule for Sha256Text {
    const MIN_CHARS: usize = 64;
    const MAX_CHARS: usize = 64;
    const PATTERN: &'static str = "^[0-9a-fA-F]{64}$";
    const WHAT: &'static str = "SHA-256";

    fn check(value: &str) -> Result<(), String> {
        if value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err("must be 64 hexadecimal digits".into())
        }
    }
}

/// An e-mail address, checked as signups check it.
#[derive(Debug)]
pub enum EmailText {}

impl TextRule for EmailText {
    const MIN_CHARS: usize = 3;
    const MAX_CHARS: usize = 254;
    const FORMAT: Option<&'static str> = Some("email");
    const WHAT: &'static str = "e-mail";

    fn check(value: &str) -> Result<(), String> {
        referral_core::domain::email::EmailAddress::parse(value)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A job id: a ULID, as the job queue issues them.
#[derive(Debug)]
pub enum JobIdText {}

impl TextRule for JobIdText {
    const MIN_CHARS: usize = 26;
    const MAX_CHARS: usize = 26;
    const PATTERN: &'static str = "^[0-9A-HJKMNP-TV-Z]{26}$";
    const WHAT: &'static str = "job id";

    fn check(value: &str) -> Result<(), String> {
        // Crockford's base 32, as the pattern says: digits and upper-case letters but I, L, O, U.
        let crockford =
            |b: u8| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b));
        if value.bytes().all(crockford) {
            Ok(())
        } else {
            Err("must be a job id (a 26-character ULID in upper case)".into())
        }
    }
}

/// A paging cursor, as a previous page's `next_cursor` gave it.
#[derive(Debug)]
pub enum CursorText {}

impl TextRule for CursorText {
    const MIN_CHARS: usize = 34;
    const MAX_CHARS: usize = 49;
    // Micro-seconds since 1970 (16 digits reach past the year 2200) and a row id.
    const PATTERN: &'static str = "^[0-9]{1,16}_[0-9a-f]{32}$";
    const WHAT: &'static str = "cursor";

    fn check(value: &str) -> Result<(), String> {
        let shaped = value.split_once('_').is_some_and(|(micros, id)| {
            (1..=16).contains(&micros.len())
                && micros.bytes().all(|b| b.is_ascii_digit())
                && id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if shaped && referral_core::domain::paging::Cursor::decode(value).is_some() {
            Ok(())
        } else {
            Err("not a cursor from this API: pass a page's `next_cursor` as it came".into())
        }
    }
}

/// Deserializes an optional body field: absent is `None`; `null` is refused like any
/// other value of the wrong type, because the schema does not allow it (a field is
/// either sent with a value or left out). Use with `#[serde(default)]`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A positive amount of money as a decimal string with at most two decimals, such as
/// `"12.50"`. No sign, no exponent, no spaces, no leading zeros: one spelling per amount.
#[derive(Debug)]
pub enum AmountText {}

impl TextRule for AmountText {
    const MIN_CHARS: usize = 1;
    const MAX_CHARS: usize = 13;
    // Up to 10 integer digits: what `numeric(12,2)` holds.
    const PATTERN: &'static str = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,9}(\.[0-9]{1,2})?)$";
    const WHAT: &'static str = "amount";

    fn check(value: &str) -> Result<(), String> {
        let refuse = || {
            Err(r#"must be a decimal string greater than zero with at most 2 decimals, like "12.50""#.to_owned())
        };
        let (whole, cents) = match value.split_once('.') {
            Some((whole, cents)) => (whole, Some(cents)),
            None => (value, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let whole_ok =
            digits(whole) && whole.len() <= 10 && (whole == "0" || !whole.starts_with('0'));
        let cents_ok = cents.is_none_or(|c| digits(c) && c.len() <= 2);
        let positive = value.bytes().any(|b| (b'1'..=b'9').contains(&b));
        if whole_ok && cents_ok && positive {
            Ok(())
        } else {
            refuse()
        }
    }
}

/// An amount of money that may be zero (credit applied to a purchase), with the same
/// single spelling as [`AmountText`].
#[derive(Debug)]
pub enum MaybeZeroAmountText {}

impl TextRule for MaybeZeroAmountText {
    const MIN_CHARS: usize = 1;
    const MAX_CHARS: usize = 13;
    const PATTERN: &'static str = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$";
    const WHAT: &'static str = "amount or zero";

    fn check(value: &str) -> Result<(), String> {
        let zero = value
            .split_once('.')
            .map_or(value == "0", |(whole, cents)| {
                whole == "0" && (1..=2).contains(&cents.len()) && cents.bytes().all(|b| b == b'0')
            });
        if zero {
            Ok(())
        } else {
            AmountText::check(value).map_err(|_| {
                r#"must be a decimal string, zero or more, with at most 2 decimals, like "12.50""#.to_owned()
            })
        }
    }
}

/// A currency code. Only `USD` is accepted today; the schema says so, and any other code
/// is refused with `UNSUPPORTED_CURRENCY` rather than a generic field error.
#[derive(Debug, Clone)]
pub struct CurrencyCode(pub String);

impl Type for CurrencyCode {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string(currency)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            ty: "string",
            enum_items: vec![Value::String("USD".into())],
            ..MetaSchema::ANY
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromJSON for CurrencyCode {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(code)) => Ok(Self(code)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for CurrencyCode {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

impl<'de> serde::Deserialize<'de> for CurrencyCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// An integer from `MIN` to `MAX`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: i64, const MAX: i64>(pub i64);

impl<const MIN: i64, const MAX: i64> Bounded<MIN, MAX> {
    fn check(value: i64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("must be an integer from {MIN} to {MAX}"))
        }
    }
}

impl<const MIN: i64, const MAX: i64> Type for Bounded<MIN, MAX> {
    const IS_REQUIRED: bool = true;
    type RawValueType = i64;
    type RawElementValueType = i64;

    fn name() -> Cow<'static, str> {
        format!("integer({MIN}..={MAX})").into()
    }

    // The bounds are small integers, exact in an f64, which is how the schema states them.
    #[allow(clippy::cast_precision_loss)]
    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            ty: "integer",
            format: Some("int64"),
            minimum: Some(MIN as f64),
            maximum: Some(MAX as f64),
            ..MetaSchema::ANY
        }))
    }

    fn as_raw_value(&self) -> Option<&i64> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a i64> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<const MIN: i64, const MAX: i64> ParseFromJSON for Bounded<MIN, MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.as_ref().and_then(Value::as_i64) {
            Some(number) => Self::check(number).map_err(ParseError::custom),
            None => Err(ParseError::expected_type(value.unwrap_or_default())),
        }
    }
}

impl<const MIN: i64, const MAX: i64> ParseFromParameter for Bounded<MIN, MAX> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        value
            .parse::<i64>()
            .map_err(|_| format!("must be an integer from {MIN} to {MAX}"))
            .and_then(Self::check)
            .map_err(ParseError::custom)
    }
}

impl<const MIN: i64, const MAX: i64> ToJSON for Bounded<MIN, MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0))
    }
}

impl<'de, const MIN: i64, const MAX: i64> serde::Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        Self::check(value).map_err(D::Error::custom)
    }
}

/// A calendar day, `YYYY-MM-DD`, in the years 1000 to 9999. The pattern says as much of
/// "a real day" as a pattern can; a day it lets through that does not exist (February 30)
/// is refused like any other bad value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day(pub chrono::NaiveDate);

const DAY_PATTERN: &str = "^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

impl Day {
    fn parse(value: &str) -> Result<Self, String> {
        let shaped = value.len() == 10
            && value.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                0 => (b'1'..=b'9').contains(&b),
                _ => b.is_ascii_digit(),
            });
        shaped
            .then(|| chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
            .flatten()
            .map(Day)
            .ok_or_else(|| "must be a day as YYYY-MM-DD (years 1000 to 9999)".to_owned())
    }
}

impl Type for Day {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string(day)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            ty: "string",
            format: Some("date"),
            pattern: Some(DAY_PATTERN.to_owned()),
            ..MetaSchema::ANY
        }))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromParameter for Day {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Day::parse(value).map_err(ParseError::custom)
    }
}

/// A query parameter that is one of an enum's values; a wrong value is answered with the
/// list of allowed ones rather than the enum's Rust name.
#[derive(Debug, Clone, Copy)]
pub struct Choice<E>(pub E);

/// The values an `Enum`-derived type allows, as its schema lists them.
fn allowed_values<E: Type>() -> Vec<String> {
    let mut registry = Registry::new();
    E::register(&mut registry);
    registry
        .schemas
        .get(E::name().as_ref())
        .map(|schema| {
            schema
                .enum_items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl<E: Type + ParseFromParameter> Type for Choice<E> {
    const IS_REQUIRED: bool = true;
    type RawValueType = E::RawValueType;
    type RawElementValueType = E::RawElementValueType;

    fn name() -> Cow<'static, str> {
        E::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        E::schema_ref()
    }

    fn register(registry: &mut Registry) {
        E::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_raw_value()
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        self.0.raw_element_iter()
    }
}

impl<E: Type + ParseFromParameter> ParseFromParameter for Choice<E> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        E::parse_from_parameter(value).map(Self).map_err(|_| {
            ParseError::custom(format!(
                "must be one of {}",
                allowed_values::<E>().join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules_refuse_control_characters_and_bad_lengths() {
        assert!(Text::<PlatformId>::parse("user_1".into()).is_ok());
        assert!(Text::<PlatformId>::parse("a\u{0}b".into()).is_err());
        assert!(Text::<PlatformId>::parse("a\u{85}b".into()).is_err());
        assert!(Text::<PlatformId>::parse(String::new()).is_err());
        assert!(Text::<PlatformId>::parse("   ".into()).is_err());
        assert!(Text::<PlatformId>::parse("\u{3000}".into()).is_err());
        assert!(Text::<Reference>::parse(" \t".into()).is_err());
        assert!(Text::<PlatformId>::parse(" a ".into()).is_ok());
        assert!(Text::<PlatformId>::parse("é".repeat(128)).is_ok());
        assert!(Text::<PlatformId>::parse("é".repeat(129)).is_err());
        assert!(Text::<ClickMetaText>::parse(String::new()).is_ok());
    }

    #[test]
    fn amounts_have_one_spelling() {
        for good in [
            "0.01",
            "0.1",
            "0.99",
            "1",
            "2.5",
            "2.50",
            "12.00",
            "9999999999.99",
        ] {
            assert!(Text::<AmountText>::parse(good.into()).is_ok(), "{good}");
        }
        for bad in [
            "0",
            "0.00",
            "0.0",
            " 0.01",
            "+0.01",
            ".01",
            "0.010",
            "01.00",
            "1.",
            "1e3",
            "-1.00",
            "10000000000.00",
            "1.005",
            "",
        ] {
            assert!(Text::<AmountText>::parse(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_is_an_amount_where_allowed() {
        for good in ["0", "0.0", "0.00", "1", "2.50"] {
            assert!(
                Text::<MaybeZeroAmountText>::parse(good.into()).is_ok(),
                "{good}"
            );
        }
        for bad in ["", "-0", "00", "0.000", " 0", "+1"] {
            assert!(
                Text::<MaybeZeroAmountText>::parse(bad.into()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn job_ids_are_upper_case_ulids() {
        assert!(Text::<JobIdText>::parse("01JD8X3Y4Z5A6B7C8D9E0F1G2H".into()).is_ok());
        assert!(Text::<JobIdText>::parse("01jd8x3y4z5a6b7c8d9e0f1g2h".into()).is_err());
        assert!(Text::<JobIdText>::parse("01JD8X3Y4Z5A6B7C8D9E0F1G2\u{0}".into()).is_err());
    }

    #[test]
    fn days_are_real_calendar_days() {
        assert_eq!(
            Day::parse("2026-11-26").unwrap().0,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
        );
        for bad in [
            "",
            "2026-02-30",
            "0999-01-01",
            "2026-1-01",
            "26-11-2026",
            "2026-11-26T00",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounded_integers_say_their_range() {
        assert_eq!(
            Bounded::<1, 100>::parse_from_parameter("100").unwrap().0,
            100
        );
        let error = Bounded::<1, 100>::parse_from_parameter("0").unwrap_err();
        assert!(error.into_message().contains("from 1 to 100"));
        assert!(Bounded::<0, 3650>::parse_from_parameter("9223372036854775807").is_err());
    }
}
