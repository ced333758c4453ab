//! Referral codes (SPEC: Actors): permanent, unique, URL-safe.
//!
//! Eight characters from an alphabet without look-alikes (no 0/o, 1/l/i), lowercase so
//! a code survives being typed: 31^8 ≈ 8.5 × 10^11 codes. Uniqueness is the database's
//! job (unique index); a collision is retried with a fresh code.

use rand::Rng;

const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
const LENGTH: usize = 8;

/// A fresh random code.
pub fn generate(rng: &mut impl Rng) -> String {
    (0..LENGTH)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Whether `code` could be a code at all (cheap rejection before a lookup).
pub fn is_well_formed(code: &str) -> bool {
    (4..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_url_safe_and_vary() {
        let mut rng = rand::rng();
        let a = generate(&mut rng);
        let b = generate(&mut rng);
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert!(is_well_formed(&a));
        assert_ne!(a, b);
        assert!(!is_well_formed("../etc"));
        assert!(!is_well_formed("a b c d"));
    }
}
