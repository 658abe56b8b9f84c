//! In-process adapters of the returns service's ports ([`ichigen_rma::ports`]): the order
//! service (facts, history, refunds, exchange orders), the inventory (returned units into
//! stock or written off) and the catalog (resale items).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ichigen_inventory::domain::StockCommand;
use ichigen_inventory::handlers::HandlerError;
use ichigen_inventory::InventoryService;
use ichigen_order::catalog_service::CatalogService;
use ichigen_order::domain::catalog::{CatalogCommand, ItemSpec};
use ichigen_order::domain::order::{self, Channel, Order, OrderEvent};
use ichigen_order::domain::sourcing::{Delivery, SourcingError};
use ichigen_order::handlers::order::{
    LineRequest, OrderCredit, PlaceError, PlaceRequest, RefundError,
};
use ichigen_order::ports::InventoryPortError;
use ichigen_order::OrderService;
use ichigen_rma::domain::{OrderFacts, OrderLineFacts};
use ichigen_rma::ports::{
    CatalogPort, ExchangeDelivery, ExchangePlaced, ExchangeRequest, FoundOrder, LocationsPort,
    OrderHistoryEntry, OrdersPort, PortError, ResaleItem, ReturnedUnit, StockPort,
};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::Money;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The order service, as the returns service sees it.
pub struct InProcessOrders(pub OrderService);

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::Unavailable(e.to_string())
}

impl InProcessOrders {
    /// The order folded from its stream, with when each line last had units delivered or
    /// picked up (the event's time: the return windows start there).
    async fn load_with_times(
        &self,
        order_id: Uuid,
    ) -> Result<Option<(Order, BTreeMap<String, DateTime<Utc>>)>, PortError> {
        let events = ichigen_shared::store::read_whole_stream(
            self.0.store.as_ref(),
            &order::stream_name(order_id),
        )
        .await
        .map_err(unavailable)?;
        let mut state = Order::default();
        let mut fulfilled_at = BTreeMap::new();
        for recorded in &events {
            let event = match OrderEvent::decode(&recorded.event_type, &recorded.data) {
                Some(Ok(e)) => e,
                Some(Err(e)) => return Err(unavailable(e)),
                None => continue,
            };
            let before: Vec<i64> = state.lines.iter().map(returnable).collect();
            state.apply(&event);
            for (i, line) in state.lines.iter().enumerate() {
                if returnable(line) > before.get(i).copied().unwrap_or(0) {
                    fulfilled_at.insert(line.line_id.clone(), recorded.metadata.occurred_at);
                }
            }
        }
        Ok(state.exists().then_some((state, fulfilled_at)))
    }
}

/// Units a customer has in hand: delivered, or picked up.
fn returnable(line: &order::LineState) -> i64 {
    line.delivered + line.picked_up
}

fn facts_of(order: &Order, fulfilled_at: &BTreeMap<String, DateTime<Utc>>) -> Option<OrderFacts> {
    let header = order.header.as_ref()?;
    let currency = header.currency;
    let (captured, refunded) = order
        .payment
        .as_ref()
        .map_or((Money::zero(currency), Money::zero(currency)), |p| {
            (p.captured, p.refunded)
        });
    Some(OrderFacts {
        order_id: header.order_id,
        customer_id: header.customer_id.clone(),
        currency,
        lines: order
            .lines
            .iter()
            .map(|l| OrderLineFacts {
                line_id: l.line_id.clone(),
                sku: l.sku.clone(),
                title: l.title.clone(),
                unit_price: l.unit_price,
                fulfilled_qty: returnable(l),
                fulfilled_at: fulfilled_at.get(&l.line_id).copied(),
                already_returned_qty: 0,
            })
            .collect(),
        captured,
        refunded,
    })
}

#[async_trait]
impl OrdersPort for InProcessOrders {
    async fn facts(&self, order_id: Uuid) -> Result<Option<OrderFacts>, PortError> {
        Ok(self
            .load_with_times(order_id)
            .await?
            .and_then(|(order, times)| facts_of(&order, &times)))
    }

    async fn find(&self, order_id: Uuid) -> Result<Option<FoundOrder>, PortError> {
        let Some((order, times)) = self.load_with_times(order_id).await? else {
            return Ok(None);
        };
        let (Some(facts), Some(header)) = (facts_of(&order, &times), order.header.as_ref()) else {
            return Ok(None);
        };
        Ok(Some(FoundOrder {
            placed_at: header.placed_at,
            status: order
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            facts,
        }))
    }

    async fn orders_of_customer(
        &self,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<FoundOrder>, PortError> {
        let (records, _) = self.0.status.by_customer(customer_id, None, limit);
        let mut found = Vec::with_capacity(records.len());
        for record in records {
            // The view has the order, not when its lines were delivered: that is in the
            // stream's event times.
            if let Some(order_id) = record.order.header.as_ref().map(|h| h.order_id) {
                found.extend(self.find(order_id).await?);
            }
        }
        Ok(found)
    }

    async fn history(&self, order_id: Uuid) -> Result<Vec<OrderHistoryEntry>, PortError> {
        Ok(self
            .0
            .status
            .get(order_id)
            .map(|record| {
                record
                    .timeline
                    .iter()
                    .map(|e| OrderHistoryEntry {
                        at: e.occurred_at,
                        event_type: e.event_type.clone(),
                        summary: e.summary.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn refund(
        &self,
        order_id: Uuid,
        operation: &str,
        amount: Money,
        metadata: Metadata,
    ) -> Result<String, PortError> {
        match self
            .0
            .orders
            .refund(order_id, operation, amount, metadata)
            .await
        {
            // The order keeps each operation's provider reference (also for a retry that
            // appended nothing).
            Ok(done) => done
                .order
                .payment
                .as_ref()
                .and_then(|p| p.refund_operations.get(operation))
                .map(|r| r.reference.clone())
                .ok_or_else(|| unavailable("the refund left no provider reference")),
            Err(e) => Err(refund_error(e)),
        }
    }

    async fn refunded_under(
        &self,
        order_id: Uuid,
        operation: &str,
    ) -> Result<Option<Money>, PortError> {
        let (order, _) = self.0.orders.load(order_id).await.map_err(unavailable)?;
        Ok(order
            .payment
            .as_ref()
            .and_then(|p| p.refund_operations.get(operation))
            .map(|r| r.amount))
    }

    async fn place_exchange(
        &self,
        request: ExchangeRequest,
        metadata: Metadata,
    ) -> Result<ExchangePlaced, PortError> {
        let mut lines = Vec::with_capacity(request.lines.len());
        for (i, l) in request.lines.iter().enumerate() {
            let delivery = match &l.delivery {
                ExchangeDelivery::Ship { lat, lon } => Delivery::Ship {
                    lat: *lat,
                    lon: *lon,
                },
                ExchangeDelivery::Pickup { store } => {
                    if store.trim().is_empty() {
                        return Err(PortError::refused(
                            "INVALID_INPUT",
                            Some(&format!("lines.{i}.store")),
                            "PICKUP needs a store",
                        ));
                    }
                    Delivery::Pickup {
                        store: store.clone(),
                    }
                }
            };
            lines.push(LineRequest {
                sku: l.sku.clone(),
                qty: l.qty,
                delivery,
            });
        }
        let place = PlaceRequest {
            customer_id: request.customer_id.clone(),
            channel: Channel::Web,
            lines,
            allow_partial: false,
            idempotency_key: request.idempotency_key.clone(),
            credit: Some(OrderCredit {
                amount: request.credit,
                source: format!("rma:{}", request.rma_id),
            }),
        };
        match self.0.orders.place(place, metadata).await {
            Ok(placed) => {
                let total = placed
                    .order
                    .header
                    .as_ref()
                    .map(|h| h.total)
                    .ok_or_else(|| unavailable("the exchange order has no header"))?;
                Ok(ExchangePlaced {
                    order_id: placed.order_id,
                    total,
                })
            }
            Err(e) => Err(place_error(e)),
        }
    }
}

fn refund_error(e: RefundError) -> PortError {
    if e.is_retryable() || e.code() == "INTERNAL" {
        return unavailable(e);
    }
    PortError::refused(static_code(e.code()), e.field(), e.to_string())
}

/// The shared wire codes a port refusal may carry.
fn static_code(code: &str) -> &'static str {
    match code {
        "NOT_FOUND" => "NOT_FOUND",
        "CONFLICT" => "CONFLICT",
        "INSUFFICIENT_STOCK" => "INSUFFICIENT_STOCK",
        "PAYMENT_DECLINED" => "PAYMENT_DECLINED",
        _ => "INVALID_INPUT",
    }
}

/// A placement refusal, its field under the exchange's `lines`.
fn place_error(e: PlaceError) -> PortError {
    let message = e.to_string();
    match e {
        PlaceError::Order(o) => {
            let field = o.field().map(str::to_owned);
            PortError::Refused {
                code: static_code(o.code()),
                field,
                message,
            }
        }
        PlaceError::Catalog { index, .. } => {
            PortError::refused("NOT_FOUND", Some(&format!("lines.{index}.sku")), message)
        }
        PlaceError::Sourcing(SourcingError::Shortage { lines })
            if lines.iter().any(|l| !l.full_locations.is_empty()) =>
        {
            PortError::refused("CAPACITY_EXHAUSTED", Some("lines"), message)
        }
        PlaceError::Inventory(InventoryPortError::CapacityExhausted(_)) => {
            PortError::refused("CAPACITY_EXHAUSTED", Some("lines"), message)
        }
        PlaceError::Sourcing(SourcingError::Shortage { .. })
        | PlaceError::Inventory(InventoryPortError::Refused(_)) => {
            PortError::refused("INSUFFICIENT_STOCK", Some("lines"), message)
        }
        PlaceError::Sourcing(_) => PortError::refused("INVALID_INPUT", Some("lines"), message),
        PlaceError::Payment(p) if p.code() == "PAYMENT_DECLINED" => {
            PortError::refused("PAYMENT_DECLINED", None, message)
        }
        other => unavailable(other),
    }
}

/// The inventory, as the returns service sees it.
pub struct InProcessStock(pub InventoryService);

fn stock_error(e: HandlerError) -> PortError {
    match e.refusal() {
        Some(refusal) => PortError::refused(
            static_code(refusal.code()),
            refusal.field(),
            refusal.to_string(),
        ),
        None => unavailable(e),
    }
}

#[async_trait]
impl StockPort for InProcessStock {
    async fn receive(&self, unit: &ReturnedUnit, metadata: Metadata) -> Result<(), PortError> {
        let command = StockCommand::ReceiveReturn {
            qty: 1,
            rma_id: unit.rma_id.to_string(),
            key: unit.key.clone(),
        };
        self.0
            .stock
            .execute(&unit.sku, &unit.location, vec![command], metadata)
            .await
            .map(|_| ())
            .map_err(stock_error)
    }

    async fn write_off(
        &self,
        unit: &ReturnedUnit,
        disposition: &str,
        reason: &str,
        metadata: Metadata,
    ) -> Result<(), PortError> {
        let command = StockCommand::WriteOffReturn {
            qty: 1,
            rma_id: unit.rma_id.to_string(),
            key: unit.key.clone(),
            disposition: disposition.to_owned(),
            reason: reason.to_owned(),
        };
        self.0
            .stock
            .execute(&unit.sku, &unit.location, vec![command], metadata)
            .await
            .map(|_| ())
            .map_err(stock_error)
    }
}

/// The catalog, as the returns service sees it.
pub struct InProcessCatalog(pub CatalogService);

#[async_trait]
impl CatalogPort for InProcessCatalog {
    async fn ensure_resale_item(
        &self,
        item: &ResaleItem,
        metadata: Metadata,
    ) -> Result<(), PortError> {
        let existing = self
            .0
            .handlers
            .load(&item.resale_sku)
            .await
            .map_err(unavailable)?;
        if existing.is_some() {
            return Ok(());
        }
        let attributes = BTreeMap::from([
            ("condition".to_owned(), "RESALE".to_owned()),
            ("resaleGrade".to_owned(), item.grade_code.clone()),
            ("originalSku".to_owned(), item.original_sku.clone()),
        ]);
        let command = CatalogCommand::Upsert(ItemSpec {
            title: item.title.clone(),
            price: item.price,
            attributes,
            active: true,
        });
        let accepted = self
            .0
            .handlers
            .execute(&item.resale_sku, command, metadata)
            .await
            .map_err(unavailable)?;
        // Orders price from the catalog view: make sure it has the item before the unit
        // becomes available.
        self.0
            .wait_for(accepted.position)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The inventory's locations, as the returns service sees them.
pub struct InProcessLocations(pub InventoryService);

impl LocationsPort for InProcessLocations {
    fn takes_returns(&self, code: &str) -> Option<bool> {
        let location = self.0.view.location(code)?;
        Some(
            location.active
                && location
                    .spec
                    .capabilities
                    .contains(&ichigen_inventory::domain::Capability::Returns),
        )
    }
}
