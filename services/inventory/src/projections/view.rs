//! The inventory view: every SKU × location's buckets, kept in memory for the read side.
//!
//! GraphQL answers availability from here (≥ 15,000 queries/s), so reads must be a few hash and
//! binary-search steps under a shared lock, and the view must fit a retailer's whole catalogue
//! × locations (millions of rows) in memory. Decisions are never made from it (a reservation is
//! decided on the stock stream); it only has to be right once it has caught up.
//!
//! # Memory layout (why it looks like this)
//!
//! A row is what a `StockItem` is without its reservations: five `i64` buckets (40 bytes). The
//! strings that name a row are the expensive part — a SKU is repeated at every location and a
//! location at every SKU — so both are **interned** once as `Arc<str>` and referred to by a
//! dense `u32` id:
//!
//! - `rows` — all rows, 40 bytes each, in fixed chunks of 4,096 (growth never copies them),
//!   addressed by a `u32` row index.
//! - per SKU (indexed by SKU id): its name and its `(location id, row index)` slots, sorted by
//!   location id — 8 bytes per row. This is the `(sku, location) → row` map (a binary search
//!   over a SKU's few locations, no global hash table of 1M keys at ~2× bucket overhead) and
//!   the list that network and channel totals walk.
//! - per location (indexed by location id): its code, the folded [`LocationState`], the
//!   channel flags derived from it, and `BTreeMap<Arc<str>, u32>` SKU name → row index, ordered
//!   by SKU so that [`InventoryView::stock_at`] pages without sorting (~40 bytes per row: the
//!   key is the shared `Arc`, not a copy of the string).
//! - two `HashMap<Arc<str>, u32>` name → id tables (one entry per SKU and per location).
//!
//! That is about 105–110 bytes per row for 100,000 SKUs × 10 locations, allocator overhead
//! included (`benches/view_rebuild.rs`; [`InventoryView::heap_bytes`] computes it from the
//! capacities). Per-SKU costs (name, slot vector, hash entry: ~110 bytes) are shared by the
//! SKU's rows, so a catalogue where most SKUs sit at one location pays about twice that.
//!
//! # Channel rules
//!
//! Only **active** locations sell. Inactive or never-defined locations (a stock stream may name
//! a location before its `LocationDefined` is seen) keep their rows — [`InventoryView::levels`]
//! and [`InventoryView::stock_at`] still show them — but count in no total:
//!
//! - [`InventoryView::network_totals`]: every active location. `available` is the sum of each
//!   location's available, not recomputed from summed buckets: safety stock or a shortfall at
//!   one location must not eat stock promised at another.
//! - [`Channel::Online`]: active locations that can ship, by the rule sourcing ships by — a DC
//!   with `SHIP`, a store with `SHIP_FROM_STORE` (a store's `SHIP` is not what lets a shop
//!   floor pack parcels) — so that what the channel shows an order can take.
//! - [`Channel::Store`]: that one location, if it is active and offers `PICKUP`; otherwise the
//!   channel has nothing (0, no locations).
//! - [`InventoryView::nearby_stores`]: active locations of kind `STORE` with `PICKUP`.
//!
//! Channel answers list only locations with something available (> 0).
//!
//! # Writes and the change feed
//!
//! [`Projection::apply`] decodes the whole batch before taking the write lock, so readers wait
//! only for the bucket arithmetic. After a batch it sends one [`StockChange`] per touched
//! row (its levels after the batch, the position of the last event that touched it) — but only
//! when someone listens, so a rebuild does not pay for the feed.

use std::collections::{BTreeMap, HashMap};
use std::mem::{align_of, size_of};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::projection::Projection;
use ichigen_shared::store::{Position, SubscriptionFilter};
use tokio::sync::broadcast;

use crate::domain::{
    Capability, Location, LocationEvent, LocationKind, LocationState, StockEvent, StockLevels,
};

#[cfg(test)]
mod tests;

/// Mean earth radius (IUGG), used for every distance the view reports.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Changes buffered per subscriber before a slow one sees `RecvError::Lagged`.
pub const CHANGE_FEED_CAPACITY: usize = 4096;

/// Where a customer buys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Delivery: every active location that can ship.
    Online,
    /// Pickup at this store (location code).
    Store(String),
}

/// What a channel can promise for one SKU.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelAvailability {
    /// Sum of `locations[..].available`.
    pub available: i64,
    /// Locations with something available.
    pub locations: Vec<LocationAvailability>,
}

/// One location's available for a SKU.
#[derive(Clone, Debug, PartialEq)]
pub struct LocationAvailability {
    pub location: String,
    pub available: i64,
    /// Great-circle distance from the point asked about (`None` when no point was given).
    pub distance_km: Option<f64>,
}

/// A row that changed: what the GraphQL stock subscription delivers.
#[derive(Clone, Debug)]
pub struct StockChange {
    pub sku: Arc<str>,
    pub location: Arc<str>,
    /// The row after the batch that changed it.
    pub levels: StockLevels,
    /// Position of the last event of that batch that touched the row.
    pub position: Position,
}

/// The inventory read model. Cheap to share (`Arc`); every read returns owned values.
pub struct InventoryView {
    state: RwLock<State>,
    changes: broadcast::Sender<StockChange>,
}

/// Five buckets; the rules are `StockItem::apply`'s without per-reservation state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Row {
    on_hand: i64,
    reserved: i64,
    safety_stock: i64,
    incoming: i64,
    non_sellable: i64,
}

/// Rows in fixed chunks of [`ROWS_PER_CHUNK`]: growing never copies the rows already there
/// (one `Vec<Row>` would reallocate and copy 40 MB under the write lock at a million rows, and
/// keep up to twice the memory it uses), and at most one chunk is partly empty.
#[derive(Default)]
struct Rows {
    chunks: Vec<Vec<Row>>,
    len: usize,
}

const ROWS_PER_CHUNK: usize = 4096;

impl Rows {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Option<&Row> {
        self.chunks
            .get(index / ROWS_PER_CHUNK)?
            .get(index % ROWS_PER_CHUNK)
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut Row> {
        self.chunks
            .get_mut(index / ROWS_PER_CHUNK)?
            .get_mut(index % ROWS_PER_CHUNK)
    }

    fn push(&mut self, row: Row) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < ROWS_PER_CHUNK => chunk.push(row),
            _ => {
                let mut chunk = Vec::with_capacity(ROWS_PER_CHUNK);
                chunk.push(row);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * size_of::<Vec<Row>>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * size_of::<Row>())
                .sum::<usize>()
    }
}

/// Where a SKU's row at one location is.
#[derive(Clone, Copy, Debug)]
struct Slot {
    location: u32,
    row: u32,
}

struct SkuEntry {
    name: Arc<str>,
    /// Sorted by location id.
    slots: Vec<Slot>,
}

/// What a location does for the channels, derived from its folded state on every change so
/// that reads test booleans instead of capability sets.
#[derive(Clone, Copy, Debug, Default)]
struct Reach {
    active: bool,
    /// Active, and can ship (SHIP or SHIP_FROM_STORE).
    online: bool,
    /// Active, and offers PICKUP.
    pickup: bool,
    /// `pickup`, and a store.
    pickup_store: bool,
    lat: f64,
    lon: f64,
}

impl Reach {
    fn of(location: Option<&Location>) -> Reach {
        match location {
            Some(l) if l.active => {
                let caps = &l.spec.capabilities;
                let pickup = caps.contains(&Capability::Pickup);
                Reach {
                    active: true,
                    // As sourcing's `Candidate::can_ship`.
                    online: match l.spec.kind {
                        LocationKind::Dc => caps.contains(&Capability::Ship),
                        LocationKind::Store => caps.contains(&Capability::ShipFromStore),
                    },
                    pickup,
                    pickup_store: pickup && l.spec.kind == LocationKind::Store,
                    lat: l.spec.lat,
                    lon: l.spec.lon,
                }
            }
            _ => Reach::default(),
        }
    }
}

struct LocEntry {
    code: Arc<str>,
    state: LocationState,
    reach: Reach,
    /// SKU → row index, in SKU order (for paging through a location).
    skus: BTreeMap<Arc<str>, u32>,
}

#[derive(Default)]
struct State {
    sku_ids: HashMap<Arc<str>, u32>,
    skus: Vec<SkuEntry>,
    location_ids: HashMap<Arc<str>, u32>,
    locations: Vec<LocEntry>,
    rows: Rows,
}

/// An event of a batch, decoded before the write lock is taken.
enum Decoded<'a> {
    Stock {
        sku: &'a str,
        location: &'a str,
        event: StockEvent,
        position: Position,
    },
    Location {
        code: &'a str,
        event: LocationEvent,
    },
}

impl Row {
    fn apply(&mut self, event: &StockEvent) {
        match event {
            StockEvent::GoodsReceived(e) => self.on_hand = self.on_hand.saturating_add(e.qty),
            StockEvent::StockAdjusted(e) => self.on_hand = self.on_hand.saturating_add(e.delta),
            StockEvent::CycleCounted(e) => self.on_hand = e.counted,
            StockEvent::OnHandSet(e) => self.on_hand = e.new_on_hand,
            StockEvent::TransferShipped(e) => self.on_hand = self.on_hand.saturating_sub(e.qty),
            StockEvent::IncomingExpected(e) => self.incoming = self.incoming.saturating_add(e.qty),
            StockEvent::TransferInTransit(e) => {
                self.incoming = self
                    .incoming
                    .saturating_add(e.qty)
                    .saturating_sub(e.incoming_cleared)
                    .max(0);
            }
            StockEvent::TransferReceived(e) => {
                self.on_hand = self.on_hand.saturating_add(e.qty);
                self.incoming = self.incoming.saturating_sub(e.incoming_cleared).max(0);
            }
            StockEvent::ReturnReceived(e) => self.on_hand = self.on_hand.saturating_add(e.qty),
            // Never stock: no bucket changes (the count lives in `StockItem::written_off`, which
            // no read of the view needs, so rows stay five buckets).
            StockEvent::ReturnWrittenOff(_) => {}
            StockEvent::StockMovedToNonSellable(e) => {
                self.on_hand = self.on_hand.saturating_sub(e.qty);
                self.non_sellable = self.non_sellable.saturating_add(e.qty);
            }
            StockEvent::StockMovedToSellable(e) => {
                self.on_hand = self.on_hand.saturating_add(e.qty);
                self.non_sellable = self.non_sellable.saturating_sub(e.qty);
            }
            StockEvent::SafetyStockSet(e) => self.safety_stock = e.qty,
            StockEvent::Reserved(e) => self.reserved = self.reserved.saturating_add(e.qty),
            StockEvent::ReservationConfirmed(_) => {}
            StockEvent::ReservationReleased(e) => {
                self.reserved = self.reserved.saturating_sub(e.qty)
            }
            StockEvent::ReservationExpired(e) => {
                self.reserved = self.reserved.saturating_sub(e.qty)
            }
            StockEvent::ReservationConsumed(e) => {
                self.reserved = self.reserved.saturating_sub(e.qty);
                self.on_hand = self.on_hand.saturating_sub(e.qty);
            }
        }
    }

    /// Exactly `StockItem::available`.
    fn available(&self) -> i64 {
        self.on_hand
            .saturating_sub(self.reserved)
            .saturating_sub(self.safety_stock)
            .max(0)
    }

    fn levels(&self) -> StockLevels {
        StockLevels {
            on_hand: self.on_hand,
            reserved: self.reserved,
            safety_stock: self.safety_stock,
            available: self.available(),
            incoming: self.incoming,
            non_sellable: self.non_sellable,
        }
    }
}

impl State {
    fn sku_id(&self, sku: &str) -> Option<u32> {
        self.sku_ids.get(sku).copied()
    }

    fn location_id(&self, code: &str) -> Option<u32> {
        self.location_ids.get(code).copied()
    }

    fn location_entry(&self, id: u32) -> Option<&LocEntry> {
        self.locations.get(id as usize)
    }

    fn intern_sku(&mut self, sku: &str) -> Option<u32> {
        if let Some(id) = self.sku_id(sku) {
            return Some(id);
        }
        let id = u32::try_from(self.skus.len()).ok()?;
        let name: Arc<str> = Arc::from(sku);
        self.sku_ids.insert(name.clone(), id);
        self.skus.push(SkuEntry {
            name,
            slots: Vec::new(),
        });
        Some(id)
    }

    fn intern_location(&mut self, code: &str) -> Option<u32> {
        if let Some(id) = self.location_id(code) {
            return Some(id);
        }
        let id = u32::try_from(self.locations.len()).ok()?;
        let code: Arc<str> = Arc::from(code);
        self.location_ids.insert(code.clone(), id);
        self.locations.push(LocEntry {
            code,
            state: LocationState::default(),
            reach: Reach::default(),
            skus: BTreeMap::new(),
        });
        Some(id)
    }

    /// The row of a SKU at a location, if it has one.
    fn row(&self, sku: u32, location: u32) -> Option<&Row> {
        let slots = &self.skus.get(sku as usize)?.slots;
        let i = slots.binary_search_by_key(&location, |s| s.location).ok()?;
        self.rows.get(slots[i].row as usize)
    }

    /// The row index of a SKU at a location, created (all zero) on first sight.
    fn row_index_or_insert(&mut self, sku: u32, location: u32) -> Option<u32> {
        let entry = self.skus.get_mut(sku as usize)?;
        let at = match entry.slots.binary_search_by_key(&location, |s| s.location) {
            Ok(i) => return Some(entry.slots[i].row),
            Err(at) => at,
        };
        let loc = self.locations.get_mut(location as usize)?;
        let row = u32::try_from(self.rows.len()).ok()?;
        self.rows.push(Row::default());
        // Grow from 1 by doubling: most SKUs sit at a handful of locations, and `Vec`'s
        // minimum of 4 would waste most of a single-location SKU's slot allocation.
        if entry.slots.len() == entry.slots.capacity() {
            entry.slots.reserve_exact(entry.slots.len().max(1));
        }
        entry.slots.insert(at, Slot { location, row });
        loc.skus.insert(entry.name.clone(), row);
        Some(row)
    }

    /// Applies a stock event; returns the row's (sku id, location id).
    fn apply_stock(&mut self, sku: &str, location: &str, event: &StockEvent) -> Option<(u32, u32)> {
        let sku_id = self.intern_sku(sku)?;
        let location_id = self.intern_location(location)?;
        let row = self.row_index_or_insert(sku_id, location_id)?;
        self.rows.get_mut(row as usize)?.apply(event);
        Some((sku_id, location_id))
    }

    fn apply_location(&mut self, code: &str, event: &LocationEvent) {
        let Some(id) = self.intern_location(code) else {
            return;
        };
        if let Some(entry) = self.locations.get_mut(id as usize) {
            entry.state.apply(event);
            entry.reach = Reach::of(entry.state.location.as_ref());
        }
    }

    /// One change per touched row, in the order of the last event that touched it.
    fn changes(&self, mut touched: Vec<(u32, u32, Position)>) -> Vec<StockChange> {
        touched.sort_unstable_by_key(|&(sku, location, position)| (sku, location, position));
        // Keep the last (highest position) entry of each row.
        let mut last: Vec<(u32, u32, Position)> = Vec::with_capacity(touched.len());
        for t in touched {
            match last.last_mut() {
                Some(prev) if (prev.0, prev.1) == (t.0, t.1) => *prev = t,
                _ => last.push(t),
            }
        }
        last.sort_unstable_by_key(|&(_, _, position)| position);
        last.into_iter()
            .filter_map(|(sku, location, position)| {
                Some(StockChange {
                    sku: self.skus.get(sku as usize)?.name.clone(),
                    location: self.location_entry(location)?.code.clone(),
                    levels: self.row(sku, location)?.levels(),
                    position,
                })
            })
            .collect()
    }

    /// Available per location of a SKU, for the locations `include` accepts.
    fn available_where(
        &self,
        sku: &str,
        origin: Option<(f64, f64)>,
        include: impl Fn(&Reach, Option<f64>) -> bool,
    ) -> Vec<LocationAvailability> {
        let Some(sku_id) = self.sku_id(sku) else {
            return Vec::new();
        };
        let Some(entry) = self.skus.get(sku_id as usize) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for slot in &entry.slots {
            let (Some(loc), Some(row)) = (
                self.location_entry(slot.location),
                self.rows.get(slot.row as usize),
            ) else {
                continue;
            };
            let available = row.available();
            if available <= 0 {
                continue;
            }
            let distance =
                origin.map(|(lat, lon)| haversine_km(lat, lon, loc.reach.lat, loc.reach.lon));
            if include(&loc.reach, distance) {
                out.push(LocationAvailability {
                    location: loc.code.to_string(),
                    available,
                    distance_km: distance,
                });
            }
        }
        out
    }

    /// Available at one location for the store channel.
    fn available_at_store(
        &self,
        sku: &str,
        code: &str,
        origin: Option<(f64, f64)>,
    ) -> Vec<LocationAvailability> {
        let (Some(sku_id), Some(location_id)) = (self.sku_id(sku), self.location_id(code)) else {
            return Vec::new();
        };
        let (Some(loc), Some(row)) = (
            self.location_entry(location_id),
            self.row(sku_id, location_id),
        ) else {
            return Vec::new();
        };
        let available = row.available();
        if !loc.reach.pickup || available <= 0 {
            return Vec::new();
        }
        vec![LocationAvailability {
            location: loc.code.to_string(),
            available,
            distance_km: origin
                .map(|(lat, lon)| haversine_km(lat, lon, loc.reach.lat, loc.reach.lon)),
        }]
    }
}

/// Great-circle distance in km (haversine on a sphere of [`EARTH_RADIUS_KM`]).
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// Nearest first, ties by code.
fn sort_nearest(list: &mut [LocationAvailability]) {
    list.sort_by(|a, b| {
        let (da, db) = (a.distance_km.unwrap_or(0.0), b.distance_km.unwrap_or(0.0));
        da.total_cmp(&db).then_with(|| a.location.cmp(&b.location))
    });
}

fn total(locations: Vec<LocationAvailability>) -> ChannelAvailability {
    ChannelAvailability {
        available: locations
            .iter()
            .fold(0i64, |sum, l| sum.saturating_add(l.available)),
        locations,
    }
}

/// Decodes one event of the view's categories; `None` (logged) for anything it cannot use.
fn decode(recorded: &RecordedEvent) -> Option<Decoded<'_>> {
    let stream: &str = &recorded.stream;
    let Some((category, id)) = stream.split_once('-') else {
        tracing::debug!(
            stream,
            "inventory view: not a stream of its categories; skipped"
        );
        return None;
    };
    let skip = |why: &str, error: Option<&serde_json::Error>| {
        tracing::warn!(
            stream,
            event_type = %recorded.event_type,
            position = %recorded.position,
            error = error.map(tracing::field::display),
            "inventory view: {why}; event skipped"
        );
    };
    if category == crate::CATEGORY {
        // SKUs never contain '@'; location codes cannot either.
        let Some((sku, location)) = id
            .split_once('@')
            .filter(|(s, l)| !s.is_empty() && !l.is_empty())
        else {
            skip("stream name is not inventory-<SKU>@<LOCATION>", None);
            return None;
        };
        match StockEvent::decode(&recorded.event_type, &recorded.data) {
            Some(Ok(event)) => Some(Decoded::Stock {
                sku,
                location,
                event,
                position: recorded.position,
            }),
            Some(Err(e)) => {
                skip("undecodable stock event", Some(&e));
                None
            }
            None => {
                skip("unknown stock event type", None);
                None
            }
        }
    } else if category == crate::LOCATION_CATEGORY {
        if id.is_empty() {
            skip("location stream without a code", None);
            return None;
        }
        match LocationEvent::decode(&recorded.event_type, &recorded.data) {
            Some(Ok(event)) => Some(Decoded::Location { code: id, event }),
            Some(Err(e)) => {
                skip("undecodable location event", Some(&e));
                None
            }
            None => {
                skip("unknown location event type", None);
                None
            }
        }
    } else {
        tracing::debug!(
            stream,
            "inventory view: not a stream of its categories; skipped"
        );
        None
    }
}

impl Default for InventoryView {
    fn default() -> Self {
        Self::new()
    }
}

impl InventoryView {
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(CHANGE_FEED_CAPACITY);
        InventoryView {
            state: RwLock::new(State::default()),
            changes,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The buckets of one SKU at one location (active or not).
    pub fn levels(&self, sku: &str, location: &str) -> Option<StockLevels> {
        let s = self.read();
        Some(s.row(s.sku_id(sku)?, s.location_id(location)?)?.levels())
    }

    /// The SKU summed over its active locations (`available` summed per location); `None` for
    /// a SKU the view has never seen.
    pub fn network_totals(&self, sku: &str) -> Option<StockLevels> {
        let s = self.read();
        let entry = s.skus.get(s.sku_id(sku)? as usize)?;
        let mut t = StockLevels {
            on_hand: 0,
            reserved: 0,
            safety_stock: 0,
            available: 0,
            incoming: 0,
            non_sellable: 0,
        };
        for slot in &entry.slots {
            let (Some(loc), Some(r)) = (
                s.location_entry(slot.location),
                s.rows.get(slot.row as usize),
            ) else {
                continue;
            };
            if !loc.reach.active {
                continue;
            }
            t.on_hand = t.on_hand.saturating_add(r.on_hand);
            t.reserved = t.reserved.saturating_add(r.reserved);
            t.safety_stock = t.safety_stock.saturating_add(r.safety_stock);
            t.available = t.available.saturating_add(r.available());
            t.incoming = t.incoming.saturating_add(r.incoming);
            t.non_sellable = t.non_sellable.saturating_add(r.non_sellable);
        }
        Some(t)
    }

    /// What `channel` can promise for `sku`; locations sorted by code.
    pub fn availability(&self, sku: &str, channel: &Channel) -> ChannelAvailability {
        let mut list = self.channel_locations(sku, channel, None);
        list.sort_by(|a, b| a.location.cmp(&b.location));
        total(list)
    }

    /// [`availability`](Self::availability) with the distance of each location from
    /// (`lat`, `lon`), nearest first (ties by code).
    pub fn availability_near(
        &self,
        sku: &str,
        channel: &Channel,
        lat: f64,
        lon: f64,
    ) -> ChannelAvailability {
        let mut list = self.channel_locations(sku, channel, Some((lat, lon)));
        sort_nearest(&mut list);
        total(list)
    }

    fn channel_locations(
        &self,
        sku: &str,
        channel: &Channel,
        origin: Option<(f64, f64)>,
    ) -> Vec<LocationAvailability> {
        let s = self.read();
        match channel {
            Channel::Online => s.available_where(sku, origin, |reach, _| reach.online),
            Channel::Store(code) => s.available_at_store(sku, code, origin),
        }
    }

    /// Pickup stores within `radius_km` of (`lat`, `lon`) that have `sku` available, nearest
    /// first (ties by code), at most `limit`.
    pub fn nearby_stores(
        &self,
        sku: &str,
        lat: f64,
        lon: f64,
        radius_km: f64,
        limit: usize,
    ) -> Vec<LocationAvailability> {
        self.nearby_stores_where(sku, lat, lon, radius_km, limit, |_| true)
    }

    /// [`nearby_stores`](Self::nearby_stores) of the stores `include` accepts (by code; called
    /// after the view's lock is released, so it may read the view itself), before the limit.
    pub fn nearby_stores_where(
        &self,
        sku: &str,
        lat: f64,
        lon: f64,
        radius_km: f64,
        limit: usize,
        include: impl Fn(&str) -> bool,
    ) -> Vec<LocationAvailability> {
        if limit == 0 {
            return Vec::new();
        }
        let mut list = self
            .read()
            .available_where(sku, Some((lat, lon)), |reach, d| {
                reach.pickup_store && d.is_some_and(|d| d <= radius_km)
            });
        list.retain(|l| include(&l.location));
        sort_nearest(&mut list);
        list.truncate(limit);
        list
    }

    /// Up to `first` rows at `location` in SKU order, strictly after `after_sku`, and whether
    /// more follow (Relay pagination; the cursor is the SKU).
    pub fn stock_at(
        &self,
        location: &str,
        after_sku: Option<&str>,
        first: usize,
    ) -> (Vec<(String, StockLevels)>, bool) {
        self.stock_at_where(location, after_sku, first, |_| true)
    }

    /// [`stock_at`](Self::stock_at) for the SKUs `include` accepts (new vs resale stock).
    /// Filtered here, not by the caller, so that a page holds `first` matching rows and "more
    /// follow" is about matching rows. The location's SKUs are walked in order until the page
    /// is full, so a page of a rare kind at a large location reads many rows under the lock.
    pub fn stock_at_where(
        &self,
        location: &str,
        after_sku: Option<&str>,
        first: usize,
        include: impl Fn(&str) -> bool,
    ) -> (Vec<(String, StockLevels)>, bool) {
        let s = self.read();
        let Some(loc) = s.location_id(location).and_then(|id| s.location_entry(id)) else {
            return (Vec::new(), false);
        };
        let lower = after_sku.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rows = loc
            .skus
            .range::<str, _>((lower, Bound::Unbounded))
            .filter(|(sku, _)| include(sku));
        let page = rows
            .by_ref()
            .take(first)
            .filter_map(|(sku, row)| Some((sku.to_string(), s.rows.get(*row as usize)?.levels())))
            .collect();
        (page, rows.next().is_some())
    }

    /// Every defined location, by code.
    pub fn locations(&self) -> Vec<Location> {
        let s = self.read();
        let mut out: Vec<Location> = s
            .locations
            .iter()
            .filter_map(|l| l.state.location.clone())
            .collect();
        drop(s);
        out.sort_by(|a, b| a.spec.code.cmp(&b.spec.code));
        out
    }

    /// One defined location.
    pub fn location(&self, code: &str) -> Option<Location> {
        let s = self.read();
        s.location_entry(s.location_id(code)?)?
            .state
            .location
            .clone()
    }

    /// `f` of the defined location `code`, without copying it.
    pub fn with_location<R>(&self, code: &str, f: impl FnOnce(&Location) -> R) -> Option<R> {
        let s = self.read();
        s.location_entry(s.location_id(code)?)?
            .state
            .location
            .as_ref()
            .map(f)
    }

    /// Whether the location is defined (`Some`) and active (`Some(true)`), without copying
    /// it: the check every stock command makes.
    pub fn location_active(&self, code: &str) -> Option<bool> {
        let s = self.read();
        s.location_entry(s.location_id(code)?)?
            .state
            .location
            .as_ref()
            .map(|l| l.active)
    }

    /// SKU × location rows.
    pub fn row_count(&self) -> usize {
        self.read().rows.len()
    }

    /// Distinct SKUs.
    pub fn sku_count(&self) -> usize {
        self.read().skus.len()
    }

    /// The stock change feed: one [`StockChange`] per row changed by each applied batch. A
    /// receiver that falls more than [`CHANGE_FEED_CAPACITY`] behind gets `Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<StockChange> {
        self.changes.subscribe()
    }

    /// The heap the view holds, computed from its structures' capacities (allocator overhead
    /// not included). Exact for the `Vec`s, hash tables (hashbrown: buckets × (entry + 1 control
    /// byte) + one group) and interned strings; estimated for the per-location `BTreeMap`s,
    /// whose node count is not observable: nodes of 11 entries assumed 6/11 full, the fill an
    /// in-order insert leaves (a random-order insert fills them better). The bench cross-checks
    /// it against the process's resident-set growth.
    pub fn heap_bytes(&self) -> usize {
        let s = self.read();
        let mut bytes = hash_map_bytes::<Arc<str>, u32>(s.sku_ids.capacity())
            + hash_map_bytes::<Arc<str>, u32>(s.location_ids.capacity())
            + s.skus.capacity() * size_of::<SkuEntry>()
            + s.locations.capacity() * size_of::<LocEntry>()
            + s.rows.heap_bytes();
        for sku in &s.skus {
            bytes += arc_str_bytes(&sku.name) + sku.slots.capacity() * size_of::<Slot>();
        }
        for loc in &s.locations {
            bytes += arc_str_bytes(&loc.code) + btree_map_bytes::<Arc<str>, u32>(loc.skus.len());
            if let Some(l) = &loc.state.location {
                let spec = &l.spec;
                bytes += [
                    &spec.code,
                    &spec.name,
                    &spec.address.line1,
                    &spec.address.city,
                    &spec.address.postal_code,
                    &spec.address.country,
                    &spec.time_zone,
                ]
                .iter()
                .map(|s| s.capacity())
                .sum::<usize>();
                // One B-tree leaf for the capability set.
                bytes += btree_map_bytes::<Capability, ()>(spec.capabilities.len());
            }
        }
        bytes
    }
}

/// Heap of a hashbrown table with `capacity` (as `HashMap::capacity` reports it).
fn hash_map_bytes<K, V>(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    // hashbrown: capacity = buckets − 1 below 8 buckets, else buckets × 7/8.
    let buckets = if capacity < 8 {
        capacity + 1
    } else {
        capacity / 7 * 8
    };
    const GROUP_WIDTH: usize = 16;
    buckets * size_of::<(K, V)>() + buckets + GROUP_WIDTH
}

/// An `Arc<str>` allocation: two counters and the bytes, 8-aligned.
fn arc_str_bytes(s: &Arc<str>) -> usize {
    (2 * size_of::<usize>() + s.len()).next_multiple_of(size_of::<usize>())
}

/// Estimated heap of a `BTreeMap` with `len` entries (see [`InventoryView::heap_bytes`]).
fn btree_map_bytes<K, V>(len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    const CAPACITY: usize = 11;
    const FILL: usize = 6;
    // Leaf: parent pointer, parent index and length, then the keys and values.
    let leaf = ((size_of::<usize>() + 4).next_multiple_of(align_of::<K>())
        + CAPACITY * size_of::<K>())
    .next_multiple_of(align_of::<V>())
        + CAPACITY * size_of::<V>();
    let leaf = leaf.next_multiple_of(size_of::<usize>());
    let internal = leaf + (CAPACITY + 1) * size_of::<usize>();
    // Every leaf split lifts one entry into the level above: FILL + 1 entries per leaf, and
    // FILL + 1 children per internal node.
    let leaves = len.div_ceil(FILL + 1);
    let mut internals = 0;
    let mut level = leaves;
    while level > 1 {
        level = level.div_ceil(FILL + 1);
        internals += level;
    }
    leaves * leaf + internals * internal
}

impl Projection for InventoryView {
    fn name(&self) -> &'static str {
        "inventory-view"
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories([crate::CATEGORY, crate::LOCATION_CATEGORY])
    }

    fn apply(&self, events: &[RecordedEvent]) {
        let decoded: Vec<Decoded<'_>> = events.iter().filter_map(decode).collect();
        if decoded.is_empty() {
            return;
        }
        // Checked once per batch: without listeners a replay builds no change list at all.
        let feed = self.changes.receiver_count() > 0;
        let mut touched = Vec::new();
        let changes = {
            let mut s = self.write();
            for d in &decoded {
                match d {
                    Decoded::Stock {
                        sku,
                        location,
                        event,
                        position,
                    } => {
                        let applied = s.apply_stock(sku, location, event);
                        match applied {
                            Some((sku, location)) if feed => {
                                touched.push((sku, location, *position))
                            }
                            Some(_) => {}
                            None => tracing::warn!(
                                sku,
                                location,
                                "inventory view: no room for another id; event skipped"
                            ),
                        }
                    }
                    Decoded::Location { code, event } => s.apply_location(code, event),
                }
            }
            if feed {
                s.changes(touched)
            } else {
                Vec::new()
            }
        };
        for change in changes {
            // Err only when every receiver has gone since the check: nobody to tell.
            let _ = self.changes.send(change);
        }
    }
}
