//! Portico core: the engine every feature plugin builds on.
//!
//! Request flow: Rocket route → guards (session → client → [`web::Page`]) → a tab's handler →
//! a serde view model → [`theme::Themes::render`] → response with security headers.

pub mod audit;
pub mod auth;
pub mod control;
pub mod demo;
pub mod error;
pub mod hooks;
pub mod i18n;
pub mod import;
pub mod lockout;
pub mod mail;
pub mod model;
pub mod ops;
pub mod passwords;
pub mod portal;
pub mod registry;
pub mod settings;
pub mod store;
pub mod theme;
pub mod web;

pub use error::{Error, Result};
pub use portal::{Clock, Portal, PortalOptions};
pub use registry::{Manifest, Plugin, Registrar, Tab};

/// Re-exported so plugins use the same versions as core.
pub use rocket;
pub use serde_json;
