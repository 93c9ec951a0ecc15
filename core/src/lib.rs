//! Portico core: the engine every feature plugin builds on.
//!
//! **Plugins use [`plugin`] only**: it is the stable, documented surface (plugin API v1).
//! Everything else is internal to the portal and reachable from outside only through
//! `internal` (hidden from the docs), for the `portico` binary, core's own tests and the
//! benchmark tools; it carries no stability promise and is not for plugins.
//!
//! Request flow: Rocket route → guards (session → client → [`plugin::Page`]) → a tab's handler →
//! a serde view model → the theme chain → response with security headers.

pub mod plugin;

pub use error::{Error, Result};

/// Re-exported so plugins use the same versions as core.
pub use rocket;
pub use serde_json;

/// The engine's internals. Not part of the plugin API: a plugin that uses it is not a v1
/// plugin and may break with any release.
#[doc(hidden)]
pub mod internal;

pub(crate) use internal::{
    access, audit, auth, backup, client_ops, data_change, demo, documents, dylib, error, files,
    hooks, i18n, import, lockout, mail, menu, model, ops, passwords, portal, registry, render_pool,
    script, settings, stamp, store, tasks, text, theme, throttle, web,
};
