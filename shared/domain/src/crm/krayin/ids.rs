//! Krayin's record ids: positive integers, each kind a type of its own, so that a lead's id cannot
//! be sent where a stage's belongs. Read from Krayin's answers, the connector's settings and the
//! external ids we keep ([`super::KrayinRefs`]); written into request paths and bodies as the
//! bare number Krayin expects.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! krayin_id {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

krayin_id! {
    /// A person (a contact).
    PersonId;
    /// A lead: a person's deal in a pipeline.
    LeadId;
    /// An organization a person belongs to.
    OrganizationId;
    /// An activity: a conversation, a call, a note on a lead.
    ActivityId;
    /// A pipeline of lead stages.
    PipelineId;
    /// A stage of a pipeline.
    StageId;
    /// A Krayin user (a salesperson).
    UserId;
    /// A lead source (`Web`, `Email`, …).
    LeadSourceId;
    /// A lead type.
    LeadTypeId;
}
