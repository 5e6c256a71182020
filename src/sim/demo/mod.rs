//! A deterministic demo organization for the simulator.
//!
//! [`demo_store`] builds a [`Store`] that looks like a mid-sized digital
//! agency two years into using Productive: people and client companies,
//! projects with folders, task lists and thousands of tasks, sales deals and
//! budgets with their services, time entries, bookings, invoices, expenses,
//! comments, custom fields and an activity feed.
//!
//! Records are written the way the real API writes them (see
//! `productive-api.md`, sections 3 and 14): ids as strings, money in
//! integer cents (JSON floats on services), decimals as strings, timestamps
//! with milliseconds and a Central European offset. Every record of every
//! served resource carries every catalog attribute: the generators set the
//! values that matter by hand and the `fill` module completes the rest from
//! the catalog, so a new catalog attribute is never missing from the demo
//! data. `organization` links every record whose resource declares it.
//!
//! The same [`DemoOptions`] always give the same store: all randomness comes
//! from one seeded ChaCha stream and "now" is the fixed [`DEMO_NOW`]. Ids are
//! allocated in generation order from just above [`DEMO_ORGANIZATION_ID`].
//!
//! Known gaps:
//!
//! - Only served resources get records. Relationships to resources the
//!   gateway does not serve (attachments, todos, roles, tax rates ...) stay
//!   empty, and no custom field has the attachment type (7).
//! - People carry no `person_type` attribute, as in the real API; use
//!   [`person_type`] to derive it.
//! - Time entry costs are in the organization currency; the activity feed
//!   covers tasks, deals, budgets, projects, companies, contacts and
//!   invoices, and deleted items appear only there.
//! - The store keeps every non-NULL attribute as its own JSON value under
//!   an interned name, and relationships as linkage: about 6 KB per record
//!   as `productive-pg bench` measures it, so scale 10 takes some 2.7 GB.
//!
//! Collaborators: [`crate::catalog`] for the attribute lists and
//! [`crate::sim::store`] for the record store the simulator serves.

mod custom;
mod feed;
mod fill;
mod names;
mod people;
mod sales;
mod work;

#[cfg(test)]
mod tests;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::sim::store::{Record, Ref, Store};

use self::custom::FieldSet;
use self::fill::Shape;

/// The id of the demo organization (the `organizations` record and the
/// `X-Organization-Id` a client sends to the simulator).
pub const DEMO_ORGANIZATION_ID: u64 = 4_200;

/// The demo organization's name.
pub const DEMO_ORGANIZATION_NAME: &str = "Brightloom Studio";

/// The fixed "now" of the demo data; no timestamp lies after it.
pub const DEMO_NOW: &str = "2026-11-30T12:00:00.000+01:00";

/// The e-mail domain of the agency's own employees. Client contacts use
/// invented domains under the reserved `.example` top-level domain.
pub const DEMO_EMAIL_DOMAIN: &str = "brightloom.example";

/// The organization's default currency: every `_default` and `_normalized`
/// money value is in this currency.
pub const DEMO_DEFAULT_CURRENCY: &str = "EUR";

/// How big and which demo organization to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOptions {
    /// Multiplies the volume of transactional records (tasks, time entries,
    /// bookings, deals, invoices, comments, activities ...). People and
    /// companies grow with the square root of the scale. `0` counts as `1`.
    pub scale: u32,
    /// Seed of the random stream; the same seed gives the same store.
    pub seed: u64,
    /// Tasks to generate instead of the scale's 5,000 per unit (`None`:
    /// the scale decides), for organizations with a very large task list.
    pub tasks: Option<usize>,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions {
            scale: 1,
            seed: 42,
            tasks: None,
        }
    }
}

/// Builds the demo organization.
///
/// At scale 1 the store holds about 300 people, 150 companies, 200
/// projects, 500 deals and budgets, 1,000 services, 5,000 tasks, 20,000
/// time entries, 3,000 bookings, 600 invoices, 800 expenses, 3,000 comments
/// and 5,000 activities.
pub fn demo_store(options: &DemoOptions) -> Store {
    let started = std::time::Instant::now();
    let mut generator = Generator::new(options);
    generator.build();
    tracing::debug!(
        scale = options.scale,
        seed = options.seed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "built demo organization"
    );
    generator.store
}

/// The person type the API derives for a `people` record: 1 user, 2
/// contact, 3 placeholder (what `filter[person_type]` matches).
///
/// The real API sends no `person_type` attribute, so the demo data keeps it
/// implicit in `is_user`, `placeholder` and `hrm_type_id`.
pub fn person_type(person: &Record) -> Option<u8> {
    let flag = |name: &str| person.attributes.get(name).and_then(Value::as_bool);
    if flag("placeholder") == Some(true) {
        Some(3)
    } else if flag("is_user") == Some(true) {
        Some(1)
    } else if person.attributes.get("hrm_type_id").and_then(Value::as_u64) == Some(2) {
        Some(2)
    } else {
        None
    }
}

/// Record counts at a scale.
#[derive(Debug, Clone, Copy)]
struct Volumes {
    employees: usize,
    companies: usize,
    contacts: usize,
    projects: usize,
    deals: usize,
    tasks: usize,
    time_entries: usize,
    bookings: usize,
    invoices: usize,
    expenses: usize,
    comments: usize,
    activities: usize,
}

impl Volumes {
    fn at(scale: u32) -> Volumes {
        let s = scale.max(1) as usize;
        let slow = |base: usize| (base as f64 * (s as f64).sqrt()).round() as usize;
        Volumes {
            employees: slow(85),
            companies: slow(150),
            contacts: slow(205),
            projects: 200 * s,
            deals: 300 * s,
            tasks: 5_000 * s,
            time_entries: 20_000 * s,
            bookings: 3_000 * s,
            invoices: 600 * s,
            expenses: 800 * s,
            comments: 3_000 * s,
            activities: 5_000 * s,
        }
    }

    /// The volumes divided by `divisor`, keeping a few of everything: small
    /// organizations for tests that only compare stores.
    #[cfg(test)]
    fn divided(self, divisor: usize) -> Volumes {
        let d = |n: usize, floor: usize| (n / divisor).max(floor);
        Volumes {
            employees: d(self.employees, 8),
            companies: d(self.companies, 6),
            contacts: d(self.contacts, 8),
            projects: d(self.projects, 8),
            deals: d(self.deals, 8),
            tasks: d(self.tasks, 20),
            time_entries: d(self.time_entries, 20),
            bookings: d(self.bookings, 20),
            invoices: d(self.invoices, 10),
            expenses: d(self.expenses, 10),
            comments: d(self.comments, 20),
            activities: d(self.activities, 20),
        }
    }
}

/// Builds a demo organization with every volume divided by `divisor`.
#[cfg(test)]
fn small_demo_store(options: &DemoOptions, divisor: usize) -> Store {
    let mut generator = Generator::new(options);
    generator.volumes = generator.volumes.divided(divisor);
    generator.build();
    generator.store
}

/// The first day of the demo history (a Monday, two years before now).
fn history_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 12, 2).expect("valid date")
}

/// [`DEMO_NOW`] as local (Central European) time.
fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 30)
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .expect("valid time")
}

fn today() -> NaiveDate {
    now().date()
}

/// Whether Central European Summer Time applies at a local time: from the
/// last Sunday of March to the last Sunday of October.
fn is_summer_time(t: NaiveDateTime) -> bool {
    let last_sunday = |month: u32| {
        let mut d = NaiveDate::from_ymd_opt(t.year(), month, 31).expect("March and October");
        while d.weekday() != Weekday::Sun {
            d = d.pred_opt().expect("not the first day");
        }
        d
    };
    let begin = last_sunday(3).and_hms_opt(2, 0, 0).expect("valid time");
    let end = last_sunday(10).and_hms_opt(3, 0, 0).expect("valid time");
    t >= begin && t < end
}

/// Appends `n` as exactly `width` decimal digits.
fn push_digits(s: &mut String, n: u32, width: u32) {
    for i in (0..width).rev() {
        let digit = n / 10u32.pow(i) % 10;
        s.push(char::from(b'0' + digit as u8));
    }
}

/// Appends `YYYY-MM-DD`.
fn push_date(s: &mut String, d: NaiveDate) {
    push_digits(s, d.year() as u32, 4);
    s.push('-');
    push_digits(s, d.month(), 2);
    s.push('-');
    push_digits(s, d.day(), 2);
}

/// A timestamp as the API writes it: `2025-01-07T09:12:44.120+01:00`.
///
/// Written digit by digit rather than through `format!`: it runs for a
/// few attributes of every record, and the formatting machinery showed up
/// in profiles.
fn ts(t: NaiveDateTime) -> Value {
    let mut s = String::with_capacity(29);
    push_date(&mut s, t.date());
    s.push('T');
    push_digits(&mut s, t.hour(), 2);
    s.push(':');
    push_digits(&mut s, t.minute(), 2);
    s.push(':');
    push_digits(&mut s, t.second(), 2);
    s.push('.');
    push_digits(&mut s, t.nanosecond() / 1_000_000, 3);
    s.push_str(if is_summer_time(t) {
        "+02:00"
    } else {
        "+01:00"
    });
    Value::String(s)
}

/// A date as the API writes it: `2025-01-07`.
fn date(d: NaiveDate) -> Value {
    let mut s = String::with_capacity(10);
    push_date(&mut s, d);
    Value::String(s)
}

/// An id as a JSON string.
fn id_string(id: u64) -> Value {
    Value::String(id.to_string())
}

/// A decimal as the API writes it: a string with at least one fraction
/// digit (`"1.0"`, `"12.5"`), rounded to two places.
fn decimal(x: f64) -> Value {
    Value::String(format!("{:?}", (x * 100.0).round() / 100.0))
}

/// A money amount in cents as a JSON float, the way services carry money.
fn float_cents(cents: i64) -> Value {
    Value::from(cents as f64)
}

fn is_working_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Working days from `start` to `end`, both included.
fn working_days(start: NaiveDate, end: NaiveDate) -> i64 {
    let mut n = 0;
    let mut d = start;
    while d <= end {
        if is_working_day(d) {
            n += 1;
        }
        d += Duration::days(1);
    }
    n
}

/// A record under construction: the hand-set attribute values, the
/// relationships, and what the filler needs to complete the rest.
struct Draft {
    shape: &'static Shape,
    /// The id and relationships; attributes are assembled by `fill::complete`.
    record: Record,
    /// Hand-set values by attribute position in the shape.
    hand: Vec<(usize, Value)>,
    created: NaiveDateTime,
    updated: NaiveDateTime,
    currency: &'static str,
    /// Exchange rate from `currency` to the organization currency.
    rate: f64,
}

impl Draft {
    /// Sets an attribute by hand.
    ///
    /// # Panics
    ///
    /// If the catalog does not list the attribute for this resource: the
    /// demo data only carries attributes the real API sends.
    fn set(&mut self, name: &str, value: impl Into<Value>) {
        let position = self.shape.position(name).unwrap_or_else(|| {
            panic!(
                "the catalog lists no attribute {name} on {}",
                self.shape.kind
            )
        });
        self.hand.push((position, value.into()));
    }

    fn one(&mut self, relationship: &str, kind: &str, id: u64) {
        self.record.set_one(relationship, Some(Ref::new(kind, id)));
    }

    fn one_opt(&mut self, relationship: &str, kind: &str, id: Option<u64>) {
        self.record
            .set_one(relationship, id.map(|id| Ref::new(kind, id)));
    }

    fn many(&mut self, relationship: &str, kind: &str, ids: &[u64]) {
        let refs = ids.iter().map(|&id| Ref::new(kind, id)).collect();
        self.record.set_many(relationship, refs);
    }

    fn money_in(&mut self, currency: &'static str, rate: f64) {
        self.currency = currency;
        self.rate = rate;
    }
}

/// A workflow status: (id, name, category_id).
type StatusInfo = (u64, String, u8);

/// An employee of the agency, as later generators need it.
#[derive(Debug, Clone)]
struct Employee {
    id: u64,
    name: String,
    joined: NaiveDate,
    /// The last working day of a deactivated employee.
    left: Option<NaiveDate>,
    /// Internal cost of one hour, in cents.
    hourly_cost: i64,
}

#[derive(Debug, Clone)]
struct Company {
    id: u64,
    name: String,
    currency: &'static str,
    rate: f64,
    archived: bool,
    contacts: Vec<u64>,
    created: NaiveDateTime,
}

#[derive(Debug, Clone)]
struct Project {
    id: u64,
    name: String,
    company: Option<usize>,
    workflow: usize,
    archived: bool,
    created: NaiveDateTime,
    task_lists: Vec<u64>,
    members: Vec<u64>,
    /// Index into `Generator::deals` of the project's budget.
    budget: usize,
    /// Indexes into `Generator::tasks`.
    tasks: Vec<usize>,
}

/// A sales deal or a budget.
#[derive(Debug, Clone)]
struct Deal {
    id: u64,
    name: String,
    budget: bool,
    company: Option<usize>,
    currency: &'static str,
    rate: f64,
    start: NaiveDate,
    end: NaiveDate,
    created: NaiveDateTime,
    services: Vec<usize>,
    /// A sales deal that was won (and may have become a budget).
    won: bool,
    /// Whether time on the budget needs approval.
    time_approval: bool,
}

#[derive(Debug, Clone)]
struct Service {
    id: u64,
    name: String,
    deal: usize,
    service_type: u64,
    /// Price of one hour in cents of the deal's currency.
    price: i64,
    billable: bool,
    worked: i64,
    billable_worked: i64,
    work_cost: i64,
    booked: i64,
    expenses: i64,
    invoiced: i64,
}

#[derive(Debug, Clone)]
struct Task {
    id: u64,
    title: String,
    project: usize,
    created: NaiveDateTime,
}

/// Something the activity feed can talk about.
#[derive(Debug, Clone)]
struct Item {
    id: u64,
    name: String,
    created: NaiveDateTime,
    /// Index into `Generator::companies` of the client it belongs to.
    company: Option<usize>,
}

/// The generator's state: the random stream, the store being filled, and
/// indexes of what earlier steps made so later steps can link to it.
struct Generator {
    rng: ChaCha8Rng,
    store: Store,
    volumes: Volumes,
    subsidiaries: Vec<u64>,
    events: Vec<(u64, String, bool)>,
    service_types: Vec<(u64, String)>,
    employees: Vec<Employee>,
    companies: Vec<Company>,
    contacts: Vec<Item>,
    sales_pipeline: (u64, Vec<(u64, u8, u8)>),
    production_pipeline: (u64, Vec<(u64, u8, u8)>),
    lost_reasons: Vec<u64>,
    /// Workflows with their statuses.
    workflows: Vec<(u64, Vec<StatusInfo>)>,
    projects: Vec<Project>,
    deals: Vec<Deal>,
    services: Vec<Service>,
    tasks: Vec<Task>,
    invoices: Vec<Item>,
    field_sets: Vec<FieldSet>,
    next_deal_number: u64,
    scratch: fill::Scratch,
}

impl Generator {
    fn new(options: &DemoOptions) -> Generator {
        let mut volumes = Volumes::at(options.scale);
        if let Some(tasks) = options.tasks {
            volumes.tasks = tasks;
        }
        Generator {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            store: Store::new(DEMO_ORGANIZATION_ID),
            volumes,
            subsidiaries: Vec::new(),
            events: Vec::new(),
            service_types: Vec::new(),
            employees: Vec::new(),
            companies: Vec::new(),
            contacts: Vec::new(),
            sales_pipeline: (0, Vec::new()),
            production_pipeline: (0, Vec::new()),
            lost_reasons: Vec::new(),
            workflows: Vec::new(),
            projects: Vec::new(),
            deals: Vec::new(),
            services: Vec::new(),
            tasks: Vec::new(),
            invoices: Vec::new(),
            field_sets: Vec::new(),
            next_deal_number: 1,
            scratch: fill::Scratch::default(),
        }
    }

    /// Runs every step in dependency order: a step only links to records
    /// that earlier steps made.
    fn build(&mut self) {
        self.organization();
        self.subsidiaries();
        self.custom_fields();
        self.reference_data();
        self.employees();
        self.companies();
        self.contacts();
        self.pipelines();
        self.workflows();
        self.sales_deals();
        self.projects();
        self.tasks();
        self.time_entries();
        self.bookings();
        self.expenses();
        self.invoices();
        self.roll_up();
        self.comments();
        self.activities();
        self.finish_organization();
    }

    // Random helpers.

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n.max(1))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            low
        } else {
            self.rng.gen_range(low..=high)
        }
    }

    /// A random moment in `[from, to]`, with milliseconds.
    fn moment(&mut self, from: NaiveDateTime, to: NaiveDateTime) -> NaiveDateTime {
        let span = (to - from).num_milliseconds();
        if span <= 0 {
            return from;
        }
        from + Duration::milliseconds(self.rng.gen_range(0..=span))
    }

    /// A random day in `[from, to]`.
    fn day(&mut self, from: NaiveDate, to: NaiveDate) -> NaiveDate {
        let span = (to - from).num_days();
        from + Duration::days(self.between(0, span))
    }

    /// A random working day in `[from, to]`; when the range holds none
    /// (a weekend), the last working day before `from`.
    fn working_day(&mut self, from: NaiveDate, to: NaiveDate) -> NaiveDate {
        let d = self.day(from, to);
        let forward = d
            .iter_days()
            .take_while(|x| *x <= to)
            .find(|x| is_working_day(*x));
        let backward = || {
            let mut x = d;
            while !is_working_day(x) {
                x = x.pred_opt().expect("dates after year 1");
            }
            x
        };
        forward.unwrap_or_else(backward)
    }

    /// A moment during office hours on a day, never after now.
    fn office_moment(&mut self, day: NaiveDate) -> NaiveDateTime {
        let start = day.and_hms_opt(8, 0, 0).expect("valid time");
        let t = start + Duration::milliseconds(self.rng.gen_range(0..10 * 3_600_000));
        t.min(now())
    }

    /// A creation moment somewhere in the history.
    fn historic_moment(&mut self) -> NaiveDateTime {
        let d = self.working_day(history_start(), today());
        self.office_moment(d)
    }

    // Record helpers.

    /// Starts a record of a resource created at `created`; its update time
    /// is a random moment between creation and now.
    fn draft(&mut self, shape: &'static Shape, created: NaiveDateTime) -> Draft {
        let updated = if self.chance(0.4) {
            created
        } else {
            self.moment(created, now())
        };
        Draft {
            shape,
            record: Record::new(self.store.allocate_id()),
            hand: self.scratch.hand(),
            created,
            updated,
            currency: DEMO_DEFAULT_CURRENCY,
            rate: 1.0,
        }
    }

    /// Completes a draft from the catalog and stores it; returns its id.
    fn put(&mut self, draft: Draft) -> u64 {
        let id = draft.record.id;
        let kind = draft.shape.kind;
        let record = self.finish(draft);
        self.store.put(kind, record);
        id
    }

    /// Completes a draft from the catalog without storing it.
    fn finish(&mut self, draft: Draft) -> Record {
        fill::complete(draft, &mut self.scratch)
    }

    fn employee_ids_active_on(&self, d: NaiveDate) -> Vec<usize> {
        (0..self.employees.len())
            .filter(|&i| {
                let e = &self.employees[i];
                e.joined <= d && e.left.is_none_or(|left| d <= left)
            })
            .collect()
    }

    /// A random employee who worked for the agency on day `d` (any
    /// employee if none did).
    fn employee_on(&mut self, d: NaiveDate) -> usize {
        for _ in 0..16 {
            let i = self.below(self.employees.len());
            let e = &self.employees[i];
            if e.joined <= d && e.left.is_none_or(|left| d <= left) {
                return i;
            }
        }
        let active = self.employee_ids_active_on(d);
        if active.is_empty() {
            0
        } else {
            active[self.below(active.len())]
        }
    }

    /// A random current employee's id.
    fn active_employee(&mut self) -> u64 {
        let i = self.employee_on(today());
        self.employees[i].id
    }
}
