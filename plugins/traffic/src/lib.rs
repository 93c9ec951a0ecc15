//! The Traffic tab: per-service traffic counters (imported with `portico traffic import FILE`
//! or the import bundle's `traffic` section), drawn as a server-rendered SVG chart per day,
//! week, month or year with totals and a table; the tariff's FUP limits with what is used; and
//! FUP e-mails a client may opt in to.
//!
//! Built only on portico-core's plugin API v1 (`portico_core::plugin`).

mod chart;
mod demo;
mod fup;
mod ingest;
mod store;
mod web;

use std::sync::Arc;

use portico_core::plugin::{
    CommandArgs, Error, Manifest, OperatorCommand, OperatorCtx, Plugin, Registrar, Result,
    ServiceButton, SettingDef, Tab,
};

pub const ID: &str = "traffic";

pub struct Traffic;

/// The plugin's one public constructor.
pub fn plugin() -> Box<dyn Plugin> {
    Box::new(Traffic)
}

impl Plugin for Traffic {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: ID,
            name: "Traffic",
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.setting(SettingDef::int(
            store::RAW_DAYS,
            7,
            1,
            366,
            "Days of 5-minute traffic samples kept as they came (the day view draws them; older days are kept as hours and days).",
        ));
        r.tab(
            Tab::new("traffic", "traffic-tab", "/traffic/")
                .icon("traffic")
                .order(25)
                .visible_when(|v| {
                    v.flag("ci_display_graph_tab")
                        && v.services()
                            .map(|s| s.iter().any(web::shown))
                            .unwrap_or(false)
                }),
        );
        r.service_button(ServiceButton {
            id: "traffic",
            title_key: "traffic-data-transferred",
            order: 10,
            href: Arc::new(|v, s| {
                (v.flag("ci_display_graph_tab") && web::shown(s))
                    .then(|| format!("/traffic/{}", s.service.id))
            }),
        });
        r.routes(web::routes());
        r.template("traffic.html", include_str!("../templates/traffic.html"));
        r.asset("traffic.css", &include_bytes!("../static/traffic.css")[..]);
        r.translations("en", include_str!("../i18n/en.ftl"));
        r.translations("cs", include_str!("../i18n/cs.ftl"));
        r.import_section("traffic", ingest::import_section);
        r.command(OperatorCommand {
            name: "traffic",
            about: "import FILE [--dry-run]: traffic samples (CSV service_id,time,down,up or JSON lines)",
            run: Arc::new(command),
        });
        r.demo(demo::seed);
        r.on_client_deleted(store::forget_client);
        r.migration(
            1,
            "traffic: one record per service and day (with its hours and 5-minute samples) instead of one per sample and per hour",
            store::migrate_to_day_records,
        );
    }
}

const USAGE: &str = "usage: portico traffic import FILE [--dry-run]\n  FILE: CSV lines `service_id,time,down,up` (time RFC 3339 or Unix seconds; a header line is skipped) or JSON lines {\"service_id\":…,\"time\":…,\"down\":…,\"up\":…}";

fn command(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = CommandArgs::parse(args, &[], &["--dry-run"], USAGE)?;
    match a
        .words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["import", file] => ingest::import_file(ctx, file, a.flag("--dry-run")),
        _ => Err(Error::Invalid(USAGE.into())),
    }
}
