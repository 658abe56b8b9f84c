//! The demo data set `make run` starts with: two DCs and four stores around Tokyo and Osaka,
//! and stock for a small apparel catalogue, so that GraphiQL has something to show at once.
//!
//! Seeded through the same handlers as real traffic (so every event is a real, valid one), and
//! only into a store that has no locations yet: restarting `make run` does not seed twice.

use ichigen_inventory::domain::{
    Address, Capability, LocationCommand, LocationKind, LocationSpec, StockCommand,
};
use ichigen_inventory::handlers::HandlerError;
use ichigen_inventory::InventoryService;
use ichigen_order::domain::catalog::{CatalogCommand, ItemSpec};
use ichigen_order::handlers::catalog::CatalogHandlerError;
use ichigen_order::OrderService;
use ichigen_shared::auth::Actor;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::Money;
use std::collections::BTreeSet;
use std::time::Duration;

/// (code, name, kind, city, postal code, lat, lon, capabilities)
type DemoLocation = (
    &'static str,
    &'static str,
    LocationKind,
    &'static str,
    &'static str,
    f64,
    f64,
    &'static [Capability],
);

const LOCATIONS: &[DemoLocation] = {
    use Capability::*;
    use LocationKind::*;
    &[
        (
            "TKY-DC1",
            "Tokyo DC (Ichikawa)",
            Dc,
            "Ichikawa",
            "272-0002",
            35.6983,
            139.9320,
            &[Ship, Returns],
        ),
        (
            "OSA-DC1",
            "Osaka DC (Suminoe)",
            Dc,
            "Osaka",
            "559-0034",
            34.6167,
            135.4460,
            &[Ship, Returns],
        ),
        (
            "TKY-SHIBUYA",
            "Shibuya store",
            Store,
            "Tokyo",
            "150-0042",
            35.6595,
            139.7005,
            &[Pickup, ShipFromStore, Returns, Resale],
        ),
        (
            "TKY-SHINJUKU",
            "Shinjuku store",
            Store,
            "Tokyo",
            "160-0022",
            35.6909,
            139.7003,
            &[Pickup, Returns],
        ),
        (
            "YOK-MINATOMIRAI",
            "Minatomirai store",
            Store,
            "Yokohama",
            "220-0012",
            35.4564,
            139.6317,
            &[Pickup, ShipFromStore, Returns],
        ),
        (
            "OSA-UMEDA",
            "Umeda store",
            Store,
            "Osaka",
            "530-0001",
            34.7025,
            135.4959,
            &[Pickup, Returns, Resale],
        ),
    ]
};

/// (product, title, price in JPY)
const PRODUCTS: &[(&str, &str, &str)] = &[
    ("TEE", "Organic cotton tee", "1990"),
    ("OXFORD", "Oxford shirt", "3990"),
    ("CHINO", "Slim chinos", "4990"),
    ("DENIM", "Selvedge denim", "7990"),
    ("KNIT", "Merino crew knit", "5990"),
    ("PARKA", "Light down parka", "9990"),
];

/// Why the demo data set could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Inventory(#[from] HandlerError),
    #[error(transparent)]
    Catalog(#[from] CatalogHandlerError),
    #[error("bad demo price: {0}")]
    Price(String),
}
const SIZES: &[&str] = &["S", "M", "L"];

/// Seeds the demo data set unless locations exist already. Returns what it did, for the log.
pub async fn seed(
    inventory: &InventoryService,
    orders: &OrderService,
) -> Result<String, DemoError> {
    // The view must have replayed the store before "no locations" means an empty store.
    if let Err(e) = inventory.view_handle.wait_caught_up().await {
        tracing::warn!(error = %e, "inventory view did not catch up; not seeding");
        return Ok("skipped (inventory view not caught up)".into());
    }
    if !inventory.view.locations().is_empty() {
        return Ok("skipped (the store already has locations)".into());
    }
    let metadata = || Metadata::new(Actor::system("demo-seed"));
    for &(code, name, kind, city, postal_code, lat, lon, capabilities) in LOCATIONS {
        let spec = LocationSpec {
            code: code.into(),
            name: name.into(),
            kind,
            address: Address {
                line1: "1-1-1".into(),
                city: city.into(),
                postal_code: postal_code.into(),
                country: "JP".into(),
            },
            lat,
            lon,
            time_zone: "Asia/Tokyo".into(),
            capabilities: capabilities.iter().copied().collect::<BTreeSet<_>>(),
            pickup_hold_days: 7,
            daily_capacity: Some(if kind == LocationKind::Dc { 5000 } else { 200 }),
        };
        inventory
            .locations
            .execute(LocationCommand::Define(spec), metadata())
            .await?;
    }
    let mut receipts = 0usize;
    let mut last = None;
    for (p, (product, title, price)) in PRODUCTS.iter().enumerate() {
        for (s, size) in SIZES.iter().enumerate() {
            let sku = format!("{product}-{size}");
            let price = Money::parse(price, "JPY").map_err(|e| DemoError::Price(e.to_string()))?;
            orders
                .catalog
                .handlers
                .execute(
                    &sku,
                    CatalogCommand::Upsert(ItemSpec {
                        title: format!("{title} ({size})"),
                        price,
                        attributes: [("size".to_string(), size.to_string())].into(),
                        active: true,
                    }),
                    metadata(),
                )
                .await?;
            for (l, location) in LOCATIONS.iter().enumerate() {
                // Deterministic, uneven quantities; some stores are out of some sizes.
                let qty = ((p * 7 + s * 5 + l * 3) % 11) as i64 * if l < 2 { 40 } else { 3 };
                if qty == 0 {
                    continue;
                }
                let accepted = inventory
                    .stock
                    .execute(
                        &sku,
                        location.0,
                        vec![StockCommand::ReceiveGoods {
                            qty,
                            reference: Some("DEMO-ASN-1".into()),
                        }],
                        metadata(),
                    )
                    .await?;
                last = accepted.position.or(last);
                receipts += 1;
            }
        }
    }
    // So that the first query after start already sees the demo stock.
    if let Err(e) = inventory
        .view_handle
        .wait_for(last.unwrap_or_default(), Duration::from_secs(10))
        .await
    {
        tracing::warn!(error = %e, "inventory view is behind the demo data");
    }
    Ok(format!(
        "{} locations, {receipts} stock receipts and catalog prices for {} SKUs",
        LOCATIONS.len(),
        PRODUCTS.len() * SIZES.len()
    ))
}
