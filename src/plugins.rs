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

#[cfg(test)]
mod tests {
    use portico_core::internal::registry::Registry;
    use portico_core::plugin::message_ids;

    /// Every compiled-in plugin defines the same messages in English and in Czech (core's own
    /// are checked in core), so no page shows a message id in one of the languages.
    #[test]
    fn every_plugin_defines_the_same_messages_in_english_and_czech() {
        for plugin in super::compiled_in() {
            let id = plugin.manifest().id;
            let mut registry = Registry::default();
            registry.register(plugin.as_ref()).expect("registers");
            let ids = |lang: &str| {
                let mut ids: Vec<String> = registry
                    .translations
                    .iter()
                    .filter(|(l, _)| *l == lang)
                    .flat_map(|(_, ftl)| message_ids(ftl))
                    .collect();
                ids.sort();
                ids
            };
            let (en, cs) = (ids("en"), ids("cs"));
            assert!(!en.is_empty(), "{id} has no English messages");
            let only = |a: &[String], b: &[String]| -> Vec<String> {
                a.iter().filter(|m| !b.contains(m)).cloned().collect()
            };
            assert!(
                en == cs,
                "{id}: only in English {:?}, only in Czech {:?}",
                only(&en, &cs),
                only(&cs, &en)
            );
        }
    }
}
