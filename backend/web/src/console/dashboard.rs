//! The tenant dashboard: each pair's state and today's figures, and a chart of the last 24
//! hours of runs drawn on the server as inline SVG (no script, readable by screen readers).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use chrono::{DateTime, Utc};
use syncline_store::{HourlyRuns, PairActivity, TenantId};

use super::{Chrome, PageResult, page_err};
use crate::auth::ConsoleActor;
use crate::{AppError, AppState};

/// Chart size in SVG units; it scales to the card's width.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
/// Room for the legend above and the axis labels left and below.
const TOP: f64 = 34.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const BOTTOM: f64 = 28.0;
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M UTC";

/// A pair as its dashboard card shows it.
pub(crate) struct PairCard {
    pub id: String,
    pub name: String,
    pub status: &'static str,
    pub pause_reason: String,
    pub events_today: i64,
    pub success_rate: String,
    pub backlog: i64,
    pub last_error: String,
    pub last_error_run: String,
    pub last_error_at: String,
    pub last_success: String,
}

/// One coloured part of an hour's bar.
pub(crate) struct Segment {
    pub y: String,
    pub height: String,
    pub class: &'static str,
    pub label: String,
}

/// One hour's bar.
pub(crate) struct Bar {
    pub x: String,
    pub width: String,
    pub segments: Vec<Segment>,
}

/// A label on an axis, with its position.
pub(crate) struct Tick {
    pub at: String,
    pub text: String,
}

/// The last 24 hours as a stacked bar chart.
pub(crate) struct Chart {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right_edge: f64,
    pub baseline: f64,
    pub label_y: f64,
    pub middle_y: f64,
    pub bars: Vec<Bar>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub summary: String,
    pub total: i64,
}

/// The smallest of 1, 2, 5, 10, 20, 50, … at or above `value`, so the axis reads in round numbers.
fn nice_ceiling(value: i64) -> i64 {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if step * factor >= value {
                return step * factor;
            }
        }
        step = step.saturating_mul(10);
    }
}

fn units(value: f64) -> String {
    format!("{value:.1}")
}

fn chart(hours: &[HourlyRuns]) -> Chart {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let baseline = HEIGHT - BOTTOM;
    let peak = hours
        .iter()
        .map(|h| h.succeeded + h.failed + h.other)
        .max()
        .unwrap_or(0);
    let scale_max = nice_ceiling(peak.max(1));
    let slot = plot_width / hours.len().max(1) as f64;
    let bar_width = slot * 0.7;
    let per_run = plot_height / scale_max as f64;
    let bars = hours
        .iter()
        .enumerate()
        .map(|(index, hour)| {
            let span = format!(
                "{}–{}",
                hour.hour.format("%H:%M"),
                (hour.hour + chrono::Duration::hours(1)).format("%H:%M UTC")
            );
            let mut top = baseline;
            let segments = [
                (hour.succeeded, "succeeded", "succeeded"),
                (hour.failed, "failed", "failed or dead"),
                (hour.other, "other", "queued, running or retrying"),
            ]
            .into_iter()
            .filter(|(count, ..)| *count > 0)
            .map(|(count, class, name)| {
                let height = count as f64 * per_run;
                top -= height;
                Segment {
                    y: units(top),
                    height: units(height),
                    class,
                    label: format!("{span}: {count} {name}"),
                }
            })
            .collect();
            Bar {
                x: units(LEFT + slot * index as f64 + (slot - bar_width) / 2.0),
                width: units(bar_width),
                segments,
            }
        })
        .collect();
    let y_ticks = [0, scale_max / 2, scale_max]
        .into_iter()
        .filter(|value| *value == 0 || *value == scale_max || scale_max % 2 == 0)
        .map(|value| Tick {
            at: units(baseline - value as f64 * per_run),
            text: value.to_string(),
        })
        .collect();
    let x_ticks = hours
        .iter()
        .enumerate()
        // Every third hour, counted back from the current one so the newest bar is labelled.
        .filter(|(index, _)| (hours.len() - 1 - index).is_multiple_of(3))
        .map(|(index, hour)| Tick {
            at: units(LEFT + slot * index as f64 + slot / 2.0),
            text: hour.hour.format("%H:00").to_string(),
        })
        .collect();
    let sum = |pick: fn(&HourlyRuns) -> i64| hours.iter().map(pick).sum::<i64>();
    let (succeeded, failed, other) = (sum(|h| h.succeeded), sum(|h| h.failed), sum(|h| h.other));
    let total = succeeded + failed + other;
    Chart {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right_edge: WIDTH - RIGHT,
        baseline,
        label_y: HEIGHT - 8.0,
        middle_y: TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        bars,
        y_ticks,
        x_ticks,
        summary: format!(
            "{total} runs in the last 24 hours: {succeeded} succeeded, {failed} failed or dead, {other} other (queued, running or retrying)."
        ),
        total,
    }
}

fn card(pair: syncline_store::Pair, activity: Option<&PairActivity>) -> PairCard {
    let none = PairActivity {
        pair_id: pair.id,
        events_today: 0,
        succeeded_today: 0,
        failed_today: 0,
        backlog: 0,
        last_success_at: None,
        last_error: None,
    };
    let figures = activity.unwrap_or(&none);
    let finished = figures.succeeded_today + figures.failed_today;
    let success_rate = if finished == 0 {
        "—".to_owned()
    } else {
        // Rounded down, so a single failure never shows as 100 %.
        format!("{} %", figures.succeeded_today * 100 / finished)
    };
    let format = |at: Option<DateTime<Utc>>| {
        at.map(|at| at.format(TIME_FORMAT).to_string())
            .unwrap_or_default()
    };
    let (last_error_run, last_error, last_error_at) = match &figures.last_error {
        Some((run, error, at)) => (run.to_string(), error.clone(), format(Some(*at))),
        None => Default::default(),
    };
    PairCard {
        id: pair.id.to_string(),
        name: pair.name,
        status: pair.status.as_str(),
        pause_reason: pair.pause_reason.unwrap_or_default(),
        events_today: figures.events_today,
        success_rate,
        backlog: figures.backlog,
        last_error,
        last_error_run,
        last_error_at,
        last_success: format(figures.last_success_at),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    members: usize,
    keys: usize,
    pairs: Vec<PairCard>,
    chart: Chart,
}

/// `GET /console`: the tenant's dashboard, or where to go when no tenant is chosen.
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    let Some(context) = actor.tenant.as_ref() else {
        let user_tenants = match &actor.user {
            Some(user) => state
                .store
                .memberships_of(user.id)
                .await
                .map_err(|e| page_err(e.into()))?
                .len(),
            None => 0,
        };
        if actor.is_platform_admin() && user_tenants == 0 {
            return Ok(Redirect::to("/console/admin/tenants").into_response());
        }
        return Ok(Redirect::to("/console/select-tenant").into_response());
    };
    let tenant: TenantId = context.tenant.id;
    let store = &state.store;
    let members = store
        .tenant_members(tenant)
        .await
        .map_err(|e| page_err(e.into()))?
        .len();
    let keys = store
        .list_api_keys(tenant)
        .await
        .map_err(|e| page_err(e.into()))?
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .count();
    let now = Utc::now();
    // "Today" is the UTC day, like every time the console shows.
    let day_start = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|midnight| midnight.and_utc())
        .ok_or_else(|| page_err(AppError::Internal("no midnight today".into())))?;
    let activity = store
        .run_activity(tenant, day_start, now)
        .await
        .map_err(|e| page_err(e.into()))?;
    let pairs = store
        .list_pairs(tenant)
        .await
        .map_err(|e| page_err(e.into()))?
        .into_iter()
        .map(|pair| {
            let figures = activity.pairs.iter().find(|a| a.pair_id == pair.id);
            card(pair, figures)
        })
        .collect();
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    Ok(DashboardPage {
        chrome,
        members,
        keys,
        pairs,
        chart: chart(&activity.hours),
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_reads_in_round_numbers() {
        let ceilings: Vec<i64> = [1, 2, 3, 6, 11, 99, 101].map(nice_ceiling).to_vec();
        assert_eq!(ceilings, [1, 2, 5, 10, 20, 100, 200]);
    }

    #[test]
    fn bars_stack_from_the_baseline_and_the_tallest_fills_the_plot() {
        let start = DateTime::from_timestamp(0, 0).unwrap_or_default();
        let hours: Vec<HourlyRuns> = (0..24)
            .map(|h| HourlyRuns {
                hour: start + chrono::Duration::hours(h),
                succeeded: if h == 23 { 3 } else { 0 },
                failed: if h == 23 { 2 } else { 0 },
                other: 0,
            })
            .collect();
        let chart = chart(&hours);
        assert_eq!(chart.total, 5);
        assert_eq!(chart.bars.len(), 24);
        let last = &chart.bars[23].segments;
        assert_eq!(last.len(), 2);
        assert_eq!(last[0].class, "succeeded");
        assert_eq!(last[1].y, units(TOP), "5 of 5 reaches the top of the plot");
        assert!(last[1].label.contains("23:00–00:00 UTC: 2 failed or dead"));
    }
}
