//! Read models of the returns service.
//!
//! - [`returns`]: [`ReturnsView`], every return with its folded state, timeline and the live
//!   feed behind the returns subscription; the agents' queue and the customers' own list.

pub mod returns;

pub use returns::{
    ReturnCursor, ReturnFilter, ReturnRecord, ReturnTimelineEntry, ReturnUpdate, ReturnsView,
    UPDATE_FEED_CAPACITY,
};
