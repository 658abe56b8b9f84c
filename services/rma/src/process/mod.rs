//! Reactions of the returns service: [`disposition`] puts graded units where their grade says.

pub mod disposition;
