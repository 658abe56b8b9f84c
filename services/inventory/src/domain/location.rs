//! The location aggregate: a DC or a store, stream `location-<CODE>`.
//!
//! Locations are reference data every stock decision leans on (is it active, can it ship, how
//! long does it hold pickups), so their rules live here rather than in the GraphQL resolvers:
//! whatever the entry point, a location that was stored is a valid one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::InventoryError;

/// The stream of one location.
pub fn location_stream_name(code: &str) -> String {
    format!("location-{code}")
}

/// Distribution centre or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LocationKind {
    Dc,
    Store,
}

/// What a location can do for orders.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    Ship,
    Pickup,
    ShipFromStore,
    Returns,
    Resale,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// Everything that describes a location (all of it is set at definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationSpec {
    pub code: String,
    pub name: String,
    pub kind: LocationKind,
    pub address: Address,
    pub lat: f64,
    pub lon: f64,
    /// IANA name known to the tz database, e.g. `Asia/Tokyo`: daily capacity and pickup hold
    /// days are counted in its local days.
    pub time_zone: String,
    pub capabilities: BTreeSet<Capability>,
    pub pickup_hold_days: i64,
    /// Orders the location takes per local day (each placement claims one unit of it);
    /// `None` = unlimited, `Some(0)` = it takes no orders. Events stored before capacity was
    /// optional always carry a number (their `0` kept its meaning: no orders).
    #[serde(default)]
    pub daily_capacity: Option<i64>,
}

/// A partial update: only the fields present change. The code never changes (it names the
/// stream and every stock stream of the location).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<LocationKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<BTreeSet<Capability>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_hold_days: Option<i64>,
    /// `Some(None)` makes the capacity unlimited again (`null` in the event).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub daily_capacity: Option<Option<i64>>,
}

/// A field that is present: `null` is `Some(None)`, a value `Some(Some(v))` (absent is `None`
/// through `serde(default)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl LocationPatch {
    /// `spec` with the present fields replaced.
    fn applied_to(&self, spec: &LocationSpec) -> LocationSpec {
        let mut s = spec.clone();
        if let Some(v) = &self.name {
            s.name = v.clone();
        }
        if let Some(v) = self.kind {
            s.kind = v;
        }
        if let Some(v) = &self.address {
            s.address = v.clone();
        }
        if let Some(v) = self.lat {
            s.lat = v;
        }
        if let Some(v) = self.lon {
            s.lon = v;
        }
        if let Some(v) = &self.time_zone {
            s.time_zone = v.clone();
        }
        if let Some(v) = &self.capabilities {
            s.capabilities = v.clone();
        }
        if let Some(v) = self.pickup_hold_days {
            s.pickup_hold_days = v;
        }
        if let Some(v) = self.daily_capacity {
            s.daily_capacity = v;
        }
        s
    }

    /// Only the fields that differ between `old` and `new`, so the event says what changed.
    fn diff(old: &LocationSpec, new: &LocationSpec) -> LocationPatch {
        fn changed<T: PartialEq + Clone>(a: &T, b: &T) -> Option<T> {
            (a != b).then(|| b.clone())
        }
        LocationPatch {
            name: changed(&old.name, &new.name),
            kind: changed(&old.kind, &new.kind),
            address: changed(&old.address, &new.address),
            lat: changed(&old.lat, &new.lat),
            lon: changed(&old.lon, &new.lon),
            time_zone: changed(&old.time_zone, &new.time_zone),
            capabilities: changed(&old.capabilities, &new.capabilities),
            pickup_hold_days: changed(&old.pickup_hold_days, &new.pickup_hold_days),
            daily_capacity: changed(&old.daily_capacity, &new.daily_capacity),
        }
    }

    fn is_empty(&self) -> bool {
        *self == LocationPatch::default()
    }
}

/// A defined location.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub spec: LocationSpec,
    /// Inactive locations keep their stock history but take no movements or reservations.
    pub active: bool,
}

/// The folded state of a location stream (`None` until defined).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocationState {
    pub location: Option<Location>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LocationCommand {
    Define(LocationSpec),
    Update { code: String, patch: LocationPatch },
    Deactivate { code: String },
    Activate { code: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationDefined {
    #[serde(flatten)]
    pub spec: LocationSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationUpdated {
    pub code: String,
    #[serde(flatten)]
    pub changes: LocationPatch,
}

/// The location takes no stock movements and no new reservations from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationDeactivated {
    pub code: String,
}

/// The location takes stock movements and reservations again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationActivated {
    pub code: String,
}

/// Every event of a location stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum LocationEvent {
    #[serde(rename = "LocationDefined.v1")]
    LocationDefined(LocationDefined),
    #[serde(rename = "LocationUpdated.v1")]
    LocationUpdated(LocationUpdated),
    #[serde(rename = "LocationDeactivated.v1")]
    LocationDeactivated(LocationDeactivated),
    #[serde(rename = "LocationActivated.v1")]
    LocationActivated(LocationActivated),
}

impl LocationEvent {
    /// The versioned event type stored next to the payload.
    pub fn event_type(&self) -> &'static str {
        match self {
            LocationEvent::LocationDefined(_) => "LocationDefined.v1",
            LocationEvent::LocationUpdated(_) => "LocationUpdated.v1",
            LocationEvent::LocationDeactivated(_) => "LocationDeactivated.v1",
            LocationEvent::LocationActivated(_) => "LocationActivated.v1",
        }
    }

    /// The payload as stored in the event's data (camelCase JSON).
    pub fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            LocationEvent::LocationDefined(p) => serde_json::to_vec(p),
            LocationEvent::LocationUpdated(p) => serde_json::to_vec(p),
            LocationEvent::LocationDeactivated(p) => serde_json::to_vec(p),
            LocationEvent::LocationActivated(p) => serde_json::to_vec(p),
        }
    }

    /// Reads a stored event back; `None` for a type this aggregate does not know.
    pub fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
        Some(match event_type {
            "LocationDefined.v1" => serde_json::from_slice(data).map(Self::LocationDefined),
            "LocationUpdated.v1" => serde_json::from_slice(data).map(Self::LocationUpdated),
            "LocationDeactivated.v1" => serde_json::from_slice(data).map(Self::LocationDeactivated),
            "LocationActivated.v1" => serde_json::from_slice(data).map(Self::LocationActivated),
            _ => return None,
        })
    }
}

impl LocationState {
    pub fn apply(&mut self, event: &LocationEvent) {
        match event {
            LocationEvent::LocationDefined(e) => {
                self.location = Some(Location {
                    spec: e.spec.clone(),
                    active: true,
                })
            }
            LocationEvent::LocationUpdated(e) => {
                if let Some(l) = &mut self.location {
                    l.spec = e.changes.applied_to(&l.spec);
                }
            }
            LocationEvent::LocationDeactivated(_) => {
                if let Some(l) = &mut self.location {
                    l.active = false;
                }
            }
            LocationEvent::LocationActivated(_) => {
                if let Some(l) = &mut self.location {
                    l.active = true;
                }
            }
        }
    }
}

/// Decides a location command. Deactivating an inactive location, activating an active one
/// and an update that changes nothing are retries: `Ok(vec![])`.
pub fn decide_location(
    state: &LocationState,
    command: &LocationCommand,
) -> Result<Vec<LocationEvent>, InventoryError> {
    let existing = |code: &str| {
        state
            .location
            .as_ref()
            .ok_or_else(|| InventoryError::UnknownLocation {
                code: code.to_owned(),
            })
    };
    match command {
        LocationCommand::Define(spec) => {
            validate_spec(spec)?;
            if state.location.is_some() {
                return Err(InventoryError::LocationExists {
                    code: spec.code.clone(),
                });
            }
            Ok(vec![LocationEvent::LocationDefined(LocationDefined {
                spec: spec.clone(),
            })])
        }
        LocationCommand::Update { code, patch } => {
            let location = existing(code)?;
            // Validate the merged result: rules that span fields (a DC cannot ship from store)
            // must hold whichever fields the patch touches.
            let updated = patch.applied_to(&location.spec);
            validate_spec(&updated)?;
            let changes = LocationPatch::diff(&location.spec, &updated);
            if changes.is_empty() {
                return Ok(vec![]);
            }
            Ok(vec![LocationEvent::LocationUpdated(LocationUpdated {
                code: code.clone(),
                changes,
            })])
        }
        LocationCommand::Deactivate { code } => Ok(if existing(code)?.active {
            vec![LocationEvent::LocationDeactivated(LocationDeactivated {
                code: code.clone(),
            })]
        } else {
            vec![]
        }),
        LocationCommand::Activate { code } => Ok(if existing(code)?.active {
            vec![]
        } else {
            vec![LocationEvent::LocationActivated(LocationActivated {
                code: code.clone(),
            })]
        }),
    }
}

fn invalid(field: &'static str, reason: &'static str) -> InventoryError {
    InventoryError::InvalidLocation { field, reason }
}

/// The one text rule ([`ichigen_shared::validate::check_text`]) for a location field.
fn required(field: &'static str, value: &str, max: usize) -> Result<(), InventoryError> {
    ichigen_shared::validate::check_text(value, max).map_err(|reason| invalid(field, reason))
}

/// A location code: the one text rule, then 1–32 characters of `[A-Z0-9_-]` (it is part of
/// stream names).
pub fn validate_code(code: &str) -> Result<(), InventoryError> {
    required("code", code, 32)?;
    if !code
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(invalid("code", "may contain only A-Z, 0-9, '_' and '-'"));
    }
    Ok(())
}

/// A zone the embedded tz database knows (`UTC`, `Asia/Tokyo`,
/// `America/Argentina/Buenos_Aires`; [`ichigen_shared::local_day::time_zone`]): capacity and
/// pickup days are counted in it, so a name it does not know is refused.
fn validate_time_zone(tz: &str) -> Result<(), InventoryError> {
    required("timeZone", tz, 64)?;
    match ichigen_shared::local_day::time_zone(tz) {
        Some(_) => Ok(()),
        None => Err(invalid(
            "timeZone",
            "must be an IANA time zone name (e.g. Asia/Tokyo)",
        )),
    }
}

impl LocationSpec {
    /// The location's time zone. Validated on definition; a stored name the database does not
    /// know (not possible through `decide_location`) counts as UTC.
    pub fn tz(&self) -> ichigen_shared::local_day::Tz {
        ichigen_shared::local_day::time_zone(&self.time_zone)
            .unwrap_or(ichigen_shared::local_day::Tz::UTC)
    }

    /// The location's local date at `at`: the day its capacity is counted for.
    pub fn local_date(&self, at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        ichigen_shared::local_day::local_date(self.tz(), at)
    }
}

fn validate_spec(spec: &LocationSpec) -> Result<(), InventoryError> {
    validate_code(&spec.code)?;
    required("name", &spec.name, 200)?;
    required("address.line1", &spec.address.line1, 200)?;
    required("address.city", &spec.address.city, 100)?;
    required("address.postalCode", &spec.address.postal_code, 20)?;
    let country = &spec.address.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            "address.country",
            "must be an ISO 3166-1 alpha-2 code",
        ));
    }
    if !(spec.lat.is_finite() && (-90.0..=90.0).contains(&spec.lat)) {
        return Err(invalid("lat", "must be between -90 and 90"));
    }
    if !(spec.lon.is_finite() && (-180.0..=180.0).contains(&spec.lon)) {
        return Err(invalid("lon", "must be between -180 and 180"));
    }
    validate_time_zone(&spec.time_zone)?;
    if spec.kind == LocationKind::Dc && spec.capabilities.contains(&Capability::ShipFromStore) {
        return Err(invalid("capabilities", "a DC cannot ship from store"));
    }
    if !(1..=30).contains(&spec.pickup_hold_days) {
        return Err(invalid("pickupHoldDays", "must be between 1 and 30"));
    }
    if spec.daily_capacity.is_some_and(|c| c < 0) {
        return Err(invalid("dailyCapacity", "must not be negative"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LocationSpec {
        LocationSpec {
            code: "STORE-07".into(),
            name: "Shibuya".into(),
            kind: LocationKind::Store,
            address: Address {
                line1: "1-2-3 Jinnan".into(),
                city: "Tokyo".into(),
                postal_code: "150-0041".into(),
                country: "JP".into(),
            },
            lat: 35.66,
            lon: 139.70,
            time_zone: "Asia/Tokyo".into(),
            capabilities: [Capability::Pickup, Capability::ShipFromStore]
                .into_iter()
                .collect(),
            pickup_hold_days: 7,
            daily_capacity: Some(50),
        }
    }

    fn defined() -> LocationState {
        let mut s = LocationState::default();
        for e in decide_location(&s, &LocationCommand::Define(spec())).unwrap() {
            s.apply(&e);
        }
        s
    }

    fn define_err(f: impl FnOnce(&mut LocationSpec)) -> Option<&'static str> {
        let mut s = spec();
        f(&mut s);
        let e =
            decide_location(&LocationState::default(), &LocationCommand::Define(s)).unwrap_err();
        assert_eq!(e.code(), "INVALID_INPUT");
        e.field()
    }

    #[test]
    fn define_then_exists() {
        let s = defined();
        let l = s.location.as_ref().unwrap();
        assert!(l.active);
        assert_eq!(l.spec, spec());
        assert_eq!(location_stream_name("STORE-07"), "location-STORE-07");
        let e = decide_location(&s, &LocationCommand::Define(spec())).unwrap_err();
        assert!(matches!(e, InventoryError::LocationExists { .. }));
        assert_eq!(e.code(), "CONFLICT");
    }

    #[test]
    fn define_rejects_bad_fields() {
        assert_eq!(define_err(|s| s.code = "".into()), Some("code"));
        assert_eq!(define_err(|s| s.code = "store-7".into()), Some("code"));
        assert_eq!(define_err(|s| s.code = "A".repeat(33)), Some("code"));
        assert_eq!(define_err(|s| s.name = "  ".into()), Some("name"));
        assert_eq!(
            define_err(|s| s.address.line1 = "".into()),
            Some("address.line1")
        );
        assert_eq!(
            define_err(|s| s.address.city = "".into()),
            Some("address.city")
        );
        assert_eq!(
            define_err(|s| s.address.postal_code = "".into()),
            Some("address.postalCode")
        );
        assert_eq!(
            define_err(|s| s.address.country = "jp".into()),
            Some("address.country")
        );
        assert_eq!(
            define_err(|s| s.address.country = "JPN".into()),
            Some("address.country")
        );
        assert_eq!(define_err(|s| s.lat = 90.5), Some("lat"));
        assert_eq!(define_err(|s| s.lat = f64::NAN), Some("lat"));
        assert_eq!(define_err(|s| s.lon = -180.1), Some("lon"));
        assert_eq!(define_err(|s| s.time_zone = "".into()), Some("timeZone"));
        assert_eq!(
            define_err(|s| s.time_zone = "Tokyo time".into()),
            Some("timeZone")
        );
        assert_eq!(
            define_err(|s| s.time_zone = "Tokyo".into()),
            Some("timeZone")
        );
        assert_eq!(
            define_err(|s| s.pickup_hold_days = 0),
            Some("pickupHoldDays")
        );
        assert_eq!(
            define_err(|s| s.pickup_hold_days = 31),
            Some("pickupHoldDays")
        );
        assert_eq!(
            define_err(|s| s.daily_capacity = Some(-1)),
            Some("dailyCapacity")
        );
        assert_eq!(
            define_err(|s| s.time_zone = "Asia/Tokio".into()),
            Some("timeZone")
        );
        assert_eq!(
            define_err(|s| s.time_zone = "Mars/Olympus".into()),
            Some("timeZone")
        );
        assert_eq!(
            define_err(|s| s.name = "Shibuya\nStore".into()),
            Some("name")
        );
        assert_eq!(define_err(|s| s.name = "x".repeat(201)), Some("name"));
        assert_eq!(
            define_err(|s| s.kind = LocationKind::Dc),
            Some("capabilities")
        );
    }

    #[test]
    fn update_records_only_changes() {
        let mut s = defined();
        let cmd = LocationCommand::Update {
            code: "STORE-07".into(),
            patch: LocationPatch {
                name: Some("Shibuya flagship".into()),
                daily_capacity: Some(Some(50)), // unchanged: not in the event
                ..Default::default()
            },
        };
        let events = decide_location(&s, &cmd).unwrap();
        let LocationEvent::LocationUpdated(u) = &events[0] else {
            panic!("expected an update: {events:?}")
        };
        assert_eq!(u.changes.name.as_deref(), Some("Shibuya flagship"));
        assert_eq!(u.changes.daily_capacity, None);
        s.apply(&events[0]);
        assert_eq!(s.location.as_ref().unwrap().spec.name, "Shibuya flagship");
        // Same update again changes nothing.
        assert_eq!(decide_location(&s, &cmd).unwrap(), vec![]);
    }

    #[test]
    fn update_validates_merged_result_and_needs_location() {
        let s = defined();
        let e = decide_location(
            &s,
            &LocationCommand::Update {
                code: "STORE-07".into(),
                patch: LocationPatch {
                    kind: Some(LocationKind::Dc),
                    ..Default::default()
                },
            },
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("capabilities"));
        let e = decide_location(
            &s,
            &LocationCommand::Update {
                code: "STORE-07".into(),
                patch: LocationPatch {
                    pickup_hold_days: Some(0),
                    ..Default::default()
                },
            },
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("pickupHoldDays"));
        let e = decide_location(
            &LocationState::default(),
            &LocationCommand::Update {
                code: "X".into(),
                patch: LocationPatch::default(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, InventoryError::UnknownLocation { .. }));
        assert_eq!(e.code(), "NOT_FOUND");
    }

    #[test]
    fn deactivate_activate_idempotent() {
        let mut s = defined();
        let code = "STORE-07".to_string();
        let off = LocationCommand::Deactivate { code: code.clone() };
        let on = LocationCommand::Activate { code: code.clone() };
        assert_eq!(decide_location(&s, &on).unwrap(), vec![]);
        let events = decide_location(&s, &off).unwrap();
        assert_eq!(events[0].event_type(), "LocationDeactivated.v1");
        s.apply(&events[0]);
        assert!(!s.location.as_ref().unwrap().active);
        assert_eq!(decide_location(&s, &off).unwrap(), vec![]);
        let events = decide_location(&s, &on).unwrap();
        assert_eq!(events[0].event_type(), "LocationActivated.v1");
        s.apply(&events[0]);
        assert!(s.location.as_ref().unwrap().active);
        let e = decide_location(&LocationState::default(), &off).unwrap_err();
        assert!(matches!(e, InventoryError::UnknownLocation { .. }));
    }

    #[test]
    fn capacity_is_optional_and_old_events_keep_their_number() {
        // Defined before capacity was optional: the number it had (0 took no orders).
        let mut old = serde_json::to_value(LocationDefined { spec: spec() }).unwrap();
        old["dailyCapacity"] = serde_json::json!(0);
        let back: LocationDefined = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(back.spec.daily_capacity, Some(0));
        // Defined without one: unlimited.
        old.as_object_mut().unwrap().remove("dailyCapacity");
        let back: LocationDefined = serde_json::from_value(old).unwrap();
        assert_eq!(back.spec.daily_capacity, None);
        // An update: a number sets it, null makes it unlimited, absent leaves it.
        let update = |json: &str| -> LocationPatch { serde_json::from_str(json).unwrap() };
        assert_eq!(
            update(r#"{"dailyCapacity":5}"#).daily_capacity,
            Some(Some(5))
        );
        assert_eq!(
            update(r#"{"dailyCapacity":null}"#).daily_capacity,
            Some(None)
        );
        assert_eq!(update(r#"{"name":"x"}"#).daily_capacity, None);
        let mut s = defined();
        let cmd = LocationCommand::Update {
            code: "STORE-07".into(),
            patch: LocationPatch {
                daily_capacity: Some(None),
                ..Default::default()
            },
        };
        let events = decide_location(&s, &cmd).unwrap();
        let json = serde_json::to_string(&events[0]).unwrap();
        assert!(json.contains(r#""dailyCapacity":null"#), "{json}");
        s.apply(&serde_json::from_str(&json).unwrap());
        assert_eq!(s.location.unwrap().spec.daily_capacity, None);
    }

    #[test]
    fn events_round_trip() {
        let events = vec![
            LocationEvent::LocationDefined(LocationDefined { spec: spec() }),
            LocationEvent::LocationUpdated(LocationUpdated {
                code: "STORE-07".into(),
                changes: LocationPatch {
                    lat: Some(1.5),
                    capabilities: Some(BTreeSet::from([Capability::Resale])),
                    ..Default::default()
                },
            }),
            LocationEvent::LocationDeactivated(LocationDeactivated {
                code: "STORE-07".into(),
            }),
            LocationEvent::LocationActivated(LocationActivated {
                code: "STORE-07".into(),
            }),
        ];
        for e in events {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<LocationEvent>(&json).unwrap(), e);
            let data = e.payload_json().unwrap();
            let back = LocationEvent::decode(e.event_type(), &data)
                .unwrap()
                .unwrap();
            assert_eq!(back, e);
        }
        let data = LocationEvent::LocationDefined(LocationDefined { spec: spec() })
            .payload_json()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(v["pickupHoldDays"], 7);
        assert_eq!(v["kind"], "STORE");
        assert_eq!(v["address"]["postalCode"], "150-0041");
        assert!(LocationEvent::decode("Nope.v1", b"{}").is_none());
    }
}
