//! The compiled-in feature plugins, in the order they register (and their tabs' hooks run).

use portico_core::plugin::Plugin;

#[cfg(feature = "bench-plugins")]
#[path = "bench_plugin.rs"]
mod bench_plugin;

pub fn compiled_in() -> Vec<Box<dyn Plugin>> {
    vec![
        portico_invoicing::plugin(),
        portico_gdpr::plugin(),
        portico_helpdesk::plugin(),
        portico_traffic::plugin(),
        portico_sms::plugin(),
        #[cfg(feature = "bench-plugins")]
        bench_plugin::plugin(),
    ]
}
