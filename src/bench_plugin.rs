//! Benchmark-only compiled-in plugin (`--features bench-plugins`): `outage-native`, the page of
//! the dynamic example `examples/outage-notice` built on the plugin API v1 instead of the C ABI,
//! so `bench/plugins.sh` can compare the same page served both ways. Never in a normal build.

use portico_core::plugin::{Manifest, Page, PageHtml, Plugin, Registrar, SettingDef, Tab};
use portico_core::rocket::{get, routes};
use serde::Serialize;

pub const ID: &str = "outage-native";
const TAB: &str = "outages-native";
const TEXT: &str = "outage_native_text";

/// examples/outage-notice/templates/outages.html with this plugin's message ids.
const TEMPLATE: &str = r#"{% extends "layout.html" %}
{% block title %}{{ t(key="outage-native-tab") }} – {{ portal_name }}{% endblock %}
{% block content %}
<h1>{{ t(key="outage-native-tab") }}</h1>
<section class="card" aria-labelledby="outage-heading">
  <h2 id="outage-heading">{{ t(key="outage-native-current") }}</h2>
  <p class="outage-notice">{{ page.text }}</p>
</section>
{% endblock %}
"#;
const EN: &str = "outage-native-tab = Outages\noutage-native-current = Current outage\n";
const CS: &str = "outage-native-tab = Výpadky\noutage-native-current = Aktuální výpadek\n";

pub struct OutageNative;

pub fn plugin() -> Box<dyn Plugin> {
    Box::new(OutageNative)
}

impl Plugin for OutageNative {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: ID,
            name: "Outage notice (compiled-in, benchmark only)",
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.setting(
            SettingDef::text(
                TEXT,
                "",
                "Benchmark only: text of the compiled-in outage notice; its tab is hidden while it is empty.",
            )
            .per_invoice_group(),
        );
        // The dynamic example's tab: icon = its id there, order 500 (the SDK's default).
        r.tab(
            Tab::new(TAB, "outage-native-tab", format!("/{ID}/"))
                .icon("outages")
                .order(500)
                .visible_when(|v| v.is_on(TEXT)),
        );
        r.routes(routes![outages]);
        r.template("outages.html", TEMPLATE);
        r.translations("en", EN);
        r.translations("cs", CS);
    }
}

#[derive(Serialize)]
struct View {
    text: String,
}

#[get("/")]
fn outages(page: Page<'_>) -> Result<PageHtml, portico_core::Error> {
    // Like a dynamic plugin's pages: 404 while its tab is hidden for this client.
    if !page.tab_visible(TAB) {
        return Err(portico_core::Error::NotFound("outage-native tab".into()));
    }
    let view = View {
        text: page.text(TEXT),
    };
    page.render(TAB, "outages.html", &view)
}
