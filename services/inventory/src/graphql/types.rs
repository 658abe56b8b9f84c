//! The inventory's GraphQL object and input types: locations, stock levels, availability and
//! movements. Domain types are mirrored here (not annotated in `domain`) so that the domain stays
//! free of API concerns and the schema can evolve without touching decisions.

use crate::domain::{
    Address, Capability, Location, LocationKind, LocationPatch, LocationSpec, StockEvent,
    StockLevels,
};
use crate::projections::view::LocationAvailability;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::graphql::conventions::{encode_id, UserError};

/// GraphQL type name of a location: the type part of its global id.
pub const LOCATION_TYPE: &str = "Location";
/// GraphQL type name of a stock level (one SKU at one location).
pub const STOCK_LEVEL_TYPE: &str = "StockLevel";
/// GraphQL type name of one recorded stock movement.
pub const STOCK_MOVEMENT_TYPE: &str = "StockMovement";

/// Distribution centre or store.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::LocationKind")]
pub enum LocationKindGql {
    Dc,
    Store,
}

/// What a location can do for orders.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "LocationCapability", remote = "crate::domain::Capability")]
pub enum CapabilityGql {
    /// Ships customer orders (a DC).
    Ship,
    /// Customers collect orders here (BOPIS).
    Pickup,
    /// A store that ships customer orders.
    ShipFromStore,
    /// Accepts returns at the counter.
    Returns,
    /// Sells graded returns.
    Resale,
}

/// Where an availability question is asked for.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SalesChannel {
    /// Delivery: every active location that ships (DCs, ship-from-store stores).
    Online,
    /// Pickup at one store (`store` argument): that store's stock, if it offers pickup.
    Pickup,
}

/// New stock or graded returns offered for resale. Resale SKUs are derived from the original
/// SKU and the grade (`TSHIRT-M-R-LIKE_NEW`, see `ichigen_shared::resale`), so the condition
/// is read from the SKU itself: no catalog lookup, and the same answer in every service.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum StockCondition {
    /// Ordinary (new) SKUs.
    New,
    /// Resale SKUs: returned units graded for resale.
    Resale,
    /// Both (as a filter only; a SKU is always NEW or RESALE).
    #[default]
    Any,
}

impl StockCondition {
    /// NEW or RESALE: the condition of the stock a SKU names.
    pub fn of(sku: &str) -> Self {
        if ichigen_shared::resale::resale_grade(sku).is_some() {
            StockCondition::Resale
        } else {
            StockCondition::New
        }
    }

    /// Whether `sku` passes this condition as a filter (ANY passes every SKU).
    pub fn matches(self, sku: &str) -> bool {
        self == StockCondition::Any || self == StockCondition::of(sku)
    }
}

/// A postal address.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Address")]
pub struct AddressObject {
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

impl From<&Address> for AddressObject {
    fn from(a: &Address) -> Self {
        AddressObject {
            line1: a.line1.clone(),
            city: a.city.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        }
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct AddressInput {
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case (`JP`).
    pub country: String,
}

impl From<AddressInput> for Address {
    fn from(a: AddressInput) -> Self {
        Address {
            line1: a.line1,
            city: a.city,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// A DC or a store.
pub struct LocationObject(pub Location);

#[Object(name = "Location")]
impl LocationObject {
    async fn id(&self) -> ID {
        encode_id(LOCATION_TYPE, &self.0.spec.code)
    }
    /// The short code stock and orders name the location by (`TKY-DC1`).
    async fn code(&self) -> &str {
        &self.0.spec.code
    }
    async fn name(&self) -> &str {
        &self.0.spec.name
    }
    async fn kind(&self) -> LocationKindGql {
        self.0.spec.kind.into()
    }
    async fn address(&self) -> AddressObject {
        (&self.0.spec.address).into()
    }
    async fn lat(&self) -> f64 {
        self.0.spec.lat
    }
    async fn lon(&self) -> f64 {
        self.0.spec.lon
    }
    /// IANA time zone; pickup hold days are counted in its local days.
    async fn time_zone(&self) -> &str {
        &self.0.spec.time_zone
    }
    async fn capabilities(&self) -> Vec<CapabilityGql> {
        self.0
            .spec
            .capabilities
            .iter()
            .map(|c| (*c).into())
            .collect()
    }
    /// Local days of the store a pickup waits for its customer: a pickup made ready on a
    /// local day may be collected through the end of the Nth local day after it (until local
    /// midnight, in `timeZone`), then it expires and its stock is released.
    async fn pickup_hold_days(&self) -> i64 {
        self.0.spec.pickup_hold_days
    }
    /// Orders the location takes per local day (in `timeZone`); null = unlimited, 0 = none.
    /// Each placement that takes stock here claims one unit of the day's capacity; a full
    /// location is skipped by sourcing and left out of availability for the rest of its day.
    async fn daily_capacity(&self) -> Option<i64> {
        self.0.spec.daily_capacity
    }
    /// Inactive locations keep their history but take no movements or reservations.
    async fn active(&self) -> bool {
        self.0.active
    }
}

/// Everything that describes a new location.
#[derive(InputObject, Clone, Debug)]
pub struct DefineLocationInput {
    /// 1–32 characters of `A-Z 0-9 _ -`; never changes.
    pub code: String,
    pub name: String,
    pub kind: LocationKindGql,
    pub address: AddressInput,
    pub lat: f64,
    pub lon: f64,
    /// IANA name the tz database knows, e.g. `Asia/Tokyo`: capacity and pickup hold days are
    /// counted in its local days.
    pub time_zone: String,
    pub capabilities: Vec<CapabilityGql>,
    /// Local days a pickup waits (see `Location.pickupHoldDays`), 1–30.
    #[graphql(default = 3)]
    pub pickup_hold_days: i64,
    /// Orders per local day (≥ 0); omitted or null = unlimited.
    pub daily_capacity: Option<i64>,
}

impl From<DefineLocationInput> for LocationSpec {
    fn from(i: DefineLocationInput) -> Self {
        LocationSpec {
            code: i.code,
            name: i.name,
            kind: i.kind.into(),
            address: i.address.into(),
            lat: i.lat,
            lon: i.lon,
            time_zone: i.time_zone,
            capabilities: i.capabilities.into_iter().map(Capability::from).collect(),
            pickup_hold_days: i.pickup_hold_days,
            daily_capacity: i.daily_capacity,
        }
    }
}

/// A partial update: absent fields stay as they are.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateLocationInput {
    pub id: ID,
    pub name: Option<String>,
    pub kind: Option<LocationKindGql>,
    pub address: Option<AddressInput>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub time_zone: Option<String>,
    pub capabilities: Option<Vec<CapabilityGql>>,
    pub pickup_hold_days: Option<i64>,
    /// Orders per local day; null makes it unlimited, omitted leaves it as it is.
    pub daily_capacity: async_graphql::MaybeUndefined<i64>,
}

impl UpdateLocationInput {
    pub fn patch(self) -> LocationPatch {
        LocationPatch {
            name: self.name,
            kind: self.kind.map(LocationKind::from),
            address: self.address.map(Address::from),
            lat: self.lat,
            lon: self.lon,
            time_zone: self.time_zone,
            capabilities: self
                .capabilities
                .map(|c| c.into_iter().map(Capability::from).collect()),
            pickup_hold_days: self.pickup_hold_days,
            daily_capacity: match self.daily_capacity {
                async_graphql::MaybeUndefined::Undefined => None,
                async_graphql::MaybeUndefined::Null => Some(None),
                async_graphql::MaybeUndefined::Value(v) => Some(Some(v)),
            },
        }
    }
}

/// All buckets of one SKU at one location.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex, name = "StockLevel")]
pub struct StockLevelObject {
    pub sku: String,
    #[graphql(skip)]
    pub location_code: String,
    /// Sellable stock physically there.
    pub on_hand: i64,
    /// Promised to carts and orders.
    pub reserved: i64,
    /// Kept back from promising.
    pub safety_stock: i64,
    /// Available to promise: on hand − reserved − safety stock, never below 0.
    pub available: i64,
    /// Announced (in transit, expected).
    pub incoming: i64,
    /// Damaged or in quality control.
    pub non_sellable: i64,
}

impl StockLevelObject {
    pub fn new(sku: &str, location: &str, levels: StockLevels) -> Self {
        StockLevelObject {
            sku: sku.to_string(),
            location_code: location.to_string(),
            on_hand: levels.on_hand,
            reserved: levels.reserved,
            safety_stock: levels.safety_stock,
            available: levels.available,
            incoming: levels.incoming,
            non_sellable: levels.non_sellable,
        }
    }
}

#[ComplexObject]
impl StockLevelObject {
    async fn id(&self) -> ID {
        encode_id(
            STOCK_LEVEL_TYPE,
            &format!("{}@{}", self.sku, self.location_code),
        )
    }
    /// The location (null if it was never defined: stock recorded ahead of its definition).
    async fn location(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<LocationObject>> {
        Ok(super::service(ctx)?
            .view
            .location(&self.location_code)
            .map(LocationObject))
    }
    async fn location_code(&self) -> &str {
        &self.location_code
    }
    /// NEW, or RESALE for a resale SKU (a graded return), so that a storefront can label it.
    async fn condition(&self) -> StockCondition {
        StockCondition::of(&self.sku)
    }
    /// The grade code of a resale SKU (`LIKE_NEW`); null for new stock.
    async fn resale_grade(&self) -> Option<String> {
        ichigen_shared::resale::resale_grade(&self.sku)
    }
}

/// One location's part of an availability answer.
pub struct LocationAvailabilityObject(pub LocationAvailability);

#[Object(name = "LocationAvailability")]
impl LocationAvailabilityObject {
    async fn location(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<LocationObject>> {
        Ok(super::service(ctx)?
            .view
            .location(&self.0.location)
            .map(LocationObject))
    }
    async fn location_code(&self) -> &str {
        &self.0.location
    }
    async fn available(&self) -> i64 {
        self.0.available
    }
    /// Great-circle distance from the point asked about; null when no point was given.
    async fn distance_km(&self) -> Option<f64> {
        self.0.distance_km
    }
}

/// What can be promised for a SKU in a channel.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Availability {
    pub sku: String,
    pub channel: SalesChannel,
    /// Sum over the locations listed.
    pub available: i64,
    /// Locations with stock available, nearest first when a point was given (else by code).
    pub locations: Vec<LocationAvailabilityObject>,
}

#[ComplexObject]
impl Availability {
    /// NEW, or RESALE for a resale SKU (a graded return), so that a storefront can label it.
    async fn condition(&self) -> StockCondition {
        StockCondition::of(&self.sku)
    }
    /// The grade code of a resale SKU (`LIKE_NEW`); null for new stock.
    async fn resale_grade(&self) -> Option<String> {
        ichigen_shared::resale::resale_grade(&self.sku)
    }
}

/// A point on earth.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct GeoPointInput {
    /// Degrees, −90…90.
    pub lat: f64,
    /// Degrees, −180…180.
    pub lon: f64,
}

impl GeoPointInput {
    /// Errors are placed under `field` (the argument's name).
    pub fn validate(self, field: &str) -> Result<(f64, f64), UserError> {
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(UserError::invalid(
                &[field, "lat"],
                "lat must be between -90 and 90",
            ));
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            return Err(UserError::invalid(
                &[field, "lon"],
                "lon must be between -180 and 180",
            ));
        }
        Ok((self.lat, self.lon))
    }
}

/// One event of a stock item's history: who did what, when, why, with which document.
pub struct StockMovementObject(pub RecordedEvent, pub StockEvent);

#[Object(name = "StockMovement")]
impl StockMovementObject {
    async fn id(&self) -> ID {
        encode_id(
            STOCK_MOVEMENT_TYPE,
            &format!("{}/{}", self.0.stream, self.0.revision),
        )
    }
    /// The versioned event type, e.g. `GoodsReceived.v1`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// Change of on hand (sellable) stock.
    async fn on_hand_delta(&self) -> i64 {
        deltas(&self.1).0
    }
    /// Change of reserved stock.
    async fn reserved_delta(&self) -> i64 {
        deltas(&self.1).1
    }
    /// The quantity the movement names (a count's counted number, a reservation's quantity,
    /// the units of a return received or written off).
    async fn quantity(&self) -> i64 {
        quantity(&self.1)
    }
    /// Why: the reason code of an adjustment, the reason of a move to non-sellable or of a
    /// returned unit's write-off.
    async fn reason(&self) -> Option<&str> {
        match &self.1 {
            StockEvent::StockAdjusted(e) => Some(&e.reason_code),
            StockEvent::StockMovedToNonSellable(e) => Some(&e.reason),
            StockEvent::ReturnWrittenOff(e) => Some(&e.reason),
            _ => None,
        }
    }
    /// A returned unit's write-off: `DISPOSE` or `RETURN_TO_VENDOR`; null for other movements.
    async fn disposition(&self) -> Option<&str> {
        match &self.1 {
            StockEvent::ReturnWrittenOff(e) => Some(&e.disposition),
            _ => None,
        }
    }
    /// The returned unit (`<rmaId>/<unitId>`) of a return received or written off; null for
    /// other movements and for returns recorded before units had keys.
    async fn return_unit_key(&self) -> Option<&str> {
        let key = match &self.1 {
            StockEvent::ReturnReceived(e) => &e.key,
            StockEvent::ReturnWrittenOff(e) => &e.key,
            _ => return None,
        };
        (!key.is_empty()).then_some(key.as_str())
    }
    /// The document: PO or ASN, count sheet, transfer, RMA or reservation id (null when the
    /// movement named none).
    async fn reference(&self) -> Option<&str> {
        match &self.1 {
            StockEvent::GoodsReceived(e) => e.reference.as_deref(),
            StockEvent::StockAdjusted(e) => e.reference.as_deref(),
            StockEvent::TransferShipped(e) => Some(&e.transfer_id),
            StockEvent::IncomingExpected(e) => Some(&e.transfer_id),
            StockEvent::TransferInTransit(e) => Some(&e.transfer_id),
            StockEvent::CycleCounted(e) => e.reference.as_deref(),
            StockEvent::TransferReceived(e) => Some(&e.transfer_id),
            StockEvent::ReturnReceived(e) => Some(&e.rma_id),
            StockEvent::ReturnWrittenOff(e) => Some(&e.rma_id),
            StockEvent::Reserved(e) => Some(&e.reservation_id),
            StockEvent::ReservationConfirmed(e) => Some(&e.reservation_id),
            StockEvent::ReservationReleased(e) => Some(&e.reservation_id),
            StockEvent::ReservationConsumed(e) => Some(&e.reservation_id),
            StockEvent::ReservationExpired(e) => Some(&e.reservation_id),
            _ => None,
        }
    }
    /// Who: `ROLE:subject` or `ROLE:subject@store`.
    async fn actor(&self) -> String {
        self.0.metadata.actor.to_compact()
    }
    /// When it happened in the business.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.metadata.occurred_at
    }
    /// Store position, opaque (usable as `atLeast`).
    async fn position(&self) -> String {
        self.0.position.to_string()
    }
    async fn correlation_id(&self) -> uuid::Uuid {
        self.0.metadata.correlation_id
    }
}

/// (on hand, reserved) change of one event, as `StockItem::apply` folds it.
fn deltas(event: &StockEvent) -> (i64, i64) {
    use StockEvent as E;
    match event {
        E::GoodsReceived(e) => (e.qty, 0),
        E::StockAdjusted(e) => (e.delta, 0),
        E::CycleCounted(e) => (e.delta, 0),
        E::OnHandSet(e) => (e.delta, 0),
        E::TransferShipped(e) => (-e.qty, 0),
        E::IncomingExpected(_) => (0, 0),
        E::TransferInTransit(_) => (0, 0),
        E::TransferReceived(e) => (e.qty, 0),
        E::ReturnReceived(e) => (e.qty, 0),
        E::ReturnWrittenOff(_) => (0, 0),
        E::StockMovedToNonSellable(e) => (-e.qty, 0),
        E::StockMovedToSellable(e) => (e.qty, 0),
        E::SafetyStockSet(_) => (0, 0),
        E::Reserved(e) => (0, e.qty),
        E::ReservationConfirmed(_) => (0, 0),
        E::ReservationReleased(e) => (0, -e.qty),
        E::ReservationExpired(e) => (0, -e.qty),
        E::ReservationConsumed(e) => (-e.qty, -e.qty),
    }
}

fn quantity(event: &StockEvent) -> i64 {
    use StockEvent as E;
    match event {
        E::GoodsReceived(e) => e.qty,
        E::StockAdjusted(e) => e.delta,
        E::CycleCounted(e) => e.counted,
        E::OnHandSet(e) => e.new_on_hand,
        E::TransferShipped(e) => e.qty,
        E::IncomingExpected(e) => e.qty,
        E::TransferInTransit(e) => e.qty,
        E::TransferReceived(e) => e.qty,
        E::ReturnReceived(e) => e.qty,
        E::ReturnWrittenOff(e) => e.qty,
        E::StockMovedToNonSellable(e) => e.qty,
        E::StockMovedToSellable(e) => e.qty,
        E::SafetyStockSet(e) => e.qty,
        E::Reserved(e) => e.qty,
        E::ReservationConfirmed(_) => 0,
        E::ReservationReleased(e) => e.qty,
        E::ReservationExpired(e) => e.qty,
        E::ReservationConsumed(e) => e.qty,
    }
}
