//! Who acts: the roles a bearer token can carry and the actor recorded in every event.

pub mod jwt;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The roles of design.md. A token carries exactly one. Also the GraphQL enum `ViewerRole`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[graphql(name = "ViewerRole")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// A storefront customer; the token subject is the customer id.
    Customer,
    /// Store staff; the token carries the one store they act for.
    StoreStaff,
    /// Customer-service agent.
    CsAgent,
    /// The warehouse WMS (integration API only).
    WmsIntegration,
    /// Back-office administrator.
    Admin,
    /// The system itself: process managers, expiry jobs, demo seeding.
    System,
    /// No token: public reads only.
    Anonymous,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "CUSTOMER",
            Role::StoreStaff => "STORE_STAFF",
            Role::CsAgent => "CS_AGENT",
            Role::WmsIntegration => "WMS_INTEGRATION",
            Role::Admin => "ADMIN",
            Role::System => "SYSTEM",
            Role::Anonymous => "ANONYMOUS",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown role {0:?}: expected one of customer, store-staff, cs-agent, wms-integration, admin"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Accepts `STORE_STAFF`, `store-staff` and `store_staff` alike (tokens use the first, the
    /// command line the second).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "CUSTOMER" => Ok(Role::Customer),
            "STORE_STAFF" => Ok(Role::StoreStaff),
            "CS_AGENT" => Ok(Role::CsAgent),
            "WMS_INTEGRATION" | "WMS" => Ok(Role::WmsIntegration),
            "ADMIN" => Ok(Role::Admin),
            "SYSTEM" => Ok(Role::System),
            "ANONYMOUS" => Ok(Role::Anonymous),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

/// The authenticated principal of a request, and the `actor` recorded in event metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub role: Role,
    /// Customer id, staff user id, integration name; empty for anonymous.
    pub subject: String,
    /// The one store a STORE_STAFF actor may act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
}

impl Actor {
    pub fn system(subject: impl Into<String>) -> Self {
        Actor {
            role: Role::System,
            subject: subject.into(),
            store_id: None,
        }
    }

    pub fn anonymous() -> Self {
        Actor {
            role: Role::Anonymous,
            subject: String::new(),
            store_id: None,
        }
    }

    /// Compact text form stored with each event: `ROLE:subject` or `ROLE:subject@store`.
    pub fn to_compact(&self) -> String {
        match &self.store_id {
            Some(store) => format!("{}:{}@{}", self.role, self.subject, store),
            None => format!("{}:{}", self.role, self.subject),
        }
    }

    /// Parses [`Actor::to_compact`]; unknown text becomes a SYSTEM actor rather than failing a
    /// read, since old events must stay readable.
    pub fn from_compact(s: &str) -> Self {
        let (role, rest) = s.split_once(':').unwrap_or(("SYSTEM", s));
        let role = role.parse().unwrap_or(Role::System);
        let (subject, store_id) = match rest.rsplit_once('@') {
            Some((subject, store)) => (subject.to_string(), Some(store.to_string())),
            None => (rest.to_string(), None),
        };
        Actor {
            role,
            subject,
            store_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_in_every_spelling() {
        assert_eq!("store-staff".parse::<Role>(), Ok(Role::StoreStaff));
        assert_eq!("STORE_STAFF".parse::<Role>(), Ok(Role::StoreStaff));
        assert_eq!("cs_agent".parse::<Role>(), Ok(Role::CsAgent));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn actor_round_trips_through_compact_form() {
        let staff = Actor {
            role: Role::StoreStaff,
            subject: "u-7".into(),
            store_id: Some("S1".into()),
        };
        assert_eq!(Actor::from_compact(&staff.to_compact()), staff);
        let customer = Actor {
            role: Role::Customer,
            subject: "c-1".into(),
            store_id: None,
        };
        assert_eq!(Actor::from_compact(&customer.to_compact()), customer);
    }
}
