//! Money arithmetic of billing per integration pair: billing periods, proration by day and
//! invoice totals. Pure and decimal throughout (`rust_decimal`), never floating point.
//!
//! A plan has a price per production pair per month and bills monthly or annually (twelve
//! months at once). A subscription's periods are anchored on the day it started: each period
//! starts the same day of the month (clamped to the month's last day, so an anchor on the
//! 31st gives 28 February) and lasts one or twelve months. Invoices are computed from the
//! segments of a period during which the plan and the number of pairs stayed the same; each
//! segment is prorated by day against the period's length in days, so a 31-day month, a
//! 28-day February and a 366-day leap year each charge exactly their days.

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

/// How often a plan is invoiced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// One invoice per month.
    Month,
    /// One invoice per twelve months, at twelve times the monthly price.
    Year,
}

impl Interval {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(value: &str) -> Option<Interval> {
        match value {
            "month" | "monthly" => Some(Interval::Month),
            "year" | "annual" | "yearly" => Some(Interval::Year),
            _ => None,
        }
    }

    /// Months in one period.
    pub fn months(self) -> u32 {
        match self {
            Interval::Month => 1,
            Interval::Year => 12,
        }
    }

    /// A human adverb: "monthly" or "annually".
    pub fn adverb(self) -> &'static str {
        match self {
            Interval::Month => "monthly",
            Interval::Year => "annually",
        }
    }
}

/// Why an amount could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    /// A date fell outside what the calendar arithmetic supports.
    #[error("date out of range")]
    DateOutOfRange,
    /// Segments must lie inside the period, in order, without overlapping.
    #[error("segment {0} does not fit the billing period")]
    BadSegment(usize),
    /// A price or tax rate was negative.
    #[error("{0} must not be negative")]
    Negative(&'static str),
    /// The amounts overflowed the decimal range.
    #[error("amount overflow")]
    Overflow,
}

/// One billing period: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// First day.
    pub start: NaiveDate,
    /// The day after the last day.
    pub end: NaiveDate,
}

impl Period {
    /// Days in the period.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// The last day (inclusive), for display.
    pub fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.end)
    }

    /// Whether `day` lies in the period.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day < self.end
    }
}

/// The `index`-th period (0 = the one starting on the anchor) of a subscription anchored on
/// `anchor`. Each start is computed from the anchor, never from the previous period, so
/// clamping to a short month's end does not drift (31 Jan, 28 Feb, 31 Mar, …).
pub fn nth_period(
    anchor: NaiveDate,
    interval: Interval,
    index: u32,
) -> Result<Period, BillingError> {
    let step = interval.months();
    let start = add_months(
        anchor,
        index
            .checked_mul(step)
            .ok_or(BillingError::DateOutOfRange)?,
    )?;
    let end = add_months(
        anchor,
        (index + 1)
            .checked_mul(step)
            .ok_or(BillingError::DateOutOfRange)?,
    )?;
    Ok(Period { start, end })
}

/// The period of a subscription anchored on `anchor` that contains `day` (the first period
/// when `day` is before the anchor).
pub fn period_containing(
    anchor: NaiveDate,
    interval: Interval,
    day: NaiveDate,
) -> Result<Period, BillingError> {
    if day < anchor {
        return nth_period(anchor, interval, 0);
    }
    let months = (day.year() - anchor.year()) * 12 + day.month0() as i32 - anchor.month0() as i32;
    let guess =
        u32::try_from(months.max(0)).map_err(|_| BillingError::DateOutOfRange)? / interval.months();
    // The guess is the right period or the one after it (clamping moves starts earlier only).
    let mut index = guess.saturating_sub(1);
    loop {
        let period = nth_period(anchor, interval, index)?;
        if period.contains(day) {
            return Ok(period);
        }
        if index > guess + 1 {
            return Err(BillingError::DateOutOfRange);
        }
        index += 1;
    }
}

fn add_months(day: NaiveDate, months: u32) -> Result<NaiveDate, BillingError> {
    day.checked_add_months(Months::new(months))
        .ok_or(BillingError::DateOutOfRange)
}

/// Decimal places of a currency's minor unit (ISO 4217): 0 for the yen and a few others, 2
/// otherwise.
pub fn minor_units(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "CLP" | "ISK" | "VND" | "UGX" | "XAF" | "XOF" => 0,
        _ => 2,
    }
}

/// Rounds to the currency's minor unit, half away from zero (the usual invoicing rule).
pub fn round_money(amount: Decimal, currency: &str) -> Decimal {
    amount.round_dp_with_strategy(
        minor_units(currency),
        RoundingStrategy::MidpointAwayFromZero,
    )
}

/// What a plan charges, as an invoice needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanTerms {
    /// Display name, e.g. "Connect".
    pub name: String,
    /// Price per production pair per month.
    pub price_per_pair: Decimal,
    /// ISO 4217 code.
    pub currency: String,
    /// Monthly or annual invoicing.
    pub interval: Interval,
}

/// A stretch of a period during which plan and pair count stayed the same: `from`
/// inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// First day.
    pub from: NaiveDate,
    /// The day after the last day.
    pub to: NaiveDate,
    /// The plan in effect.
    pub plan: PlanTerms,
    /// Production pairs subscribed.
    pub pairs: u32,
}

/// One invoice line: one production pair during one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// What is charged.
    pub description: String,
    /// Days charged.
    pub days: i64,
    /// Days in the billing period.
    pub period_days: i64,
    /// The full period's price of one pair on this plan.
    pub unit_price: Decimal,
    /// `unit_price × days / period_days`, rounded to the minor unit.
    pub amount: Decimal,
}

/// A computed invoice, before it is numbered and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceDraft {
    /// The period invoiced.
    pub period: Period,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// Lines in order.
    pub lines: Vec<Line>,
    /// Sum of the lines.
    pub subtotal: Decimal,
    /// Tax rate as a fraction (0.2 = 20 %).
    pub tax_rate: Decimal,
    /// `subtotal × tax_rate`, rounded to the minor unit.
    pub tax: Decimal,
    /// `subtotal + tax`.
    pub total: Decimal,
}

/// The full period's price of one pair: the monthly price times the period's months.
pub fn period_price(plan: &PlanTerms, period_interval: Interval) -> Decimal {
    plan.price_per_pair * Decimal::from(period_interval.months())
}

/// Builds the invoice of `period` from its segments (in order, inside the period, not
/// overlapping; days not covered are not charged). The period's interval decides how many
/// months a full period charges; every segment is prorated by day against the period's days.
/// Totals are exactly the sum of the rounded lines plus the rounded tax.
pub fn build_invoice(
    period: Period,
    period_interval: Interval,
    currency: &str,
    segments: &[Segment],
    tax_rate: Decimal,
) -> Result<InvoiceDraft, BillingError> {
    if tax_rate.is_sign_negative() && !tax_rate.is_zero() {
        return Err(BillingError::Negative("the tax rate"));
    }
    let period_days = period.days();
    if period_days <= 0 {
        return Err(BillingError::DateOutOfRange);
    }
    let mut lines = Vec::new();
    let mut previous_end = period.start;
    for (index, segment) in segments.iter().enumerate() {
        if segment.from < previous_end || segment.to < segment.from || segment.to > period.end {
            return Err(BillingError::BadSegment(index));
        }
        previous_end = segment.to;
        if segment.plan.price_per_pair.is_sign_negative() && !segment.plan.price_per_pair.is_zero()
        {
            return Err(BillingError::Negative("the price per pair"));
        }
        let days = (segment.to - segment.from).num_days();
        if days == 0 || segment.pairs == 0 {
            continue;
        }
        let unit_price = period_price(&segment.plan, period_interval);
        let amount = unit_price
            .checked_mul(Decimal::from(days))
            .and_then(|v| v.checked_div(Decimal::from(period_days)))
            .ok_or(BillingError::Overflow)?;
        let amount = round_money(amount, currency);
        let full = days == period_days;
        let last = segment.to.pred_opt().unwrap_or(segment.to);
        for pair in 1..=segment.pairs {
            let description = if full {
                format!(
                    "Production pair {pair} of {} · {} plan · {} – {}",
                    segment.pairs, segment.plan.name, segment.from, last
                )
            } else {
                format!(
                    "Production pair {pair} of {} · {} plan · {} – {} ({days} of {period_days} days)",
                    segment.pairs, segment.plan.name, segment.from, last
                )
            };
            lines.push(Line {
                description,
                days,
                period_days,
                unit_price,
                amount,
            });
        }
    }
    let subtotal = lines
        .iter()
        .try_fold(Decimal::ZERO, |sum, line| sum.checked_add(line.amount))
        .ok_or(BillingError::Overflow)?;
    let tax = round_money(
        subtotal
            .checked_mul(tax_rate)
            .ok_or(BillingError::Overflow)?,
        currency,
    );
    let total = subtotal.checked_add(tax).ok_or(BillingError::Overflow)?;
    Ok(InvoiceDraft {
        period,
        currency: currency.to_owned(),
        lines,
        subtotal,
        tax_rate,
        tax,
        total,
    })
}

/// A subscription state from a day on: what the change log records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The first day it applies.
    pub effective_on: NaiveDate,
    /// The plan from then on.
    pub plan: PlanTerms,
    /// The pairs from then on.
    pub pairs: u32,
}

/// Cuts `period` into segments from a change log (any order; the latest change effective on
/// or before a day wins; days before the first change are not charged).
pub fn segments_from_changes(period: Period, changes: &[Change]) -> Vec<Segment> {
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| c.effective_on);
    // Of several changes effective the same day, the last recorded wins.
    let mut boundaries: Vec<&Change> = Vec::new();
    for change in sorted {
        if let Some(last) = boundaries.last()
            && last.effective_on == change.effective_on
        {
            boundaries.pop();
        }
        boundaries.push(change);
    }
    let mut segments = Vec::new();
    for (index, change) in boundaries.iter().enumerate() {
        let from = change.effective_on.max(period.start);
        let to = boundaries
            .get(index + 1)
            .map_or(period.end, |next| next.effective_on.min(period.end));
        if from >= to {
            continue;
        }
        segments.push(Segment {
            from,
            to,
            plan: change.plan.clone(),
            pairs: change.pairs,
        });
    }
    segments
}

/// The share of an included volume used, in whole percent (saturating), for fair-use
/// thresholds. An included volume of zero counts as fully used once anything is used.
pub fn percent_used(used: i64, included: i64) -> i64 {
    if included <= 0 {
        return if used > 0 { 100 } else { 0 };
    }
    used.saturating_mul(100) / included
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn connect(interval: Interval) -> PlanTerms {
        PlanTerms {
            name: "Connect".into(),
            price_per_pair: dec!(599),
            currency: "USD".into(),
            interval,
        }
    }

    fn one(period: Period, plan: PlanTerms, pairs: u32, tax: Decimal) -> InvoiceDraft {
        let segment = Segment {
            from: period.start,
            to: period.end,
            plan: plan.clone(),
            pairs,
        };
        build_invoice(period, plan.interval, &plan.currency, &[segment], tax).expect("invoice")
    }

    #[test]
    fn periods_clamp_to_short_months_without_drifting() {
        let anchor = day(2026, 1, 31);
        let feb = nth_period(anchor, Interval::Month, 1).expect("period");
        assert_eq!(feb.start, day(2026, 2, 28));
        assert_eq!(feb.end, day(2026, 3, 31));
        let mar = nth_period(anchor, Interval::Month, 2).expect("period");
        assert_eq!(mar.start, day(2026, 3, 31));
        assert_eq!(
            period_containing(anchor, Interval::Month, day(2026, 3, 30)).expect("p"),
            feb
        );
        assert_eq!(
            period_containing(anchor, Interval::Month, day(2026, 3, 31)).expect("p"),
            mar
        );
    }

    #[test]
    fn leap_years_have_366_days_and_leap_februaries_29() {
        let year = nth_period(day(2028, 1, 1), Interval::Year, 0).expect("period");
        assert_eq!(year.days(), 366);
        let year = nth_period(day(2027, 1, 1), Interval::Year, 0).expect("period");
        assert_eq!(year.days(), 365);
        let feb = period_containing(day(2028, 1, 1), Interval::Month, day(2028, 2, 10)).expect("p");
        assert_eq!(feb.days(), 29);
        // An anchor on 29 February falls back to the 28th in common years.
        let next = nth_period(day(2028, 2, 29), Interval::Year, 1).expect("period");
        assert_eq!(next.start, day(2029, 2, 28));
    }

    #[test]
    fn a_full_month_charges_the_monthly_price_per_pair() {
        let period = nth_period(day(2026, 2, 1), Interval::Month, 0).expect("period");
        let invoice = one(period, connect(Interval::Month), 3, dec!(0));
        assert_eq!(invoice.lines.len(), 3);
        assert_eq!(invoice.subtotal, dec!(1797.00));
        assert_eq!(invoice.total, dec!(1797.00));
    }

    #[test]
    fn annual_billing_charges_twelve_months_at_once() {
        let period = nth_period(day(2026, 1, 1), Interval::Year, 0).expect("period");
        let invoice = one(period, connect(Interval::Year), 2, dec!(0.2));
        assert_eq!(invoice.lines[0].amount, dec!(7188));
        assert_eq!(invoice.subtotal, dec!(14376));
        assert_eq!(invoice.tax, dec!(2875.20));
        assert_eq!(invoice.total, dec!(17251.20));
    }

    #[test]
    fn proration_depends_on_the_month_length() {
        let plan = connect(Interval::Month);
        // 10 days of a 31-day January, of a 28-day February and of a 29-day leap February.
        for (start, end, expected) in [
            (day(2026, 1, 1), day(2026, 1, 11), dec!(193.23)), // 599 × 10 / 31 = 193.2258…
            (day(2026, 2, 1), day(2026, 2, 11), dec!(213.93)), // 599 × 10 / 28 = 213.9285…
            (day(2028, 2, 1), day(2028, 2, 11), dec!(206.55)), // 599 × 10 / 29 = 206.5517…
        ] {
            let period = period_containing(start, Interval::Month, start).expect("period");
            let segment = Segment {
                from: start,
                to: end,
                plan: plan.clone(),
                pairs: 1,
            };
            let invoice = build_invoice(period, Interval::Month, "USD", &[segment], dec!(0))
                .expect("invoice");
            assert_eq!(invoice.total, expected, "{start}");
        }
    }

    #[test]
    fn adding_a_pair_mid_month_prorates_the_new_pair() {
        let period = nth_period(day(2026, 4, 1), Interval::Month, 0).expect("period"); // 30 days
        let plan = connect(Interval::Month);
        let changes = [
            Change {
                effective_on: day(2026, 3, 1),
                plan: plan.clone(),
                pairs: 1,
            },
            Change {
                effective_on: day(2026, 4, 16),
                plan: plan.clone(),
                pairs: 2,
            },
        ];
        let segments = segments_from_changes(period, &changes);
        assert_eq!(segments.len(), 2);
        let invoice = build_invoice(period, Interval::Month, "USD", &segments, dec!(0)).expect("i");
        // 1 pair × 15/30 + 2 pairs × 15/30 = 299.50 × 3.
        assert_eq!(invoice.lines.len(), 3);
        assert_eq!(invoice.subtotal, dec!(898.50));
    }

    #[test]
    fn a_plan_change_mid_period_prorates_both_plans() {
        let period = nth_period(day(2026, 6, 1), Interval::Month, 0).expect("period"); // 30 days
        let cheap = PlanTerms {
            name: "Starter".into(),
            price_per_pair: dec!(300),
            currency: "USD".into(),
            interval: Interval::Month,
        };
        let changes = [
            Change {
                effective_on: day(2026, 6, 1),
                plan: cheap,
                pairs: 1,
            },
            Change {
                effective_on: day(2026, 6, 21),
                plan: connect(Interval::Month),
                pairs: 1,
            },
        ];
        let segments = segments_from_changes(period, &changes);
        let invoice =
            build_invoice(period, Interval::Month, "USD", &segments, dec!(0.1)).expect("i");
        // 300 × 20/30 = 200.00; 599 × 10/30 = 199.666… → 199.67.
        assert_eq!(invoice.lines[0].amount, dec!(200.00));
        assert_eq!(invoice.lines[1].amount, dec!(199.67));
        assert_eq!(invoice.subtotal, dec!(399.67));
        assert_eq!(invoice.tax, dec!(39.97));
        assert_eq!(invoice.total, dec!(439.64));
    }

    #[test]
    fn zero_pair_tenants_owe_nothing() {
        let period = nth_period(day(2026, 1, 1), Interval::Month, 0).expect("period");
        let invoice = one(period, connect(Interval::Month), 0, dec!(0.25));
        assert!(invoice.lines.is_empty());
        assert_eq!(invoice.subtotal, Decimal::ZERO);
        assert_eq!(invoice.tax, Decimal::ZERO);
        assert_eq!(invoice.total, Decimal::ZERO);
    }

    #[test]
    fn days_before_the_first_change_are_free_and_same_day_changes_keep_the_last() {
        let period = nth_period(day(2026, 1, 1), Interval::Month, 0).expect("period");
        let plan = connect(Interval::Month);
        let changes = [
            Change {
                effective_on: day(2026, 1, 11),
                plan: plan.clone(),
                pairs: 5,
            },
            Change {
                effective_on: day(2026, 1, 11),
                plan,
                pairs: 1,
            },
        ];
        let segments = segments_from_changes(period, &changes);
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].pairs, 1);
        assert_eq!(segments[0].from, day(2026, 1, 11));
    }

    #[test]
    fn overlapping_segments_are_refused() {
        let period = nth_period(day(2026, 1, 1), Interval::Month, 0).expect("period");
        let plan = connect(Interval::Month);
        let a = Segment {
            from: day(2026, 1, 1),
            to: day(2026, 1, 20),
            plan: plan.clone(),
            pairs: 1,
        };
        let b = Segment {
            from: day(2026, 1, 10),
            to: day(2026, 2, 1),
            plan,
            pairs: 1,
        };
        assert_eq!(
            build_invoice(period, Interval::Month, "USD", &[a, b], dec!(0)),
            Err(BillingError::BadSegment(1))
        );
    }

    #[test]
    fn zero_decimal_currencies_round_to_whole_units() {
        let period = nth_period(day(2026, 1, 1), Interval::Month, 0).expect("period");
        let plan = PlanTerms {
            name: "Connect".into(),
            price_per_pair: dec!(90000),
            currency: "JPY".into(),
            interval: Interval::Month,
        };
        let segment = Segment {
            from: day(2026, 1, 1),
            to: day(2026, 1, 11),
            plan,
            pairs: 1,
        };
        let invoice =
            build_invoice(period, Interval::Month, "JPY", &[segment], dec!(0.1)).expect("i");
        assert_eq!(invoice.subtotal, dec!(29032)); // 90000 × 10 / 31 = 29032.26
        assert_eq!(invoice.tax, dec!(2903));
    }

    #[test]
    fn fair_use_percentages() {
        assert_eq!(percent_used(0, 0), 0);
        assert_eq!(percent_used(1, 0), 100);
        assert_eq!(percent_used(799, 1000), 79);
        assert_eq!(percent_used(800, 1000), 80);
        assert_eq!(percent_used(i64::MAX, 10), i64::MAX / 10);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn plan_strategy() -> impl Strategy<Value = PlanTerms> {
            (0u64..1_000_000, any::<bool>()).prop_map(|(cents, annual)| PlanTerms {
                name: "P".into(),
                price_per_pair: Decimal::new(i64::try_from(cents).unwrap_or(0), 2),
                currency: "USD".into(),
                interval: if annual {
                    Interval::Year
                } else {
                    Interval::Month
                },
            })
        }

        proptest! {
            #[test]
            fn totals_equal_the_sum_of_lines_plus_tax(
                start_offset in 0i64..3000,
                annual in any::<bool>(),
                changes in proptest::collection::vec((0i64..400, plan_strategy(), 0u32..6), 1..6),
                tax_bp in 0i64..5000,
            ) {
                let anchor = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default() + chrono::Duration::days(start_offset);
                let interval = if annual { Interval::Year } else { Interval::Month };
                let period = nth_period(anchor, interval, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let log: Vec<Change> = changes
                    .into_iter()
                    .map(|(offset, plan, pairs)| Change {
                        effective_on: anchor + chrono::Duration::days(offset % period.days()),
                        plan,
                        pairs,
                    })
                    .collect();
                let segments = segments_from_changes(period, &log);
                let tax_rate = Decimal::new(tax_bp, 4);
                let invoice = build_invoice(period, interval, "USD", &segments, tax_rate)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let sum: Decimal = invoice.lines.iter().map(|l| l.amount).sum();
                prop_assert_eq!(invoice.subtotal, sum);
                prop_assert_eq!(invoice.total, invoice.subtotal + invoice.tax);
                prop_assert_eq!(invoice.tax, round_money(invoice.subtotal * tax_rate, "USD"));
                for line in &invoice.lines {
                    prop_assert!(line.amount <= line.unit_price);
                    prop_assert!(line.amount >= Decimal::ZERO);
                    prop_assert_eq!(line.amount.scale() <= 2, true);
                }
                // Days charged never exceed the period.
                let charged: i64 = segments.iter().map(|s| (s.to - s.from).num_days()).sum();
                prop_assert!(charged <= period.days());
            }

            #[test]
            fn a_period_split_anywhere_costs_the_full_price_within_a_cent(
                start_offset in 0i64..3000,
                split in 1i64..365,
                cents in 0i64..10_000_000,
                annual in any::<bool>(),
            ) {
                let anchor = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default() + chrono::Duration::days(start_offset);
                let interval = if annual { Interval::Year } else { Interval::Month };
                let period = nth_period(anchor, interval, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let split = anchor + chrono::Duration::days(split % (period.days() - 1) + 1);
                let plan = PlanTerms { name: "P".into(), price_per_pair: Decimal::new(cents, 2), currency: "USD".into(), interval };
                let full_price = period_price(&plan, interval);
                let whole = build_invoice(period, interval, "USD", &[Segment { from: period.start, to: period.end, plan: plan.clone(), pairs: 1 }], Decimal::ZERO)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let parts = build_invoice(period, interval, "USD", &[
                    Segment { from: period.start, to: split, plan: plan.clone(), pairs: 1 },
                    Segment { from: split, to: period.end, plan, pairs: 1 },
                ], Decimal::ZERO).map_err(|e| TestCaseError::fail(e.to_string()))?;
                // A full period charges exactly the period's price, to the cent.
                prop_assert_eq!(whole.total, full_price);
                prop_assert!((whole.total - parts.total).abs() <= Decimal::new(1, 2));
            }
        }
    }
}
