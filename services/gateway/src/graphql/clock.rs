//! The server's time in GraphQL: `serverClock` (anyone) and, on a staging server with
//! `clock.test_clock`, `advanceTestClock` (ADMIN) to move it forward (see
//! [`crate::test_clock`]).

use super::conventions::{gql_error, internal_error, require_role, ErrorCode, UserError};
use crate::test_clock::{format_duration, parse_duration, TestClockError, TestClockService};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use ichigen_shared::auth::Role;
use ichigen_shared::clock::Clock;
use std::sync::Arc;

/// The clock resolvers read: the one the services decide on, and the test clock if enabled.
#[derive(Clone)]
pub struct ServerClock {
    pub clock: Arc<dyn Clock>,
    pub test_clock: Option<TestClockService>,
}

fn server_clock<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a ServerClock> {
    ctx.data_opt::<ServerClock>().ok_or_else(|| {
        gql_error(
            ErrorCode::Internal,
            "the schema was built without its clock (gateway wiring bug)",
        )
    })
}

/// The time the server decides on (holds, pickup expiry, return windows).
#[derive(SimpleObject)]
#[graphql(name = "ServerClock")]
pub struct ServerClockObject {
    /// The server's current time: the wall clock, plus the test clock's offset if enabled.
    pub now: DateTime<Utc>,
    /// Whether this server runs a test clock (`clock.test_clock`, never in production).
    pub test_clock: bool,
    /// How far the test clock is ahead of the wall clock, in seconds (0 without one).
    pub offset_seconds: i64,
    /// The same offset as an ISO-8601 duration, e.g. `P4D`.
    pub offset: String,
}

#[derive(Default)]
pub struct ClockQuery;

#[Object]
impl ClockQuery {
    /// The server's time, and its test clock's offset on a staging server.
    async fn server_clock(&self, ctx: &Context<'_>) -> async_graphql::Result<ServerClockObject> {
        let clock = server_clock(ctx)?;
        let offset = clock
            .test_clock
            .as_ref()
            .map(|t| t.offset())
            .unwrap_or_else(chrono::Duration::zero);
        Ok(ServerClockObject {
            now: clock.clock.now(),
            test_clock: clock.test_clock.is_some(),
            offset_seconds: offset.num_seconds(),
            offset: format_duration(offset),
        })
    }
}

/// How far to move the test clock.
#[derive(InputObject)]
pub struct AdvanceTestClockInput {
    /// An ISO-8601 duration of weeks, days, hours, minutes and seconds, more than zero and at
    /// most 366 days: `P3D`, `PT36H`, `P1DT12H`.
    pub by: String,
}

#[derive(SimpleObject)]
pub struct AdvanceTestClockPayload {
    /// The server's time after the advance; null when refused.
    pub now: Option<DateTime<Utc>>,
    /// The test clock's offset after the advance, in seconds.
    pub offset_seconds: Option<i64>,
    /// Where the advance was recorded; pass it as `atLeast` to a read.
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(Default)]
pub struct ClockMutation;

#[Object]
impl ClockMutation {
    /// Moves the server's clock forward (ADMIN, and only on a server with
    /// `clock.test_clock`; `NOT_ENABLED` otherwise): every process of the deployment follows,
    /// so holds, pickups and return windows that fall due in that time expire as they would
    /// have. The clock never moves back.
    async fn advance_test_clock(
        &self,
        ctx: &Context<'_>,
        input: AdvanceTestClockInput,
    ) -> async_graphql::Result<AdvanceTestClockPayload> {
        require_role(ctx, &[Role::Admin])?;
        let Some(test_clock) = server_clock(ctx)?.test_clock.as_ref() else {
            return Err(gql_error(
                ErrorCode::NotEnabled,
                "this server has no test clock (clock.test_clock is off)",
            ));
        };
        let refused = |message: String| AdvanceTestClockPayload {
            now: None,
            offset_seconds: None,
            position: None,
            errors: vec![UserError::invalid(&["input", "by"], message)],
        };
        let by = match parse_duration(&input.by) {
            Ok(by) => by,
            Err(e) => return Ok(refused(e.to_string())),
        };
        let metadata = super::conventions::request_context(ctx)?.metadata();
        match test_clock.advance(by, metadata).await {
            Ok((now, position)) => Ok(AdvanceTestClockPayload {
                now: Some(now),
                offset_seconds: Some(test_clock.offset().num_seconds()),
                position: Some(position.to_string()),
                errors: vec![],
            }),
            Err(TestClockError::Refused(e)) => Ok(refused(e.to_string())),
            Err(TestClockError::Contended) => Ok(AdvanceTestClockPayload {
                errors: vec![UserError::new(
                    ErrorCode::Conflict,
                    &[],
                    TestClockError::Contended.to_string(),
                )],
                ..refused(String::new())
            }),
            Err(e) => Err(internal_error(ctx, "cannot advance the test clock", &e)),
        }
    }
}
