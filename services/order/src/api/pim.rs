//! The PIM items: request bodies, their catalog commands, execution item by item, and the JSON
//! answers.
//!
//! Every request, single or bulk, becomes a [`Plan`] of lines; a line is one upsert of one SKU
//! and stands on its own (a refused item does not undo its neighbours). Items of the same SKU
//! run one after the other in request order; different SKUs run concurrently
//! ([`ichigen_shared::http::bulk`]). A store failure whose outcome is unknown fails the whole
//! request unrecorded, and its retry recovers: an item whose events are already in its stream
//! (tagged with the line's causation id) is reported from there, with the item as it stood
//! right after them, and every other item runs now.

use crate::catalog_service::CatalogService;
use crate::domain::catalog::{
    stream_name, validate_sku, CatalogCommand, CatalogError, CatalogEvent, CatalogItem,
    CatalogState, ItemSpec,
};
use crate::handlers::catalog::CatalogHandlerError;
use ichigen_shared::aggregate::FoldError;
use ichigen_shared::http::bulk::{bulk_answer, recover_lines, run_lines, LineOutcome};
use ichigen_shared::http::idempotency::{Execution, KeyStreams};
use ichigen_shared::http::{Answer, Caller, LineError, Problem, Refusal};
use ichigen_shared::money::Money;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Most items one bulk request may carry.
pub const MAX_BULK_ITEMS: usize = 20_000;
/// SKUs worked on at once by one bulk request.
pub const CONCURRENCY: usize = 256;

/// The stream category of PIM idempotency keys (owned by the order service).
pub const CATEGORY: &str = "pimrequest";

/// The PIM API's key streams (the event type names are stored: they never change).
pub static PIM: KeyStreams = KeyStreams {
    category: CATEGORY,
    started: "PimRequestStarted.v1",
    response_part: "PimRequestResponsePart.v1",
    completed: "PimRequestCompleted.v1",
    api: "PIM",
    stream_pattern: "pimrequest-<key>",
};

impl Refusal for CatalogError {
    fn code(&self) -> &'static str {
        CatalogError::code(self)
    }

    fn field(&self) -> Option<&'static str> {
        CatalogError::field(self)
    }
}

fn active_by_default() -> bool {
    true
}

/// The body of `PUT /items/{sku}`: the whole item (absolute).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    pub title: String,
    pub price: Money,
    /// Omitted = no attributes (an upsert is absolute).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Omitted = on sale.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

impl ItemBody {
    pub fn into_line(self, sku: String) -> Line {
        Line {
            sku,
            spec: ItemSpec {
                title: self.title,
                price: self.price,
                attributes: self.attributes,
                active: self.active,
            },
        }
    }
}

/// One entry of `POST /items/bulk`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkItem {
    pub sku: String,
    #[serde(flatten)]
    pub item: ItemBody,
}

/// One upsert of one SKU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub spec: ItemSpec,
}

/// Single upsert or bulk: the shape of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Single,
    Bulk,
}

/// What a request asks for, item by item, in request order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub shape: Shape,
    pub lines: Vec<Result<Line, LineError>>,
}

/// An item as the API spells it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemAnswer {
    pub sku: String,
    pub title: String,
    pub price: Money,
    pub attributes: BTreeMap<String, String>,
    pub active: bool,
}

impl From<CatalogItem> for ItemAnswer {
    fn from(i: CatalogItem) -> Self {
        ItemAnswer {
            sku: i.sku,
            title: i.title,
            price: i.price,
            attributes: i.attributes,
            active: i.active,
        }
    }
}

/// What an accepted item reports.
#[derive(Clone, Debug, Serialize)]
struct ItemDetail {
    item: ItemAnswer,
}

type Outcome = LineOutcome<ItemDetail>;

/// A single upsert's success.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpsertBody {
    item: ItemAnswer,
    /// Pass as `atLeast` to a read to see this write; `null` when nothing changed.
    position: Option<String>,
}

/// A bulk body's entries as a plan; a malformed entry is that line's error.
pub(crate) fn bulk_plan(values: Vec<serde_json::Value>) -> Plan {
    let lines = values
        .into_iter()
        .map(|value| {
            serde_json::from_value::<BulkItem>(value)
                .map(|b| b.item.into_line(b.sku))
                .map_err(|e| LineError::malformed(&e))
        })
        .collect();
    Plan {
        shape: Shape::Bulk,
        lines,
    }
}

fn internal(caller: &Caller, error: &dyn std::fmt::Display, status: u16) -> Problem {
    caller.unrecorded("PIM", error, status)
}

/// Executes `plan` and renders its answer (see the module docs for recovery).
pub(crate) async fn execute(
    service: &CatalogService,
    plan: &Plan,
    caller: &Caller,
    execution: Execution,
) -> Result<Answer, Problem> {
    let request = execution.request;
    let applied = if execution.recover {
        recover_lines(
            &service.store,
            &PIM,
            request,
            &plan.lines,
            |line: &Line| {
                validate_sku(&line.sku)
                    .is_ok()
                    .then(|| stream_name(&line.sku))
            },
            CatalogEvent::decode,
            CatalogState::apply,
            |state: &CatalogState| state.item.clone(),
        )
        .await
        .map_err(|e| match e {
            FoldError::Store(_) => internal(caller, &e, 503),
            FoldError::Unreadable { .. } => internal(caller, &e, 500),
        })?
        .into_iter()
        .filter_map(|(index, outcome)| match outcome {
            LineOutcome::Accepted {
                detail: Some(item),
                position,
            } => Some((
                index,
                Outcome::Accepted {
                    detail: ItemDetail { item: item.into() },
                    position,
                },
            )),
            _ => None,
        })
        .collect()
    } else {
        HashMap::new()
    };
    let outcomes = run_lines(
        &plan.lines,
        |line| line.sku.as_str(),
        &applied,
        CONCURRENCY,
        |index, line| run_line(service, line, caller, request, index),
    )
    .await?;
    render(plan, outcomes).map_err(|e| internal(caller, &e, 500))
}

async fn run_line(
    service: &CatalogService,
    line: &Line,
    caller: &Caller,
    request: Uuid,
    index: usize,
) -> Result<Outcome, Problem> {
    let metadata = caller.metadata(PIM.line_causation_id(request, index), service.clock.now());
    match service
        .handlers
        .execute(
            &line.sku,
            CatalogCommand::Upsert(line.spec.clone()),
            metadata,
        )
        .await
    {
        Ok(accepted) => Ok(Outcome::Accepted {
            detail: ItemDetail {
                item: accepted.item.into(),
            },
            position: accepted.position,
        }),
        Err(CatalogHandlerError::Refused(error)) => {
            Ok(Outcome::Rejected(LineError::refusal(&error)))
        }
        Err(e) if e.is_permanent() => Err(internal(caller, &e, 500)),
        Err(e) => Err(internal(caller, &e, 503)),
    }
}

fn render(plan: &Plan, outcomes: Vec<Option<Outcome>>) -> Result<Answer, serde_json::Error> {
    match plan.shape {
        Shape::Single => match outcomes.into_iter().next().flatten() {
            Some(Outcome::Accepted { detail, position }) => Answer::json(
                200,
                &UpsertBody {
                    item: detail.item,
                    position: position.map(|p| p.to_string()),
                },
            ),
            Some(Outcome::Rejected(e)) => Ok(e.into_problem().answer()),
            // A single upsert always has its one line decided; anything else is a bug.
            None => Ok(Problem::new(500, "INTERNAL", "no outcome for the item").answer()),
        },
        Shape::Bulk => bulk_answer(outcomes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_items_parse_and_bad_items_are_reported_alone() {
        let values = serde_json::from_str::<Vec<serde_json::Value>>(
            r#"[
            {"sku":"A","title":"Tee","price":{"amount":"1990","currency":"JPY"}},
            {"sku":"B","price":{"amount":"1","currency":"JPY"}},
            {"sku":"C","title":"Cap","price":{"amount":"5","currency":"JPY"},
             "attributes":{"size":"M"},"active":false}
        ]"#,
        )
        .unwrap();
        let plan = bulk_plan(values);
        let first = plan.lines[0].as_ref().unwrap();
        assert_eq!(first.sku, "A");
        assert!(first.spec.active, "active by default");
        assert!(first.spec.attributes.is_empty());
        assert_eq!(
            plan.lines[1].as_ref().unwrap_err().field.as_deref(),
            Some("title")
        );
        let third = plan.lines[2].as_ref().unwrap();
        assert!(!third.spec.active);
        assert_eq!(third.spec.attributes["size"], "M");
    }
}
