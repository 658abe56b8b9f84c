//! `viewer`: who the API thinks the caller is. Clients call it after signing in to check their
//! token, and UIs use it to decide what to show; it works without a token too.

use super::conventions::request_context;
use async_graphql::{Context, Object, SimpleObject};
use ichigen_shared::auth::{Actor, Role};

/// The authenticated caller.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub role: Role,
    /// Customer id, staff user id or integration name; empty when anonymous.
    pub subject: String,
    /// The one store a STORE_STAFF caller acts for; null for every other role.
    pub store_id: Option<String>,
}

impl From<&Actor> for Viewer {
    fn from(actor: &Actor) -> Self {
        Viewer {
            role: actor.role,
            subject: actor.subject.clone(),
            store_id: actor.store_id.clone(),
        }
    }
}

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The caller, as identified by the bearer token (ANONYMOUS without one).
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        Ok(Viewer::from(&request_context(ctx)?.actor))
    }
}
