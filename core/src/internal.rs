//! The engine's internals. Not part of the plugin API (that is `portico_core::plugin`): a plugin
//! that uses anything here is not a v1 plugin and may break with any release. The modules keep
//! their files at the top of `src/`; `crate::<module>` paths are re-exported in lib.rs.

#[path = "access.rs"]
pub mod access;
#[path = "audit.rs"]
pub mod audit;
#[path = "auth.rs"]
pub mod auth;
#[path = "backup.rs"]
pub mod backup;
#[path = "client_ops.rs"]
pub mod client_ops;
#[path = "control.rs"]
pub mod control;
#[path = "demo.rs"]
pub mod demo;
#[path = "dylib.rs"]
pub mod dylib;
#[path = "error.rs"]
pub mod error;
#[path = "files.rs"]
pub mod files;
#[path = "hooks.rs"]
pub mod hooks;
#[path = "i18n.rs"]
pub mod i18n;
#[path = "import.rs"]
pub mod import;
#[path = "lockout.rs"]
pub mod lockout;
#[path = "mail.rs"]
pub mod mail;
#[path = "menu.rs"]
pub mod menu;
#[path = "model.rs"]
pub mod model;
#[path = "ops.rs"]
pub mod ops;
#[path = "passwords.rs"]
pub mod passwords;
#[path = "portal.rs"]
pub mod portal;
#[path = "registry.rs"]
pub mod registry;
#[path = "render_pool.rs"]
pub mod render_pool;
#[path = "script.rs"]
pub mod script;
#[path = "settings.rs"]
pub mod settings;
#[path = "store/mod.rs"]
pub mod store;
#[path = "tasks.rs"]
pub mod tasks;
#[path = "text.rs"]
pub mod text;
#[path = "theme.rs"]
pub mod theme;
#[path = "throttle.rs"]
pub mod throttle;
#[path = "web/mod.rs"]
pub mod web;

pub use portal::{Clock, DynamicPlugins, Portal, PortalOptions};
