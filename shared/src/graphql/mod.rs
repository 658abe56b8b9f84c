//! What every service's part of the GraphQL schema shares: the request context the gateway
//! puts into each operation and the [`conventions`] (errors, money, ids, connections, role
//! checks). It lives here, not in the gateway, because each service crate owns its `graphql`
//! module (ARCHITECTURE.md) and the gateway only merges them.

pub mod conventions;

use crate::auth::Actor;
use uuid::Uuid;

/// Who is asking and on behalf of which outside request. The HTTP and WebSocket layers insert
/// it into every operation; resolvers read it through [`conventions::require_role`] /
/// [`conventions::request_context`], and command handlers copy it into event metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    pub actor: Actor,
    /// Shared by every event the request leads to (design.md, envelope metadata).
    pub correlation_id: Uuid,
}

impl RequestContext {
    /// Event metadata for a command this request causes, happening now.
    pub fn metadata(&self) -> crate::envelope::Metadata {
        crate::envelope::Metadata {
            correlation_id: self.correlation_id,
            causation_id: None,
            actor: self.actor.clone(),
            occurred_at: chrono::Utc::now(),
        }
    }
}
