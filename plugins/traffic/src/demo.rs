//! Demo data: 90 days of 5-minute traffic for alice's and bob's Internet services, with a
//! daily curve (quiet at night, busy in the evening) and alice near her FUP limit this month.

use portico_core::plugin::{OperatorCtx, Result, ServiceKind};

use crate::fup;
use crate::ingest::{At, Importer, Rec};
use crate::store::{self, DAY, SLOT};

const DAYS: i64 = 90;

/// Share of a day's traffic in each hour (UTC), summing to 1000.
const CURVE: [u32; 24] = [
    20, 12, 8, 6, 6, 8, 14, 24, 32, 36, 40, 42, 46, 46, 48, 52, 58, 66, 78, 90, 96, 80, 54, 34,
];

/// A small deterministic generator (the demo looks the same every time).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    /// A factor between 0.75 and 1.25.
    fn jitter(&mut self) -> f64 {
        0.75 + (self.next() % 1000) as f64 / 2000.0
    }
}

pub fn seed(ctx: &OperatorCtx<'_>) -> Result<()> {
    let now = ctx.now().timestamp();
    let last = store::floor(now, SLOT) - SLOT;
    let first = store::floor(now, DAY) - DAYS * DAY;
    let month = fup::unix(fup::month_start(ctx.now().date_naive()));
    let mut imp = Importer::new(ctx, false);
    for (who, daily_gb, near_fup) in [("alice", 4.0, true), ("bob", 9.0, false)] {
        let client = ctx.find_client(who)?;
        let services = ctx.client_data(&client).services()?;
        let Some(s) = services
            .iter()
            .find(|s| s.service.kind == ServiceKind::Internet)
        else {
            continue;
        };
        // Near the limit: this month's samples add up to 92 % of the first FUP limit.
        let limit = s
            .tariff
            .as_ref()
            .and_then(|t| t.fup_limits.first())
            .map(fup::limit_bytes)
            .filter(|_| near_fup);
        let month_weight: f64 = (month.max(first)..=last)
            .step_by(SLOT as usize)
            .map(|t| f64::from(CURVE[((t % DAY) / 3600) as usize]))
            .sum();
        let mut rng = Lcg(s.service.id);
        let mut t = first;
        while t <= last {
            let w = f64::from(CURVE[((t % DAY) / 3600) as usize]);
            let total = match limit {
                Some(l) if t >= month => l as f64 * 0.92 * w / month_weight.max(1.0),
                _ => daily_gb * 1e9 * w / 1000.0 / 12.0,
            } * rng.jitter();
            let down = total * 0.88;
            let up = total * 0.12 * rng.jitter();
            imp.take(
                At::Item(0),
                Ok(Rec {
                    service: i128::from(s.service.id),
                    time: t,
                    down: down as i128,
                    up: up as i128,
                }),
            )?;
            t += SLOT;
        }
    }
    imp.finish(std::time::Instant::now()).map(|_| ())
}
