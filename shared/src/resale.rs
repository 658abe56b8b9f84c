//! Resale SKUs and prices: how a returned unit graded for resale becomes sellable stock.
//!
//! Shared because two services read the naming: returns derive resale SKUs from it, and the
//! inventory's availability queries filter new against resale stock by it.
//!
//! A resale SKU is derived from the original SKU and the grade, deterministically, so that
//! every unit of the same product in the same condition lands in the same stock record
//! (`inventory-<resale SKU>@<location>`) and catalog item, whichever return it came from, and
//! a replayed grading derives the same SKU again. The shape is `{sku}-R-{GRADE}`, e.g.
//! `TSHIRT-M-R-LIKE_NEW`.
//!
//! SKUs are at most 64 characters ([`crate::ids::validate_sku`]). When
//! `{sku}-R-{GRADE}` would be longer, the original is shortened and a digest of the *whole*
//! original is appended after the grade: `{head}-R-{GRADE}.{hash10}` (FNV-1a 64 of the SKU,
//! top 40 bits in hex). Two long SKUs sharing a head still get different resale SKUs, the
//! result is still valid, and the `.` (never part of a grade code) marks the shortened form.
//! The original cannot be read back from a shortened SKU: `UnitGraded` events carry both.

use crate::money::Money;
use rust_decimal::Decimal;

/// Between the original SKU and the grade code.
const MARKER: &str = "-R-";
/// The SKU rule's maximum length.
const MAX_SKU_LEN: usize = 64;
/// Hex digits of the digest in a shortened resale SKU (40 bits).
const HASH_HEX: usize = 10;

/// The resale SKU of `sku` in condition `grade` (see the module documentation for the shape).
pub fn resale_sku(sku: &str, grade: &str) -> String {
    let full = format!("{sku}{MARKER}{grade}");
    if full.len() <= MAX_SKU_LEN {
        return full;
    }
    let room = MAX_SKU_LEN.saturating_sub(MARKER.len() + grade.len() + 1 + HASH_HEX);
    let head = prefix_within(sku, room);
    format!(
        "{head}{MARKER}{grade}.{:0w$x}",
        fnv1a64(sku) >> 24,
        w = HASH_HEX
    )
}

/// `Some((original SKU, grade))` when `sku` is a resale SKU whose original can be read back
/// (the `{sku}-R-{GRADE}` form). `None` for any other SKU, and for the shortened form, whose
/// original is only in the `UnitGraded` event ([`resale_grade`] recognises both forms).
///
/// The test is syntactic: an ordinary SKU that happens to end in `-R-` and an upper-case code
/// (`PANTS-R-L`) reads as one too, so a caller that must be sure also checks the grade against
/// the policy or the catalog.
pub fn is_resale_sku(sku: &str) -> Option<(String, String)> {
    let (original, grade) = sku.rsplit_once(MARKER)?;
    let full_form = !original.is_empty() && is_code(grade) && resale_sku(original, grade) == sku;
    full_form.then(|| (original.to_owned(), grade.to_owned()))
}

/// The grade code of a resale SKU in either form (full or shortened), `None` otherwise.
pub fn resale_grade(sku: &str) -> Option<String> {
    if let Some((_, grade)) = is_resale_sku(sku) {
        return Some(grade);
    }
    let (head, tail) = sku.rsplit_once(MARKER)?;
    let (grade, hash) = tail.split_once('.')?;
    let shortened = !head.is_empty()
        && is_code(grade)
        && hash.len() == HASH_HEX
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    shortened.then(|| grade.to_owned())
}

/// The resale price: the price the customer paid × the grade's factor, rounded (half-even) to
/// the currency's minor units. `None` if the product overflows.
pub fn resale_price(unit_price: Money, price_factor: Decimal) -> Option<Money> {
    let amount = unit_price.amount.checked_mul(price_factor)?;
    Some(Money::new(amount, unit_price.currency).rounded())
}

/// A grade code: 1–32 of `A–Z`, `0–9`, `_` (the policy's rule for codes).
pub fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix_within(s: &str, max: usize) -> &str {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if i + c.len_utf8() > max {
            break;
        }
        end = i + c.len_utf8();
    }
    &s[..end]
}

/// FNV-1a, 64 bits: tiny, and stable across Rust versions (unlike `DefaultHasher`), which a
/// derived identifier stored in events needs.
fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::validate_sku;
    use crate::money::Currency;

    #[test]
    fn short_skus_get_the_plain_form_and_read_back() {
        let s = resale_sku("TSHIRT-M", "LIKE_NEW");
        assert_eq!(s, "TSHIRT-M-R-LIKE_NEW");
        assert_eq!(validate_sku(&s), Ok(()));
        assert_eq!(
            is_resale_sku(&s),
            Some(("TSHIRT-M".into(), "LIKE_NEW".into()))
        );
        assert_eq!(resale_grade(&s).as_deref(), Some("LIKE_NEW"));
        // An original that itself contains the marker still reads back whole.
        let s = resale_sku("A-R-B", "GOOD");
        assert_eq!(is_resale_sku(&s), Some(("A-R-B".into(), "GOOD".into())));
    }

    #[test]
    fn ordinary_skus_are_not_resale_skus() {
        for sku in ["TSHIRT-M", "A-R-", "-R-GOOD", "X-R-good", "X-R-A.b"] {
            assert_eq!(is_resale_sku(sku), None, "{sku}");
            assert_eq!(resale_grade(sku), None, "{sku}");
        }
    }

    #[test]
    fn long_skus_are_shortened_with_a_digest_of_the_whole_sku() {
        let a = format!("{}A", "X".repeat(60));
        let b = format!("{}B", "X".repeat(60));
        let (ra, rb) = (resale_sku(&a, "LIKE_NEW"), resale_sku(&b, "LIKE_NEW"));
        assert_eq!(ra.len(), 64);
        assert_ne!(ra, rb);
        assert_eq!(validate_sku(&ra), Ok(()));
        assert_eq!(ra, resale_sku(&a, "LIKE_NEW"), "deterministic");
        assert!(ra.starts_with(&"X".repeat(40)));
        assert_eq!(is_resale_sku(&ra), None, "the original cannot be read back");
        assert_eq!(resale_grade(&ra).as_deref(), Some("LIKE_NEW"));
        // Exactly at the limit: still the plain form.
        let fits = "Y".repeat(64 - 3 - 4);
        assert_eq!(resale_sku(&fits, "GOOD").len(), 64);
        assert_eq!(is_resale_sku(&resale_sku(&fits, "GOOD")).unwrap().0, fits);
        // The longest SKU with the longest grade code still fits the rule.
        let worst = resale_sku(&"Z".repeat(64), &"G".repeat(32));
        assert_eq!(validate_sku(&worst), Ok(()));
        assert_eq!(resale_grade(&worst), Some("G".repeat(32)));
    }

    #[test]
    fn resale_price_rounds_to_minor_units() {
        let yen = Money::parse("1999", "JPY").unwrap();
        // 1999 × 0.8 = 1599.2 → 1599
        assert_eq!(
            resale_price(yen, Decimal::new(8, 1)),
            Some(Money::parse("1599", "JPY").unwrap())
        );
        // 1250 × 0.6 = 750; 1 × 0.5 = 0.5 → 0 (half-even)
        assert_eq!(
            resale_price(Money::parse("1", "JPY").unwrap(), Decimal::new(5, 1))
                .unwrap()
                .amount,
            Decimal::ZERO
        );
        // 19.99 × 0.6 = 11.994 → 11.99
        let usd = Money::parse("19.99", "USD").unwrap();
        assert_eq!(
            resale_price(usd, Decimal::new(6, 1)),
            Some(Money::parse("11.99", "USD").unwrap())
        );
        assert_eq!(
            resale_price(Money::new(Decimal::MAX, Currency::JPY), Decimal::TWO),
            None
        );
    }
}
