//! `viewer`: who the API thinks the caller is. Clients call it after signing in to check their
//! token, and UIs use it to decide what to show; it works without a token too.

use super::conventions::request_context;
use async_graphql::{Context, Enum, Object, SimpleObject};
use ichigen_shared::auth::{Actor, Role};

/// The role a caller acts in.
// Mirrors `ichigen_shared::auth::Role`; the match in the `From` impl makes a new role a
// compile error here rather than a silent gap.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewerRole {
    Customer,
    StoreStaff,
    CsAgent,
    WmsIntegration,
    Admin,
    System,
    Anonymous,
}

impl From<Role> for ViewerRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Customer => ViewerRole::Customer,
            Role::StoreStaff => ViewerRole::StoreStaff,
            Role::CsAgent => ViewerRole::CsAgent,
            Role::WmsIntegration => ViewerRole::WmsIntegration,
            Role::Admin => ViewerRole::Admin,
            Role::System => ViewerRole::System,
            Role::Anonymous => ViewerRole::Anonymous,
        }
    }
}

/// The authenticated caller.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub role: ViewerRole,
    /// Customer id, staff user id or integration name; empty when anonymous.
    pub subject: String,
    /// The one store a STORE_STAFF caller acts for; null for every other role.
    pub store_id: Option<String>,
}

impl From<&Actor> for Viewer {
    fn from(actor: &Actor) -> Self {
        Viewer {
            role: actor.role.into(),
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
