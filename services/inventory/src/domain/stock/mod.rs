//! The stock item aggregate: one per SKU × location, stream `inventory-<SKU>@<LOCATION>`.
//!
//! Buckets as retailers know them. `on_hand` is sellable physical stock; `non_sellable`
//! (damaged, quality control) is physically there but kept apart, so it is not part of on hand;
//! `incoming` is announced but not yet here. Available-to-promise is
//! `max(on_hand − reserved − safety_stock, 0)`: the only number a reservation may draw on.
//!
//! Why one aggregate per SKU × location: the no-oversell invariant (reserved ≤ on hand − safety
//! stock) involves only these numbers, so one stream revision check guards it under any
//! concurrency, and unrelated SKUs never contend.

mod decide;
mod events;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use decide::{decide, decide_batch, decide_each, StockCommand, WRITE_OFF_DISPOSITIONS};
pub use events::*;

use super::error::InventoryError;

/// The stream of one SKU at one location.
pub fn stream_name(sku: &str, location: &str) -> String {
    format!("inventory-{sku}@{location}")
}

/// A SKU usable in a stream name: the one rule of [`ichigen_shared::ids::validate_sku`] (no
/// `@`, which separates SKU and location in the stream name).
pub fn validate_sku(sku: &str) -> Result<(), InventoryError> {
    ichigen_shared::ids::validate_sku(sku).map_err(|reason| InventoryError::InvalidInput {
        field: "sku",
        reason,
    })
}

/// Where a reservation stands. `Held` and `Confirmed` are open (count in `reserved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Open, with or without an expiry (an expiry-less Reserve starts here too).
    Held,
    /// Open, expiry dropped by a confirmation.
    Confirmed,
    /// Closed: fully consumed.
    Consumed,
    /// Closed: released by its owner.
    Released,
    /// Closed: expired before confirmation.
    Expired,
}

impl ReservationStatus {
    /// Open reservations hold stock.
    pub fn is_open(self) -> bool {
        matches!(self, ReservationStatus::Held | ReservationStatus::Confirmed)
    }

    /// The lower-case word used in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Confirmed => "confirmed",
            ReservationStatus::Consumed => "consumed",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
        }
    }
}

/// One reservation. Closed ones are kept so that retries (a second Release, a repeated
/// Reserve) are recognised and answered idempotently instead of being treated as new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub owner: String,
    /// What the Reserve asked for, to recognise a retried Reserve.
    pub requested: i64,
    /// The expiry the Reserve asked for (a confirmation drops `expires_at`, not this).
    pub requested_expires_at: Option<DateTime<Utc>>,
    /// Still held (requested minus consumed); 0 once closed.
    pub quantity: i64,
    /// Consumed so far (kept after the reservation closes, so that `ConsumeUpTo` can tell a
    /// replayed consumption from a new one).
    pub consumed: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: ReservationStatus,
}

/// The folded state of one SKU × location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockItem {
    /// Whether anything ever happened to this SKU here. Without a catalog (orders bring one),
    /// a SKU × location with no history is an unknown SKU for every command that needs stock
    /// to exist (reserve, adjust, move, transfer out).
    pub known: bool,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub incoming: i64,
    pub non_sellable: i64,
    /// Returned units written off on arrival here (never part of on hand; kept for audit).
    pub written_off: i64,
    pub reservations: BTreeMap<String, Reservation>,
    /// The keys of returned units already handled here, and how. The returns process is
    /// checkpointed and re-delivers after a crash, so a unit's receipt or write-off may be
    /// sent twice; the key makes the second one a no-op. One map for both, because a unit is
    /// either restocked or written off, never both: the same key with the other outcome is a
    /// caller bug, refused rather than silently dropped.
    pub return_keys: BTreeMap<String, ReturnOutcome>,
    /// Transfers shipped from here, by transfer id: a transfer id ships once.
    pub transfers_out: BTreeMap<String, TransferOut>,
    /// Transfers coming here, by transfer id: announced, in transit, or received (once).
    pub transfers_in: BTreeMap<String, TransferIn>,
}

/// A transfer shipped from this stock record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOut {
    pub to_location: String,
    pub qty: i64,
}

/// Where a transfer to this stock record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferInStatus {
    /// Announced by `/transfers/expected`; its source has not shipped it (as far as this
    /// record knows). Counted in incoming, but not receivable.
    Announced,
    /// Shipped by its source: counted in incoming, receivable once.
    InTransit,
    /// Received: closed.
    Received,
}

/// A transfer to this stock record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferIn {
    /// `None` for announcements and receipts stored before transfers named their source.
    pub from_location: Option<String>,
    /// Units the transfer counts in incoming (announced or shipped); what was received once
    /// received.
    pub qty: i64,
    pub status: TransferInStatus,
}

/// What became of a returned unit at this stock record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnOutcome {
    /// Received into on hand ([`ReturnReceived`]).
    Received,
    /// Written off on arrival ([`ReturnWrittenOff`]).
    WrittenOff,
}

impl StockItem {
    /// Folds a whole history.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a StockEvent>) -> Self {
        let mut state = StockItem::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    /// Available to promise: `on_hand − reserved − safety_stock`, never below 0 (safety stock
    /// may be raised above what is free, and a count may leave a shortfall).
    pub fn available(&self) -> i64 {
        self.on_hand
            .saturating_sub(self.reserved)
            .saturating_sub(self.safety_stock)
            .max(0)
    }

    /// Reserved units not covered by on hand (after a count found less than was promised).
    pub fn shortfall(&self) -> i64 {
        self.reserved.saturating_sub(self.on_hand).max(0)
    }

    /// On hand that is not promised: what transfers, adjustments and moves may take.
    pub fn unreserved(&self) -> i64 {
        self.on_hand.saturating_sub(self.reserved).max(0)
    }

    /// Open reservations, by id.
    pub fn open_reservations(&self) -> impl Iterator<Item = (&String, &Reservation)> {
        self.reservations.iter().filter(|(_, r)| r.status.is_open())
    }

    /// Applies one event. Never fails: `decide` validated it (including overflow) before it was
    /// stored; saturating arithmetic only keeps a corrupt history from panicking.
    pub fn apply(&mut self, event: &StockEvent) {
        self.known = true;
        match event {
            StockEvent::GoodsReceived(e) => self.on_hand = self.on_hand.saturating_add(e.qty),
            StockEvent::StockAdjusted(e) => self.on_hand = self.on_hand.saturating_add(e.delta),
            StockEvent::CycleCounted(e) => self.on_hand = e.counted,
            StockEvent::OnHandSet(e) => self.on_hand = e.new_on_hand,
            StockEvent::TransferShipped(e) => {
                self.on_hand = self.on_hand.saturating_sub(e.qty);
                self.transfers_out.insert(
                    e.transfer_id.clone(),
                    TransferOut {
                        to_location: e.to_location.clone(),
                        qty: e.qty,
                    },
                );
            }
            StockEvent::IncomingExpected(e) => {
                self.incoming = self.incoming.saturating_add(e.qty);
                // Before transfers were checked an id could be announced twice; both counted.
                let entry = self
                    .transfers_in
                    .entry(e.transfer_id.clone())
                    .or_insert(TransferIn {
                        from_location: e.from_location.clone(),
                        qty: 0,
                        status: TransferInStatus::Announced,
                    });
                if entry.status == TransferInStatus::Announced {
                    entry.qty = entry.qty.saturating_add(e.qty);
                }
            }
            StockEvent::TransferInTransit(e) => {
                self.incoming = self
                    .incoming
                    .saturating_add(e.qty)
                    .saturating_sub(e.incoming_cleared)
                    .max(0);
                self.transfers_in.insert(
                    e.transfer_id.clone(),
                    TransferIn {
                        from_location: Some(e.from_location.clone()),
                        qty: e.qty,
                        status: TransferInStatus::InTransit,
                    },
                );
            }
            StockEvent::TransferReceived(e) => {
                self.on_hand = self.on_hand.saturating_add(e.qty);
                self.incoming = self.incoming.saturating_sub(e.incoming_cleared).max(0);
                let from_location = e.from_location.clone().or_else(|| {
                    self.transfers_in
                        .get(&e.transfer_id)
                        .and_then(|t| t.from_location.clone())
                });
                self.transfers_in.insert(
                    e.transfer_id.clone(),
                    TransferIn {
                        from_location,
                        qty: e.qty,
                        status: TransferInStatus::Received,
                    },
                );
            }
            StockEvent::ReturnReceived(e) => {
                self.on_hand = self.on_hand.saturating_add(e.qty);
                self.note_return_key(&e.key, ReturnOutcome::Received);
            }
            StockEvent::ReturnWrittenOff(e) => {
                self.written_off = self.written_off.saturating_add(e.qty);
                self.note_return_key(&e.key, ReturnOutcome::WrittenOff);
            }
            StockEvent::StockMovedToNonSellable(e) => {
                self.on_hand = self.on_hand.saturating_sub(e.qty);
                self.non_sellable = self.non_sellable.saturating_add(e.qty);
            }
            StockEvent::StockMovedToSellable(e) => {
                self.on_hand = self.on_hand.saturating_add(e.qty);
                self.non_sellable = self.non_sellable.saturating_sub(e.qty);
            }
            StockEvent::SafetyStockSet(e) => self.safety_stock = e.qty,
            StockEvent::Reserved(e) => {
                self.reserved = self.reserved.saturating_add(e.qty);
                self.reservations.insert(
                    e.reservation_id.clone(),
                    Reservation {
                        owner: e.owner.clone(),
                        requested: e.qty,
                        requested_expires_at: e.expires_at,
                        quantity: e.qty,
                        consumed: 0,
                        expires_at: e.expires_at,
                        status: ReservationStatus::Held,
                    },
                );
            }
            StockEvent::ReservationConfirmed(e) => {
                if let Some(r) = self.reservations.get_mut(&e.reservation_id) {
                    r.expires_at = None;
                    r.status = ReservationStatus::Confirmed;
                }
            }
            StockEvent::ReservationReleased(e) => {
                self.close(&e.reservation_id, ReservationStatus::Released)
            }
            StockEvent::ReservationExpired(e) => {
                self.close(&e.reservation_id, ReservationStatus::Expired)
            }
            StockEvent::ReservationConsumed(e) => {
                if let Some(r) = self.reservations.get_mut(&e.reservation_id) {
                    let qty = e.qty.min(r.quantity);
                    r.quantity -= qty;
                    r.consumed = r.consumed.saturating_add(qty);
                    if r.quantity == 0 {
                        r.status = ReservationStatus::Consumed;
                    }
                    self.reserved = self.reserved.saturating_sub(qty);
                    self.on_hand = self.on_hand.saturating_sub(qty);
                }
            }
        }
    }

    /// Remembers a returned unit's key. Events stored before keys existed carry an empty one,
    /// which names no unit and is not kept.
    fn note_return_key(&mut self, key: &str, outcome: ReturnOutcome) {
        if !key.is_empty() {
            self.return_keys.entry(key.to_owned()).or_insert(outcome);
        }
    }

    /// Frees what is left of a reservation and closes it with `status`.
    fn close(&mut self, reservation_id: &str, status: ReservationStatus) {
        if let Some(r) = self.reservations.get_mut(reservation_id) {
            if r.status.is_open() {
                self.reserved = self.reserved.saturating_sub(r.quantity);
                r.quantity = 0;
                r.status = status;
            }
        }
    }
}

/// The buckets of a stock item (without its reservations, which a hot SKU has thousands of):
/// what handlers answer with and what the inventory view keeps per SKU × location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockLevels {
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub available: i64,
    pub incoming: i64,
    pub non_sellable: i64,
}

impl StockLevels {
    pub fn of(item: &StockItem) -> Self {
        StockLevels {
            on_hand: item.on_hand,
            reserved: item.reserved,
            safety_stock: item.safety_stock,
            available: item.available(),
            incoming: item.incoming,
            non_sellable: item.non_sellable,
        }
    }
}
