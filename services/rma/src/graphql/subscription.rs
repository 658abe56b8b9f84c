//! `returnUpdates(returnId)`: every change of one return, live (or of every return, for CS).

use super::types::ReturnUpdateObject;
use super::{may_read, service};
use crate::projections::ReturnUpdate;
use async_graphql::{Context, Subscription, ID};
use futures::Stream;
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::{gql_error, internal_error, request_context, ErrorCode};
use tokio::sync::broadcast::error::RecvError;

#[derive(Default)]
pub struct RmaSubscription;

#[Subscription]
impl RmaSubscription {
    /// The return's changes: what happened so far, then each new step (requested, approved
    /// or rejected, received, graded, refunded, exchanged, closed). For its customer, staff
    /// of a store that received it or took it, CS agents and admins. Without `returnId`, CS
    /// agents and admins follow every return (new ones included) from now on.
    async fn return_updates(
        &self,
        ctx: &Context<'_>,
        return_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = ReturnUpdateObject>> {
        let actor = request_context(ctx)?.actor.clone();
        let svc = service(ctx)?;
        let not_found = || gql_error(ErrorCode::NotFound, "no such return");
        let Some(id) = return_id else {
            if !matches!(actor.role, Role::CsAgent | Role::Admin) {
                return Err(gql_error(
                    ErrorCode::Forbidden,
                    "only CS agents and admins follow every return; name a returnId",
                ));
            }
            let receiver = svc.view.subscribe();
            let past: Vec<ReturnUpdateObject> = Vec::new();
            return Ok(chain(past, receiver, None));
        };
        let rma_id = super::return_id(&id, &["returnId"]).map_err(|_| not_found())?;
        let rma = svc
            .load(rma_id)
            .await
            .map_err(|e| internal_error(ctx, "cannot read the return", &e))?
            .ok_or_else(not_found)?;
        if !may_read(&actor, &rma) {
            return Err(not_found());
        }
        // Subscribe before reading the past, then skip what the past already covered.
        let receiver = svc.view.subscribe();
        let record = svc.view.get(rma_id);
        let (past, last) = match &record {
            Some(r) => {
                let status = r.status;
                let past = r
                    .timeline
                    .iter()
                    .map(|e| {
                        ReturnUpdateObject::from(&ReturnUpdate {
                            rma_id,
                            order_id: r.order_id,
                            customer_id: r.customer_id.clone(),
                            status,
                            event_type: e.event_type.clone(),
                            summary: e.summary.clone(),
                            at: e.at,
                            position: e.position,
                        })
                    })
                    .collect();
                (past, r.timeline.last().map(|e| e.position))
            }
            None => (Vec::new(), None),
        };
        let mut past: Vec<ReturnUpdateObject> = past;
        // Only the latest status is known for past entries: report it on the last one and
        // leave it out before.
        let n = past.len();
        for (i, u) in past.iter_mut().enumerate() {
            if i + 1 < n {
                u.status = None;
            }
        }
        Ok(chain(past, receiver, Some((rma_id, last))))
    }
}

/// The past, then live updates (of one return, after `last`, when `only` names it).
fn chain(
    past: Vec<ReturnUpdateObject>,
    receiver: tokio::sync::broadcast::Receiver<ReturnUpdate>,
    only: Option<(uuid::Uuid, Option<ichigen_shared::store::Position>)>,
) -> impl Stream<Item = ReturnUpdateObject> {
    let live = futures::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(update) => {
                    let wanted = match only {
                        None => true,
                        Some((id, last)) => {
                            update.rma_id == id && last.is_none_or(|p| update.position > p)
                        }
                    };
                    if wanted {
                        return Some((ReturnUpdateObject::from(&update), receiver));
                    }
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "returnUpdates subscriber lagged");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    futures::StreamExt::chain(futures::stream::iter(past), live)
}
