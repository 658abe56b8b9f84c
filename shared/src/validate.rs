//! Input checks every domain makes the same way, with one small error that each domain's error
//! type converts from (`impl From<Invalid> for XError`), so that `?` yields the domain's own
//! typed error, naming the field.
//!
//! **The one rule for codes, names and references** ([`check_text`]): every identifier or short
//! text a caller sends — SKU, location code, reference document, reason code, transfer id, RMA
//! id, reservation id — is non-blank, at most its bound of characters, without control
//! characters (newline, tab, NUL, …) or line separators, and without leading or trailing
//! whitespace. SKUs and location codes are parts of stream names and add a character set of
//! their own on top ([`crate::ids::validate_sku`], inventory's `validate_code`). Every API and
//! every domain checks with these functions, so that a value one entry point refuses is refused
//! by all of them, and an over-long value is a 4xx naming its field, never a store failure.

/// Bound of a reference document, transfer id, RMA id or unit key.
pub const MAX_REFERENCE: usize = 128;
/// Bound of a reason code (`DAMAGED`, `SHORT_PICK`).
pub const MAX_CODE: usize = 64;
/// Bound of an owner or reservation id (`order:<uuid>/resource:<uuid>:L12#3`).
pub const MAX_ID: usize = 200;
/// Bound of a free-text reason or name.
pub const MAX_TEXT: usize = 500;

/// The one rule (see the module docs): `Err` carries the reason, for the caller's own error.
pub fn check_text(value: &str, max: usize) -> Result<(), &'static str> {
    if value.trim().is_empty() {
        return Err("must not be empty");
    }
    if value.chars().count() > max {
        return Err("is too long");
    }
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err("must not contain control characters or line breaks");
    }
    if value.trim() != value {
        return Err("must not start or end with whitespace");
    }
    Ok(())
}

/// [`check_text`], as [`Invalid::Input`] naming the field.
pub fn text(field: impl Into<String>, value: &str, max: usize) -> Result<(), Invalid> {
    check_text(value, max).map_err(|reason| Invalid::Input {
        field: field.into(),
        reason,
    })
}

/// Why an input field is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Malformed: `reason` says how (`must not be empty`, `is too long`).
    Input { field: String, reason: &'static str },
    /// Outside `min..=max`.
    Quantity {
        field: String,
        value: i64,
        min: i64,
        max: i64,
    },
}

/// A non-blank string, else [`Invalid::Input`] naming the field.
pub fn non_empty(field: impl Into<String>, value: &str) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        Err(Invalid::Input {
            field: field.into(),
            reason: "must not be empty",
        })
    } else {
        Ok(())
    }
}

/// At most `max` characters (an empty string is fine: optional notes).
pub fn at_most(field: impl Into<String>, value: &str, max: usize) -> Result<(), Invalid> {
    if value.chars().count() > max {
        Err(Invalid::Input {
            field: field.into(),
            reason: "is too long",
        })
    } else {
        Ok(())
    }
}

/// `min <= value <= max`, else [`Invalid::Quantity`] naming the field.
pub fn quantity(field: impl Into<String>, value: i64, min: i64, max: i64) -> Result<i64, Invalid> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::Quantity {
            field: field.into(),
            value,
            min,
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_codes_names_and_references() {
        assert_eq!(check_text("ASN-4711", MAX_REFERENCE), Ok(()));
        assert_eq!(check_text("倉庫 1", 10), Ok(()));
        assert_eq!(check_text("", 10), Err("must not be empty"));
        assert_eq!(check_text("  ", 10), Err("must not be empty"));
        assert_eq!(check_text("abc", 2), Err("is too long"));
        for bad in ["A\nB", "A\tB", "A\u{0}", "A\u{2028}B", "A\u{7f}"] {
            assert!(check_text(bad, 10).is_err(), "{bad:?}");
        }
        assert!(check_text("TEE-M\n", 10).is_err());
        assert!(check_text(" TEE", 10).is_err());
        assert!(matches!(
            text("reference", &"x".repeat(MAX_REFERENCE + 1), MAX_REFERENCE),
            Err(Invalid::Input {
                reason: "is too long",
                ..
            })
        ));
    }

    #[test]
    fn each_check_names_its_field() {
        assert_eq!(non_empty("note", "x"), Ok(()));
        assert_eq!(
            non_empty("note", "  "),
            Err(Invalid::Input {
                field: "note".into(),
                reason: "must not be empty"
            })
        );
        assert_eq!(at_most("note", "日本", 2), Ok(()));
        assert!(matches!(
            at_most("note", "abc", 2),
            Err(Invalid::Input {
                reason: "is too long",
                ..
            })
        ));
        assert_eq!(quantity("qty", 3, 1, 3), Ok(3));
        assert_eq!(
            quantity("lines.0.qty", 0, 1, 3),
            Err(Invalid::Quantity {
                field: "lines.0.qty".into(),
                value: 0,
                min: 1,
                max: 3
            })
        );
    }
}
