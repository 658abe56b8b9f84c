//! Events of the policy stream (`rma-policy`).
//!
//! Definitions carry the full spec (not a diff): the policy is small, and a reader (the
//! storefront's reason list, an audit) then needs only the latest definition of a code.
//! Retirements repeat the labels so a timeline can say what was retired without a lookup.

use serde::{Deserialize, Serialize};

use super::{ConditionGradeSpec, ReturnReasonSpec};

/// A reason was created or replaced (and is active).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnReasonDefined {
    #[serde(flatten)]
    pub spec: ReturnReasonSpec,
}

/// A reason is no longer offered for new returns (open returns keep their snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnReasonRetired {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
}

/// A grade was created or replaced (and is active).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionGradeDefined {
    #[serde(flatten)]
    pub spec: ConditionGradeSpec,
}

/// A grade is no longer used for new inspections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionGradeRetired {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
}

macro_rules! policy_events {
    ($($name:ident => $ty:literal),* $(,)?) => {
        /// Every event of the policy stream.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum PolicyEvent {
            $( #[serde(rename = $ty)] $name($name), )*
        }

        impl PolicyEvent {
            /// Every event type with its payload's JSON schema: what the event catalogue
            /// (`docs/event-catalogue.md`) is generated from.
            pub fn catalogue() -> Vec<(&'static str, schemars::Schema)> {
                vec![ $( ($ty, schemars::schema_for!($name)), )* ]
            }

            /// The versioned event type stored next to the payload.
            pub fn event_type(&self) -> &'static str {
                match self { $( PolicyEvent::$name(_) => $ty, )* }
            }

            /// The payload as stored in the event's data (camelCase JSON).
            pub fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
                match self { $( PolicyEvent::$name(p) => serde_json::to_vec(p), )* }
            }

            /// Reads a stored event back from its type and data; `None` for a type this
            /// aggregate does not know.
            pub fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
                match event_type {
                    $( $ty => Some(serde_json::from_slice(data).map(PolicyEvent::$name)), )*
                    _ => None,
                }
            }

            /// [`Self::decode`] of a recorded event.
            pub fn decode_recorded(
                event: &ichigen_shared::envelope::RecordedEvent,
            ) -> Option<Result<Self, serde_json::Error>> {
                Self::decode(&event.event_type, &event.data)
            }
        }

        $( impl From<$name> for PolicyEvent {
            fn from(p: $name) -> Self { PolicyEvent::$name(p) }
        } )*
    };
}

policy_events! {
    ReturnReasonDefined => "ReturnReasonDefined.v1",
    ReturnReasonRetired => "ReturnReasonRetired.v1",
    ConditionGradeDefined => "ConditionGradeDefined.v1",
    ConditionGradeRetired => "ConditionGradeRetired.v1",
}
