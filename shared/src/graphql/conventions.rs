//! The GraphQL conventions every feature of the gateway follows, so that the API reads as one
//! product rather than one per service:
//!
//! * **Errors.** A mutation reports what the caller can fix (bad input, not found, conflict,
//!   insufficient stock) as [`UserError`]s in its payload — `{ field, code, message }` — and
//!   changes nothing. What the caller cannot fix inside the operation (not signed in, not
//!   allowed, a malformed argument of a query, a server fault) is a top-level GraphQL error
//!   whose `extensions.code` is one of [`ErrorCode`] ([`gql_error`]); parse and validation
//!   errors get `INVALID_INPUT` ([`ErrorCodeDefaults`]).
//! * **Money** is `{ amount: String, currency: String }` with the amount a decimal string,
//!   never a float ([`MoneyObject`], [`MoneyInput`]).
//! * **Ids** are opaque global ids, `base64url("Type:key")` ([`encode_id`], [`decode_id`]):
//!   clients must not build or parse them, which leaves us free to change keys.
//! * **Lists** are forward Relay connections (`first`/`after`, opaque cursors, `first` at most
//!   [`MAX_PAGE_SIZE`]) built with [`forward_connection`].
//! * **Times** are ISO-8601 UTC (`DateTime` scalar, `chrono::DateTime<Utc>`).
//! * **Authorization** is checked in the resolver with [`require_role`] before anything is
//!   read, and scoping (a store's staff, a customer's own orders) right after, on the actor it
//!   returns.

use super::RequestContext;
use crate::auth::{Actor, Role};
use crate::money::Money;
use async_graphql::connection::{Connection, CursorType, Edge, OpaqueCursor};
use async_graphql::extensions::NextSubscribe;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{
    Context, Enum, ErrorExtensionValues, InputObject, OutputType, Response, SimpleObject, ID,
};
use base64::Engine;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;

/// The machine-readable kind of an error: `UserError.code`, and `extensions.code` of a
/// top-level error.
///
/// A value never changes meaning; new values are added as features need them, so clients must
/// treat an unknown code like `INTERNAL`.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// An argument or input field is malformed or out of range; `field` says which.
    InvalidInput,
    /// The thing named does not exist (or is not visible to this actor).
    NotFound,
    /// No valid credentials: sign in (again).
    Unauthenticated,
    /// Signed in, but this actor may not do this.
    Forbidden,
    /// The state changed under the caller (concurrent update, wrong status for the command).
    Conflict,
    /// Not enough available-to-promise stock for the request.
    InsufficientStock,
    /// The location is deactivated: it takes no stock movements or new reservations.
    LocationInactive,
    /// The payment provider declined the authorization; nothing was ordered.
    PaymentDeclined,
    /// The request body is larger than the server accepts (`http.max_body_bytes`); HTTP 413,
    /// nothing was read past the limit or run.
    PayloadTooLarge,
    /// The feature is switched off in this server's configuration (e.g. `advanceTestClock`
    /// without `clock.test_clock`); nothing was changed.
    NotEnabled,
    /// The location has taken as many orders as its daily capacity allows today (its local
    /// day); `field` names the order line, the message the location.
    CapacityExhausted,
    /// A fault on our side; the message carries the correlation id to quote.
    Internal,
}

impl ErrorCode {
    /// The value as it appears on the wire (`INVALID_INPUT`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::InsufficientStock => "INSUFFICIENT_STOCK",
            ErrorCode::LocationInactive => "LOCATION_INACTIVE",
            ErrorCode::PaymentDeclined => "PAYMENT_DECLINED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::NotEnabled => "NOT_ENABLED",
            ErrorCode::CapacityExhausted => "CAPACITY_EXHAUSTED",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// A problem the caller can fix, reported in a mutation payload's `userErrors`; the mutation
/// changed nothing.
///
/// `field` is the path to the offending input field from the mutation's arguments
/// (`["input", "lines", "0", "quantity"]`), empty when the error is about the whole request.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "UserError")]
pub struct UserError {
    pub field: Vec<String>,
    pub code: ErrorCode,
    pub message: String,
}

impl UserError {
    pub fn new(code: ErrorCode, field: &[&str], message: impl Into<String>) -> Self {
        UserError {
            field: field.iter().map(|s| s.to_string()).collect(),
            code,
            message: message.into(),
        }
    }

    pub fn invalid(field: &[&str], message: impl Into<String>) -> Self {
        UserError::new(ErrorCode::InvalidInput, field, message)
    }

    /// A domain refusal as a payload error: its `field` (a dotted camelCase path such as
    /// `lines.0.qty`, `None` for the whole request) placed under `input`, each segment named in
    /// `renames` spelled as the GraphQL input spells it (`[("qty", "quantity")]`).
    pub fn refusal(
        code: ErrorCode,
        field: Option<&str>,
        renames: &[(&str, &str)],
        message: impl Into<String>,
    ) -> Self {
        let mut path = vec!["input".to_string()];
        if let Some(f) = field {
            path.extend(f.split('.').map(|segment| {
                renames
                    .iter()
                    .find(|(domain, _)| *domain == segment)
                    .map_or(segment, |(_, api)| api)
                    .to_string()
            }));
        }
        UserError {
            field: path,
            code,
            message: message.into(),
        }
    }

    /// Places an error reported relative to a nested input under the path of that input, so
    /// that helpers such as [`MoneyInput::parse`] need not know where they are used:
    /// `price.parse().map_err(|e| e.under(&["input", "price"]))`.
    pub fn under(mut self, prefix: &[&str]) -> Self {
        let mut field: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        field.append(&mut self.field);
        self.field = field;
        self
    }

    /// Replaces the path, for helpers whose default path (`["id"]`) is not the argument's name.
    pub fn at(mut self, field: &[&str]) -> Self {
        self.field = field.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// In a query there is no payload to carry a [`UserError`], so it becomes a top-level error
/// with the same `code` and `field` in its extensions; `?` does that conversion.
impl From<UserError> for async_graphql::Error {
    fn from(e: UserError) -> Self {
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", e.code.as_str());
        if !e.field.is_empty() {
            extensions.set(
                "field",
                async_graphql::Value::List(
                    e.field
                        .into_iter()
                        .map(async_graphql::Value::from)
                        .collect(),
                ),
            );
        }
        async_graphql::Error {
            message: e.message,
            source: None,
            extensions: Some(extensions),
        }
    }
}

/// A top-level GraphQL error with `extensions { code }`, for what a payload cannot carry:
/// authentication, authorization, malformed query arguments, server faults.
pub fn gql_error(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    async_graphql::Error {
        message: message.into(),
        source: None,
        extensions: Some(extensions),
    }
}

/// An `INTERNAL` error for a fault the client cannot act on. The cause is logged, not sent:
/// it may describe our infrastructure. The correlation id lets support find the log line.
pub fn internal_error(
    ctx: &Context<'_>,
    what: &str,
    cause: &dyn std::fmt::Display,
) -> async_graphql::Error {
    let correlation_id = ctx
        .data_opt::<RequestContext>()
        .map(|r| r.correlation_id.to_string())
        .unwrap_or_default();
    tracing::error!(%correlation_id, error = %cause, "{what}");
    gql_error(
        ErrorCode::Internal,
        format!("{what}; quote correlation id {correlation_id} to support"),
    )
}

/// The request's context, put there by the HTTP and WebSocket layers for every operation.
///
/// Missing context is a wiring bug; it is reported as an error rather than treated as an
/// anonymous caller, so that a forgotten context can never widen access.
pub fn request_context<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestContext> {
    ctx.data_opt::<RequestContext>().ok_or_else(|| {
        gql_error(
            ErrorCode::Internal,
            "the request has no authentication context (gateway wiring bug)",
        )
    })
}

/// Lets the operation proceed only for actors with one of `roles`, and returns the actor for
/// the scoping checks that follow (a staff member's store, a customer's own orders).
///
/// An anonymous caller gets `UNAUTHENTICATED` (signing in may help); a signed-in caller with
/// another role gets `FORBIDDEN` (it will not).
pub fn require_role<'a>(ctx: &Context<'a>, roles: &[Role]) -> async_graphql::Result<&'a Actor> {
    let actor = &request_context(ctx)?.actor;
    if roles.contains(&actor.role) {
        return Ok(actor);
    }
    let allowed = roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if actor.role == Role::Anonymous {
        Err(gql_error(
            ErrorCode::Unauthenticated,
            format!("sign in first: this needs one of the roles {allowed}"),
        ))
    } else {
        Err(gql_error(
            ErrorCode::Forbidden,
            format!(
                "role {} may not do this; it needs one of {allowed}",
                actor.role
            ),
        ))
    }
}

/// An amount of money. The amount is a decimal string, so that no client turns it into a
/// float; the currency is an ISO 4217 code.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Money")]
pub struct MoneyObject {
    /// Decimal string, e.g. `"1234.50"`.
    pub amount: String,
    /// ISO 4217 code, e.g. `"JPY"`.
    pub currency: String,
}

impl From<Money> for MoneyObject {
    fn from(m: Money) -> Self {
        MoneyObject {
            amount: m.amount.to_string(),
            currency: m.currency.to_string(),
        }
    }
}

/// An amount of money: a decimal string and an ISO 4217 currency code.
// `MoneyInput::parse` turns it into `Money` or a `UserError`.
#[derive(InputObject, Clone, Debug, PartialEq, Eq)]
pub struct MoneyInput {
    /// Decimal string, e.g. `"1234.50"`. Not a float, so that no precision is lost on the way.
    pub amount: String,
    /// Three-letter upper-case ISO 4217 code, e.g. `"JPY"`.
    pub currency: String,
}

impl MoneyInput {
    /// Errors name `["amount"]` or `["currency"]`; place them with [`UserError::under`].
    pub fn parse(&self) -> Result<Money, UserError> {
        let currency = self.currency.parse().map_err(|_| {
            UserError::invalid(
                &["currency"],
                format!(
                    "{:?} is not a three-letter upper-case ISO 4217 currency code",
                    self.currency
                ),
            )
        })?;
        let text = self.amount.trim();
        if text.is_empty() {
            return Err(UserError::invalid(&["amount"], "amount is empty"));
        }
        let amount = text.parse::<rust_decimal::Decimal>().map_err(|_| {
            UserError::invalid(
                &["amount"],
                format!(
                    "{:?} is not a decimal number such as \"1234.50\"",
                    self.amount
                ),
            )
        })?;
        Ok(Money::new(amount, currency))
    }

    /// [`MoneyInput::parse`] for prices and amounts that cannot be negative.
    pub fn parse_non_negative(&self) -> Result<Money, UserError> {
        let money = self.parse()?;
        if money.amount.is_sign_negative() && !money.amount.is_zero() {
            return Err(UserError::invalid(
                &["amount"],
                "amount must not be negative",
            ));
        }
        Ok(money)
    }
}

const ID_ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The GraphQL type names inside the global ids of objects the integration APIs also name,
/// spelled in one place for every crate (an id of `Order` made by one service must decode in
/// another).
pub mod node_type {
    pub const ORDER: &str = "Order";
    pub const FULFILLMENT_ORDER: &str = "FulfillmentOrder";
    pub const RETURN: &str = "Return";
    pub const LOCATION: &str = "Location";
}

/// What an integration API was given for an object of `expected_type`: its raw key (the UUID
/// or code the GraphQL type shows as `rawId` / `code`) or its GraphQL global id, which is
/// decoded. Anything else is returned as it is, for the caller's own check to refuse.
pub fn integration_key(expected_type: &str, text: &str) -> String {
    decode_id(expected_type, &ID(text.to_owned())).unwrap_or_else(|_| text.to_owned())
}

/// The global id of the `type_name` object with key `key`: `base64url("Type:key")`.
pub fn encode_id(type_name: &str, key: &str) -> ID {
    ID(ID_ENGINE.encode(format!("{type_name}:{key}")))
}

/// The key inside a global id of `expected_type`. A malformed id or one of another type is an
/// `INVALID_INPUT` error on field `["id"]` (use [`UserError::at`] to name the real argument).
pub fn decode_id(expected_type: &str, id: &ID) -> Result<String, UserError> {
    let not_ours = || {
        UserError::invalid(
            &["id"],
            format!("{:?} is not an id issued by this API", id.as_str()),
        )
    };
    let bytes = ID_ENGINE.decode(id.as_bytes()).map_err(|_| not_ours())?;
    let text = String::from_utf8(bytes).map_err(|_| not_ours())?;
    let (type_name, key) = text.split_once(':').ok_or_else(not_ours)?;
    if type_name != expected_type {
        return Err(UserError::invalid(
            &["id"],
            format!("expected the id of a {expected_type}, got the id of a {type_name}"),
        ));
    }
    if key.is_empty() {
        return Err(not_ours());
    }
    Ok(key.to_string())
}

/// Page size when the client gives no `first`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest `first` a connection accepts: bounds the work one request can ask for.
pub const MAX_PAGE_SIZE: usize = 500;

/// The page size for `first`: [`DEFAULT_PAGE_SIZE`] when absent, an `INVALID_INPUT` error
/// (field `first`) when negative or above [`MAX_PAGE_SIZE`].
pub fn page_size(first: Option<i32>) -> Result<usize, UserError> {
    match first {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if n < 0 => Err(UserError::invalid(
            &["first"],
            format!("`first` must not be negative (got {n})"),
        )),
        Some(n) if n as usize > MAX_PAGE_SIZE => Err(UserError::invalid(
            &["first"],
            format!("`first` may be at most {MAX_PAGE_SIZE} (got {n}); page with `after`"),
        )),
        Some(n) => Ok(n as usize),
    }
}

/// Fields one item of a full page may select within [`DEFAULT_COMPLEXITY_LIMIT`].
pub const FIELDS_PER_FULL_PAGE_ITEM: usize = 50;

/// The complexity limit a server runs with unless configured (`graphql.complexity_limit`):
/// room for one full page ([`MAX_PAGE_SIZE`] items) of [`FIELDS_PER_FULL_PAGE_ITEM`] fields
/// each, which every ordinary selection of every connection stays below (an item's scalars
/// and the small objects beside it are 10-30 fields). It bounds what aliases can multiply: a
/// query resolves at most this many field values, so twenty aliases of a full page that
/// select only `edges { node { id } }` are refused.
pub const DEFAULT_COMPLEXITY_LIMIT: usize = MAX_PAGE_SIZE * FIELDS_PER_FULL_PAGE_ITEM;

/// Query complexity of a connection field: the page size times the cost of one edge, plus one
/// for the field itself. The count is what the request would resolve (one per field value, an
/// item's selection once per item of the page), so the complexity limit bounds the work of a
/// query however it is spread over aliases. Use it on every connection field:
/// `#[graphql(complexity = "connection_complexity(first, child_complexity)")]`.
/// An invalid `first` counts as the largest page; the resolver reports the error.
pub fn connection_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let page = page_size(first).unwrap_or(MAX_PAGE_SIZE).max(1);
    page.saturating_mul(child_complexity).saturating_add(1)
}

/// Decodes an `after` cursor, or says it is not one of ours (field `after`).
pub fn decode_cursor<C: Serialize + DeserializeOwned>(
    after: Option<&str>,
) -> Result<Option<C>, UserError> {
    after
        .map(|s| {
            OpaqueCursor::<C>::decode_cursor(s)
                .map(|c| c.0)
                .map_err(|_| {
                    UserError::invalid(
                        &["after"],
                        format!("{s:?} is not a cursor returned by this connection"),
                    )
                })
        })
        .transpose()
}

/// A forward Relay connection (`first`/`after`) with opaque cursors of type `C`.
///
/// `fetch(after, limit)` returns up to `limit` items that follow `after` in the connection's
/// order, each with its cursor. It is asked for one more item than the page holds, so that
/// `hasNextPage` is exact without a count. `hasPreviousPage` is `true` whenever `after` is
/// given, which Relay allows for forward paging and which costs no extra read.
pub async fn forward_connection<C, N, F, Fut>(
    after: Option<String>,
    first: Option<i32>,
    fetch: F,
) -> async_graphql::Result<Connection<OpaqueCursor<C>, N>>
where
    C: Serialize + DeserializeOwned + Send + Sync,
    N: OutputType,
    F: FnOnce(Option<C>, usize) -> Fut,
    Fut: Future<Output = async_graphql::Result<Vec<(C, N)>>>,
{
    let limit = page_size(first)?;
    let after_cursor = decode_cursor::<C>(after.as_deref())?;
    let has_previous_page = after_cursor.is_some();
    let mut items = fetch(after_cursor, limit.saturating_add(1)).await?;
    let has_next_page = items.len() > limit;
    items.truncate(limit);
    let mut connection = Connection::new(has_previous_page, has_next_page);
    connection.edges.extend(
        items
            .into_iter()
            .map(|(cursor, node)| Edge::new(OpaqueCursor(cursor), node)),
    );
    Ok(connection)
}

/// Gives every error produced before execution (syntax, validation, depth and complexity
/// limits) the code `INVALID_INPUT`, so that clients can rely on `extensions.code` being
/// present. Errors raised by resolvers keep the code they were given with [`gql_error`].
pub struct ErrorCodeDefaults;

impl ExtensionFactory for ErrorCodeDefaults {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodeDefaults)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodeDefaults {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        with_default_codes(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(with_default_codes).boxed()
    }
}

fn with_default_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        // Errors with a path come from a resolver, which chose (or forgot) its code; errors
        // without one are about the request document itself.
        if !has_code && error.path.is_empty() {
            error
                .extensions
                .get_or_insert_with(ErrorExtensionValues::default)
                .set("code", ErrorCode::InvalidInput.as_str());
        }
    }
    response
}

/// A position argument (`atLeast`, `after` of the event feed): the text of a position a write
/// returned, or an `INVALID_INPUT` error on `field`. `None` when the argument is absent.
pub fn position_argument(
    text: Option<&str>,
    field: &str,
) -> Result<Option<crate::store::Position>, UserError> {
    text.map(|text| {
        text.trim().parse().map_err(|_| {
            UserError::invalid(
                &[field],
                format!("{text:?} is not a position returned by this API"),
            )
        })
    })
    .transpose()
}

/// Waits for the `atLeast` argument of a read (read-your-writes): `wait` is the view's wait
/// for a position (called only when the argument is given). A view that does not get there is
/// a top-level `INTERNAL` error asking to retry the read.
pub async fn wait_at_least<E, F, Fut>(at_least: Option<&str>, wait: F) -> async_graphql::Result<()>
where
    E: std::fmt::Display,
    F: FnOnce(crate::store::Position) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let Some(position) = position_argument(at_least, "atLeast")? else {
        return Ok(());
    };
    wait(position)
        .await
        .map_err(|e| gql_error(ErrorCode::Internal, format!("{e}; retry the read")))
}

/// Store staff act for their own store only; other roles passed `require_role` already.
pub fn require_store_scope(actor: &Actor, location: &str) -> async_graphql::Result<()> {
    if actor.role == Role::StoreStaff && actor.store_id.as_deref() != Some(location) {
        return Err(gql_error(
            ErrorCode::Forbidden,
            format!(
                "store staff of {} may not act on location {location}",
                actor.store_id.as_deref().unwrap_or("no store")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_opaque() {
        let id = encode_id("Order", "0b7c:with:colons@S1");
        assert!(!id.contains("Order"));
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(decode_id("Order", &id).unwrap(), "0b7c:with:colons@S1");
    }

    #[test]
    fn ids_of_another_type_or_garbage_are_invalid_input() {
        let id = encode_id("Order", "1");
        let err = decode_id("ReturnRequest", &id).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert_eq!(err.field, vec!["id"]);
        assert!(err.message.contains("ReturnRequest") && err.message.contains("Order"));

        for garbage in ["", "!!!", "T3JkZXI", "T3JkZXI6", "/w"] {
            let err = decode_id("Order", &ID(garbage.into())).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput, "{garbage:?}");
        }
        let err = decode_id("Order", &ID("x".into()))
            .unwrap_err()
            .at(&["input", "orderId"]);
        assert_eq!(err.field, vec!["input", "orderId"]);
    }

    #[test]
    fn money_input_parses_or_names_the_bad_field() {
        let ok = MoneyInput {
            amount: "1234.50".into(),
            currency: "JPY".into(),
        };
        assert_eq!(ok.parse().unwrap(), Money::parse("1234.50", "JPY").unwrap());

        let bad_amount = MoneyInput {
            amount: "12,5".into(),
            currency: "EUR".into(),
        };
        let err = bad_amount.parse().unwrap_err().under(&["input", "price"]);
        assert_eq!(err.field, vec!["input", "price", "amount"]);
        assert_eq!(err.code, ErrorCode::InvalidInput);

        for currency in ["yen", "JP", "JPYY", ""] {
            let err = MoneyInput {
                amount: "1".into(),
                currency: currency.into(),
            }
            .parse()
            .unwrap_err();
            assert_eq!(err.field, vec!["currency"], "{currency:?}");
        }
        let empty = MoneyInput {
            amount: " ".into(),
            currency: "USD".into(),
        };
        assert_eq!(empty.parse().unwrap_err().field, vec!["amount"]);

        let negative = MoneyInput {
            amount: "-1.00".into(),
            currency: "USD".into(),
        };
        assert!(negative.parse().is_ok());
        assert_eq!(
            negative.parse_non_negative().unwrap_err().field,
            vec!["amount"]
        );
    }

    #[test]
    fn money_object_keeps_the_decimal_text() {
        let m: MoneyObject = Money::parse("10.50", "USD").unwrap().into();
        assert_eq!(
            m,
            MoneyObject {
                amount: "10.50".into(),
                currency: "USD".into()
            }
        );
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(0)).unwrap(), 0);
        assert_eq!(page_size(Some(500)).unwrap(), 500);
        let err = page_size(Some(501)).unwrap_err();
        assert_eq!(
            (err.code, err.field),
            (ErrorCode::InvalidInput, vec!["first".to_string()])
        );
        assert!(err.message.contains("500"));
        assert!(page_size(Some(-1)).is_err());
    }

    async fn page(
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<OpaqueCursor<u64>, u64>> {
        let all: Vec<u64> = (0..7).collect();
        forward_connection(after, first, |after: Option<u64>, limit| {
            let items = all
                .iter()
                .copied()
                .filter(|n| after.is_none_or(|a| *n > a))
                .take(limit)
                .map(|n| (n, n * 10))
                .collect();
            async move { Ok(items) }
        })
        .await
    }

    #[tokio::test]
    async fn cursors_page_through_everything_once() {
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let conn = page(after.clone(), Some(3)).await.unwrap();
            pages += 1;
            assert_eq!(conn.has_previous_page, after.is_some());
            seen.extend(conn.edges.iter().map(|e| e.node));
            if !conn.has_next_page {
                break;
            }
            after = conn.edges.last().map(|e| e.cursor.encode_cursor());
        }
        assert_eq!(seen, vec![0, 10, 20, 30, 40, 50, 60]);
        assert_eq!(pages, 3);

        let exact = page(None, Some(7)).await.unwrap();
        assert_eq!(exact.edges.len(), 7);
        assert!(!exact.has_next_page);
    }

    #[tokio::test]
    async fn bad_cursor_and_oversized_pages_are_invalid_input() {
        for (after, first) in [
            (Some("not a cursor".to_string()), None),
            (None, Some(501)),
            (None, Some(-2)),
        ] {
            let err = page(after, first).await.err().unwrap();
            let code = err.extensions.as_ref().and_then(|e| e.get("code")).cloned();
            assert_eq!(code, Some(async_graphql::Value::from("INVALID_INPUT")));
        }
    }

    #[test]
    fn position_arguments_parse_or_name_the_field() {
        assert_eq!(position_argument(None, "atLeast"), Ok(None));
        let p = position_argument(Some(" 42 "), "atLeast").expect("a position");
        assert_eq!(p.map(|p| p.to_string()), Some("42".to_string()));
        let e = position_argument(Some("soon"), "after").expect_err("not a position");
        assert_eq!(e.field, vec!["after".to_string()]);
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn refusals_place_their_field_under_input_with_the_api_spelling() {
        let e = UserError::refusal(
            ErrorCode::InvalidInput,
            Some("lines.0.qty"),
            &[("qty", "quantity")],
            "too many",
        );
        assert_eq!(e.field, ["input", "lines", "0", "quantity"]);
        let whole = UserError::refusal(ErrorCode::Conflict, None, &[], "no");
        assert_eq!(whole.field, ["input"]);
    }
}
