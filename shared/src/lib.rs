//! reco-core: everything the three Lambda functions share, testable without Lambda.
//!
//! One module per concern, so "where does the quota get checked" is answered by a file
//! name: [`config`], [`store`], [`quota`], [`youtube`], [`engine`], [`messages`], [`queue`],
//! [`metrics`].

pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod messages;
pub mod metrics;
pub mod queue;
pub mod quota;
pub mod store;
pub mod wiring;
pub mod youtube;

pub use domain::{UserId, Video, WatchEvent};
