//! Stream names and identifiers.
//!
//! Streams are named `category-id` so that EventStoreDB's category projections (`$ce-order`)
//! work unchanged: `order-<uuid>`, `inventory-SKU123@STORE-07`, `rma-<uuid>`.

use uuid::Uuid;

/// Namespace for ids derived from commands (UUID v5), so that a retried command yields the same
/// event ids and the store deduplicates the append.
pub const ICHIGEN_NAMESPACE: Uuid = Uuid::from_u128(0x6a3c_1e0b_6c4d_4f5e_9a1b_2c3d_4e5f_6071);

/// The category of a stream: the text before the first `-`.
pub fn category_of(stream: &str) -> &str {
    stream.split_once('-').map(|(c, _)| c).unwrap_or(stream)
}

/// `category-id`.
pub fn stream_name(category: &str, id: &str) -> String {
    format!("{category}-{id}")
}

/// A deterministic event id: the same command key and index always give the same id.
pub fn derived_event_id(command_key: &str, index: usize) -> Uuid {
    Uuid::new_v5(
        &ICHIGEN_NAMESPACE,
        format!("{command_key}#{index}").as_bytes(),
    )
}

/// Longest SKU (characters).
pub const MAX_SKU: usize = 64;

/// A SKU usable in a stream name (`inventory-<SKU>@<LOCATION>`, `catalog-<SKU>`): non-empty,
/// at most 64 characters of `[A-Za-z0-9._-]` (no `@`, which separates SKU and location).
/// Every service checks SKUs with this one rule (the shared text rule,
/// [`crate::validate::check_text`], then the stream-name character set), so that a SKU the
/// catalog accepts can be stocked and the other way round. `Err` carries the reason, for the
/// service's own error.
pub fn validate_sku(sku: &str) -> Result<(), &'static str> {
    crate::validate::check_text(sku, MAX_SKU)?;
    if !sku
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err("may contain only letters, digits, '.', '_' and '-'")
    } else {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamNameError {
    #[error("stream name is empty")]
    Empty,
    #[error("stream name {0:?} is longer than 512 bytes")]
    TooLong(String),
    #[error("stream name {0:?} starts with '$', which is reserved for the store's own streams")]
    Reserved(String),
    #[error("stream name {0:?} contains a control character")]
    ControlCharacter(String),
}

/// Checks that a stream name is usable on every backend.
pub fn validate_stream_name(stream: &str) -> Result<(), StreamNameError> {
    if stream.is_empty() {
        return Err(StreamNameError::Empty);
    }
    if stream.len() > 512 {
        return Err(StreamNameError::TooLong(stream.to_string()));
    }
    if stream.starts_with('$') {
        return Err(StreamNameError::Reserved(stream.to_string()));
    }
    if stream.chars().any(char::is_control) {
        return Err(StreamNameError::ControlCharacter(stream.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_is_text_before_first_dash() {
        assert_eq!(category_of("inventory-SKU-1@S1"), "inventory");
        assert_eq!(category_of("plain"), "plain");
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_event_id("cmd-1", 0), derived_event_id("cmd-1", 0));
        assert_ne!(derived_event_id("cmd-1", 0), derived_event_id("cmd-1", 1));
        assert_ne!(derived_event_id("cmd-1", 0), derived_event_id("cmd-2", 0));
    }

    #[test]
    fn skus_follow_one_rule() {
        assert_eq!(validate_sku("SKU-1.a_b"), Ok(()));
        assert!(validate_sku("").is_err());
        assert!(validate_sku("A@B").is_err());
        assert!(validate_sku(&"x".repeat(65)).is_err());
        assert!(validate_sku("TEE-M\n").is_err());
        assert!(validate_sku(" TEE-M").is_err());
        assert_eq!(validate_sku(&"x".repeat(64)), Ok(()));
    }

    #[test]
    fn bad_stream_names_are_rejected() {
        assert_eq!(validate_stream_name(""), Err(StreamNameError::Empty));
        assert!(validate_stream_name("$all").is_err());
        assert!(validate_stream_name("a\nb").is_err());
        assert!(validate_stream_name(&"x".repeat(513)).is_err());
        assert!(validate_stream_name("order-1").is_ok());
    }
}
