//! Input checks every domain makes the same way, with one small error that each domain's error
//! type converts from (`impl From<Invalid> for XError`), so that `?` yields the domain's own
//! typed error, naming the field.

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
