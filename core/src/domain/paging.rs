//! Keyset paging: a page of rows ordered newest first by `(at, id)` starts after the
//! last row of the previous page, so pages stay stable while rows are added.

use chrono::{DateTime, Utc};

/// Position after which a page starts: the last row's `(at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// `at` of the last row seen.
    pub at: DateTime<Utc>,
    /// Id of the last row seen.
    pub id: uuid::Uuid,
}

impl Cursor {
    /// Opaque text form.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at.timestamp_micros(), self.id.simple())
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('_')?;
        Some(Self {
            at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: uuid::Uuid::try_parse(id).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            id: uuid::Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for garbage in ["garbage", "1_x", "_", "99999999999999999999_0"] {
            assert_eq!(Cursor::decode(garbage), None, "{garbage}");
        }
    }
}
