//! Money: pipelines and their stages, sales deals and budgets (both of type
//! `deals`, told apart by `budget`), services, expenses, invoices with line
//! items and payments, and the roll-up that makes budget and service totals
//! agree with the time, expenses and invoices booked against them.

use chrono::{Datelike, Duration};
use serde_json::{Value, json};

use super::fill::{set_money, set_ratio, shape};
use super::names::{DEAL_TOPICS, EXPENSE_NAMES, LOST_REASONS};
use super::{
    DEMO_DEFAULT_CURRENCY, Deal, Generator, Item, Service, date, decimal, float_cents, now, today,
    ts,
};

/// Sales stages: (name, status_id, probability). Status 1 open, 2 won,
/// 3 lost, 4 delivered.
const SALES_STAGES: &[(&str, u8, u8)] = &[
    ("Lead", 1, 10),
    ("Qualified", 1, 30),
    ("Proposal sent", 1, 60),
    ("Negotiation", 1, 80),
    ("Won", 2, 100),
    ("Lost", 3, 0),
];

/// The profit margin in percent, as a decimal string.
fn margin(revenue: i64, cost: i64) -> Value {
    if revenue > 0 {
        decimal((revenue - cost) as f64 * 100.0 / revenue as f64)
    } else {
        decimal(0.0)
    }
}

/// Production stages budgets move through.
const PRODUCTION_STAGES: &[(&str, u8, u8)] = &[
    ("Planned", 1, 100),
    ("In progress", 1, 100),
    ("Delivered", 4, 100),
];

const VAT_PERCENT: f64 = 20.0;

impl Generator {
    /// Pipelines with their stages, and the reasons deals are lost.
    pub(super) fn pipelines(&mut self) {
        let pipeline_shape = shape("pipelines");
        let stage_shape = shape("deal_statuses");
        for (position, (name, type_id, stages)) in [
            ("New business", 1, SALES_STAGES),
            ("Production", 2, PRODUCTION_STAGES),
        ]
        .into_iter()
        .enumerate()
        {
            // Set up on the first day of the history.
            let morning = super::history_start()
                .and_hms_opt(10, 0, 0)
                .expect("valid time");
            let created = self.moment(morning, morning + Duration::hours(2));
            let mut p = self.draft(pipeline_shape, created);
            let pipeline_id = p.record.id;
            p.set("name", name);
            p.set("pipeline_type_id", type_id);
            p.set("position", position as u64 + 1);
            let creator = self.employees[0].id;
            p.one("creator", "people", creator);
            self.put(p);

            let mut ids = Vec::new();
            for (i, (stage, status_id, probability)) in stages.iter().enumerate() {
                let mut d = self.draft(stage_shape, created);
                d.set("name", *stage);
                d.set("position", i as u64 + 1);
                d.set("status_id", *status_id);
                d.set("probability_enabled", type_id == 1);
                d.set("probability", *probability);
                d.set("lost_reason_enabled", *status_id == 3);
                d.set("color_id", i as u64 + 1);
                d.set("time_tracking_enabled", type_id == 2);
                d.set("expense_tracking_enabled", type_id == 2);
                d.set("booking_tracking_enabled", type_id == 2);
                d.set("used", true);
                d.one("pipeline", "pipelines", pipeline_id);
                ids.push((self.put(d), *status_id, *probability));
            }
            if type_id == 1 {
                self.sales_pipeline = (pipeline_id, ids);
            } else {
                self.production_pipeline = (pipeline_id, ids);
            }
        }

        // A pipeline nobody uses yet, as real accounts have.
        let created = self.historic_moment();
        let mut p = self.draft(pipeline_shape, created);
        p.set("name", "Partnerships");
        p.set("pipeline_type_id", 1);
        p.set("position", 3);
        self.put(p);

        let s = shape("lost_reasons");
        for (i, name) in LOST_REASONS.iter().enumerate() {
            let created = self.historic_moment();
            let mut d = self.draft(s, created);
            d.set("name", *name);
            if i == LOST_REASONS.len() - 1 {
                d.set("archived_at", ts(self.moment(created, now())));
            }
            let id = self.put(d);
            self.lost_reasons.push(id);
        }
    }

    /// Creates a service on a deal or budget and returns its index.
    fn service(&mut self, deal: usize, position: usize, type_index: usize) -> usize {
        let d = self.deals[deal].clone();
        let (type_id, type_name) = self.service_types[type_index].clone();
        let mut draft = self.draft(shape("services"), d.created);
        let id = draft.record.id;
        draft.money_in(d.currency, d.rate);

        let billing_type = if self.chance(0.1) {
            3
        } else if self.chance(0.35) {
            1
        } else {
            2
        };
        let price = self.between(12, 30) * 500;
        let hours = self.between(8, 160) * 2;
        let total = price * hours;
        draft.set("name", type_name.clone());
        draft.set("position", position as u64 + 1);
        draft.set("billable", billing_type != 3);
        draft.set("description", format!("{type_name} for {}", d.name));
        draft.set("time_tracking_enabled", true);
        draft.set("expense_tracking_enabled", true);
        draft.set("booking_tracking_enabled", true);
        draft.set("billing_type_id", billing_type);
        draft.set("unit_id", 1);
        draft.set("quantity", decimal(hours as f64));
        draft.set("estimated_time", hours * 60);
        draft.set("budgeted_time", hours * 60);
        draft.set("limitation_type", "no_limitation");
        draft.set("pricing_type_id", 1);
        draft.set("price", float_cents(price));
        draft.set(
            "budget_total",
            float_cents(if billing_type == 3 { 0 } else { total }),
        );
        draft.set("estimated_cost", float_cents(total / 2));
        draft.set("markup", decimal(0.0));
        draft.set("discount", decimal(0.0));
        draft.one("deal", "deals", d.id);
        draft.one("service_type", "service_types", type_id);
        self.put(draft);
        self.services.push(Service {
            id,
            name: type_name,
            deal,
            service_type: type_id,
            price,
            billable: billing_type != 3,
            worked: 0,
            billable_worked: 0,
            work_cost: 0,
            booked: 0,
            expenses: 0,
            invoiced: 0,
        });
        let index = self.services.len() - 1;
        self.deals[deal].services.push(index);
        index
    }

    /// Adds services of distinct types to a deal.
    fn services_for(&mut self, deal: usize, count: usize) {
        let mut types: Vec<usize> = (0..self.service_types.len() - 1).collect();
        for position in 0..count.min(types.len()) {
            let t = types.remove(self.below(types.len()));
            self.service(deal, position, t);
        }
    }

    /// Sets the fields deals and budgets share.
    fn deal_basics(&mut self, draft: &mut super::Draft, deal: &Deal) {
        let number = self.next_deal_number;
        self.next_deal_number += 1;
        draft.money_in(deal.currency, deal.rate);
        draft.set("name", deal.name.clone());
        draft.set("date", date(deal.start));
        draft.set("end_date", date(deal.end));
        draft.set("number", number.to_string());
        draft.set("deal_number", number.to_string());
        draft.set("budget", deal.budget);
        draft.set("deal_type_id", if deal.company.is_some() { 2 } else { 1 });
        draft.set("time_approval", deal.time_approval);
        draft.set("man_day_minutes", 480);
        draft.set("tracking_type_id", 1);
        draft.set("rounding_interval_id", 1);
        draft.set("rounding_method_id", 1);
        draft.set("revenue_distribution_type", "even");
        draft.set("revenue_distribution_method", "time");
        draft.set("deal_value_source", "services");
        draft.set("color_id", (number % 12) + 1);
        draft.set("email_key", format!("deal-{number}"));
        draft.set("position", number);
        draft.set("exchange_date", date(deal.created.date()));
        let age = (today() - deal.created.date()).num_days();
        draft.set("days_since_created", age);
        draft.set(
            "days_since_last_activity",
            (today() - draft.updated.date()).num_days(),
        );
        draft.set("days_in_current_stage", self.between(0, age));
        draft.set(
            "tag_list",
            if self.chance(0.25) {
                json!([*self.pick(super::names::TAGS)])
            } else {
                json!([])
            },
        );
        let company = deal.company.map(|c| self.companies[c].id);
        draft.one_opt("company", "companies", company);
        let subsidiary = self.subsidiaries[0];
        draft.one("subsidiary", "subsidiaries", subsidiary);
        let responsible = self.employee_on(deal.start.min(today()));
        let responsible = self.employees[responsible].id;
        draft.one("responsible", "people", responsible);
        draft.one("creator", "people", responsible);
        let contact = deal
            .company
            .and_then(|c| self.companies[c].contacts.first().copied());
        draft.one_opt("contact", "people", contact);
        draft.one_opt("primary_contact", "people", contact);
    }

    /// Sales deals (`budget: false`) across the sales pipeline.
    pub(super) fn sales_deals(&mut self) {
        let s = shape("deals");
        for _ in 0..self.volumes.deals {
            let c = self.below(self.companies.len());
            let company = self.companies[c].clone();
            let created = self.moment(company.created, now());
            let age = (today() - created.date()).num_days();
            let stages = self.sales_pipeline.1.clone();

            // Young deals are mostly open; old ones were decided.
            let stage = if (age < 60 && self.chance(0.8)) || self.chance(0.2) {
                stages[self.below(4)]
            } else if self.chance(0.5) {
                stages[4]
            } else {
                stages[5]
            };
            let topic = *self.pick(DEAL_TOPICS);
            let start = created.date();
            let deal = Deal {
                id: 0,
                name: format!("{} {}", company.name, topic),
                budget: false,
                company: Some(c),
                currency: company.currency,
                rate: company.rate,
                start,
                end: start + Duration::days(self.between(30, 180)),
                created,
                services: Vec::new(),
                won: stage.1 == 2,
                time_approval: false,
            };
            let mut draft = self.draft(s, created);
            let mut deal = deal;
            deal.id = draft.record.id;
            self.deals.push(deal.clone());
            let index = self.deals.len() - 1;
            if self.chance(0.4) {
                let count = 1 + self.below(2);
                self.services_for(index, count);
            }

            self.deal_basics(&mut draft, &deal);
            let value: i64 = self.deals[index]
                .services
                .iter()
                .map(|&s| self.services[s].price * 40)
                .sum();
            let value = if value == 0 {
                self.between(10, 300) * 50_000
            } else {
                value
            };
            draft.set("deal_value", value);
            draft.set("revenue", value);
            draft.set("services_revenue", value);
            draft.set("budget_total", value);
            draft.set("projected_revenue", value * stage.2 as i64 / 100);
            draft.set("probability", stage.2);
            draft.set("previous_probability", stage.2.saturating_sub(20));
            draft.set("sales_status_id", stage.1);
            draft.set("profit_margin", decimal(self.between(15, 45) as f64));
            draft.one("pipeline", "pipelines", self.sales_pipeline.0);
            draft.one("deal_status", "deal_statuses", stage.0);
            if stage.1 != 1 {
                let closed = self.moment(created, (created + Duration::days(90)).min(now()));
                draft.set("sales_closed_at", ts(closed));
                draft.set("sales_closed_on", date(closed.date()));
                draft.set("sales_status_updated_at", ts(closed));
                draft.updated = draft.updated.max(closed);
            } else {
                draft.set("sales_status_updated_at", ts(draft.updated));
            }
            if stage.1 == 3 {
                let reason = *self.pick(&self.lost_reasons.clone());
                draft.one("lost_reason", "lost_reasons", reason);
                draft.set("lost_comment", "Client went another way.");
            }
            self.with_custom_values(&mut draft, "deals");
            self.put(draft);
        }
    }

    /// Creates the budget of a project, with its services, and returns its
    /// index in `deals`.
    pub(super) fn budget_for(&mut self, project: usize) -> usize {
        let p = self.projects[project].clone();
        let (currency, rate) = p.company.map_or((DEMO_DEFAULT_CURRENCY, 1.0), |c| {
            (self.companies[c].currency, self.companies[c].rate)
        });
        let start = p.created.date();
        let end = start + Duration::days(self.between(90, 540));
        let closed = p.archived || (end < today() && self.chance(0.7));
        let mut draft = self.draft(shape("deals"), p.created);
        let deal = Deal {
            id: draft.record.id,
            name: format!("{} {}", p.name, start.year()),
            budget: true,
            company: p.company,
            currency,
            rate,
            start,
            end,
            created: p.created,
            services: Vec::new(),
            won: true,
            time_approval: self.chance(0.3),
        };
        self.deals.push(deal.clone());
        let index = self.deals.len() - 1;
        let count = 3 + self.below(4);
        self.services_for(index, count);

        self.deal_basics(&mut draft, &deal);
        let stages = self.production_pipeline.1.clone();
        let stage = if closed {
            stages[2]
        } else if start > today() - Duration::days(14) {
            stages[0]
        } else {
            stages[1]
        };
        draft.set("sales_status_id", stage.1);
        draft.set("probability", 100);
        draft.set("previous_probability", 100);
        draft.one("pipeline", "pipelines", self.production_pipeline.0);
        draft.one("deal_status", "deal_statuses", stage.0);
        draft.one("project", "projects", p.id);
        draft.set("sales_closed_at", ts(p.created));
        draft.set("sales_closed_on", date(p.created.date()));
        draft.set("sales_status_updated_at", ts(p.created));
        if closed {
            let closed_at = self.office_moment(end.min(today())).max(p.created);
            draft.set("closed_at", ts(closed_at));
            draft.set("delivered_on", date(closed_at.date()));
            draft.updated = draft.updated.max(closed_at);
        }

        // A won sales deal of the same client becomes the budget's origin.
        if let Some(c) = p.company {
            let origin = self
                .deals
                .iter()
                .position(|d| !d.budget && d.won && d.company == Some(c));
            if let Some(o) = origin {
                self.deals[o].won = false;
                let origin_id = self.deals[o].id;
                draft.set("origin_deal_id", origin_id);
                draft.one("origin_deal", "deals", origin_id);
            }
        }

        let budgeted: i64 = self.deals[index]
            .services
            .iter()
            .map(|&s| self.service_budgeted_minutes(s))
            .sum();
        draft.set("budgeted_time", budgeted);
        draft.set("estimated_time", budgeted);
        self.with_custom_values(&mut draft, "budgets");
        self.put(draft);
        index
    }

    fn service_budgeted_minutes(&self, service: usize) -> i64 {
        self.store
            .get("services", self.services[service].id)
            .and_then(|r| r.attributes.get("budgeted_time"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    fn service_budget_total(&self, service: usize) -> i64 {
        self.store
            .get("services", self.services[service].id)
            .and_then(|r| r.attributes.get("budget_total"))
            .and_then(Value::as_f64)
            .map_or(0, |v| v as i64)
    }

    /// Random budget index (into `deals`) that has services.
    fn random_budget(&mut self) -> usize {
        let p = self.below(self.projects.len());
        self.projects[p].budget
    }

    pub(super) fn expenses(&mut self) {
        let s = shape("expenses");
        for _ in 0..self.volumes.expenses {
            let b = self.random_budget();
            let budget = self.deals[b].clone();
            if budget.services.is_empty() {
                continue;
            }
            let service = budget.services[self.below(budget.services.len())];
            let day = self.working_day(budget.start, budget.end.min(today()));
            let person = self.employee_on(day);
            let person_id = self.employees[person].id;
            let created = self.office_moment(day);
            let mut d = self.draft(s, created);
            d.money_in(budget.currency, budget.rate);

            let quantity = if self.chance(0.8) {
                1
            } else {
                self.between(2, 5)
            };
            let amount = self.between(10, 800) * 100;
            let total = amount * quantity;
            let billable = self.chance(0.7);
            let markup = if billable && self.chance(0.3) {
                10.0
            } else {
                0.0
            };
            let billable_amount = if billable {
                (total as f64 * (1.0 + markup / 100.0)).round() as i64
            } else {
                0
            };
            d.set("name", *self.pick(EXPENSE_NAMES));
            d.set("date", date(day));
            d.set("quantity", decimal(quantity as f64));
            d.set("quantity_received", decimal(quantity as f64));
            d.set("amount", amount);
            d.set("total_amount", total);
            d.set("billable_amount", billable_amount);
            d.set("profit", billable_amount - total);
            d.set("markup", markup);
            d.set("amount_with_tax", (amount as f64 * 1.2).round() as i64);
            d.set("total_amount_with_tax", (total as f64 * 1.2).round() as i64);
            d.set("recognized_revenue", billable_amount);
            d.set("exchange_date", date(day));
            let reimbursable = self.chance(0.3);
            d.set("reimbursable", reimbursable);
            let age = (today() - day).num_days();
            if age > 10 && self.chance(0.85) {
                let delay = Duration::days(self.between(1, 7));
                let at = self.office_moment((day + delay).min(today()));
                d.set("approved", true);
                d.set("approved_at", ts(at.max(created)));
                let approver = self.active_employee();
                d.one("approver", "people", approver);
                d.updated = d.updated.max(at);
                if reimbursable {
                    d.set(
                        "reimbursed_on",
                        date((day + Duration::days(20)).min(today())),
                    );
                }
                d.set("invoiced", billable && age > 60 && self.chance(0.6));
            } else if age > 10 && self.chance(0.2) {
                let at = self.office_moment((day + Duration::days(2)).min(today()));
                d.set("rejected", true);
                d.set("rejected_at", ts(at.max(created)));
                d.set("rejected_reason", "Missing receipt");
                let rejecter = self.active_employee();
                d.one("rejecter", "people", rejecter);
                d.updated = d.updated.max(at);
            }
            d.set("pay_on", date(day + Duration::days(30)));
            if age > 30 {
                d.set("paid_on", date(day + Duration::days(self.between(5, 30))));
            }
            d.one("deal", "deals", budget.id);
            d.one("service", "services", self.services[service].id);
            d.one(
                "service_type",
                "service_types",
                self.services[service].service_type,
            );
            d.one("person", "people", person_id);
            d.one("creator", "people", person_id);
            self.with_custom_values(&mut d, "project_expenses");
            self.put(d);
            self.services[service].expenses += total;
        }
    }

    pub(super) fn invoices(&mut self) {
        let invoice_shape = shape("invoices");
        let line_shape = shape("line_items");
        let payment_shape = shape("payments");
        let mut sequence_by_year = std::collections::BTreeMap::<i32, u64>::new();
        let mut finalized = Vec::new();
        for _ in 0..self.volumes.invoices {
            // Invoice client budgets only.
            let mut b = self.random_budget();
            for _ in 0..8 {
                if self.deals[b].company.is_some() {
                    break;
                }
                b = self.random_budget();
            }
            let budget = self.deals[b].clone();
            let Some(c) = budget.company else { continue };
            let earliest = budget.start + Duration::days(20);
            if earliest > today() {
                continue;
            }
            let invoiced_on =
                self.working_day(earliest, (budget.end + Duration::days(30)).min(today()));
            let created = self.office_moment(invoiced_on);
            let draft_invoice = (today() - invoiced_on).num_days() < 15 && self.chance(0.4);
            let mut d = self.draft(invoice_shape, created);
            let invoice_id = d.record.id;
            d.money_in(budget.currency, budget.rate);

            // Line items first: the invoice's amounts are their sums.
            let mut amount = 0;
            let mut tax = 0;
            for position in 0..1 + self.below(6) {
                let si = budget.services[self.below(budget.services.len())];
                let service = self.services[si].clone();
                let quantity = self.between(2, 160) as f64 / 2.0;
                let line_amount = (quantity * service.price as f64).round() as i64;
                let line_tax = (line_amount as f64 * VAT_PERCENT / 100.0).round() as i64;
                let mut l = self.draft(line_shape, created);
                l.updated = d.updated;
                l.money_in(budget.currency, budget.rate);
                l.set("description", format!("{} ({})", service.name, budget.name));
                l.set("quantity", decimal(quantity));
                l.set("unit_id", 1);
                l.set("unit_price", service.price);
                l.set("discount", 0.0);
                l.set("position", position as u64 + 1);
                l.set("tax_name", "VAT");
                l.set("tax_value", decimal(VAT_PERCENT));
                l.set("amount", line_amount);
                l.set("amount_tax", line_tax);
                l.set("amount_with_tax", line_amount + line_tax);
                l.one("invoice", "invoices", invoice_id);
                l.one("service", "services", service.id);
                l.one("service_type", "service_types", service.service_type);
                self.put(l);
                amount += line_amount;
                tax += line_tax;
                self.services[si].invoiced += line_amount;
            }
            let with_tax = amount + tax;
            let year = invoiced_on.year();
            let pay_on = invoiced_on + Duration::days(30);
            d.set("invoice_type_id", 1);
            d.set(
                "subject",
                format!("{}: {}", budget.name, invoiced_on.format("%B %Y")),
            );
            d.set("invoiced_on", date(invoiced_on));
            d.set("delivery_on", date(invoiced_on));
            d.set("pay_on", date(pay_on));
            d.set("payment_terms", 30);
            d.set("payment_terms_days", 30);
            d.set("payment_terms_type", 1);
            d.set("discount", 0.0);
            d.set("tax1_name", "VAT");
            d.set("tax1_value", decimal(VAT_PERCENT));
            d.set("line_item_tax", false);
            d.set("exchange_date", date(invoiced_on));
            d.set("amount", amount);
            d.set("amount_tax", tax);
            d.set("amount_with_tax", with_tax);
            d.set("email_key", format!("inv-{invoice_id}"));
            let mut paid = 0;
            if !draft_invoice {
                let sequence = sequence_by_year.entry(year).or_insert(0);
                *sequence += 1;
                d.set("number", format!("{year}-{:04}", sequence));
                d.set("finalized_on", date(invoiced_on));
                d.set("finalized_at", ts(created));
                let sent = (invoiced_on + Duration::days(self.between(0, 2))).min(today());
                d.set("sent_on", date(sent));

                // Most invoices past their due date are paid, some in two
                // parts; recent ones mostly are not yet.
                let overdue = pay_on < today() - Duration::days(5);
                if self.chance(if overdue { 0.92 } else { 0.4 }) {
                    let parts = if self.chance(0.1) { 2 } else { 1 };
                    let mut paid_on = invoiced_on;
                    for part in 0..parts {
                        let share = if parts == 2 && part == 0 {
                            with_tax / 2
                        } else {
                            with_tax - paid
                        };
                        paid_on = self.day(paid_on, (paid_on + Duration::days(40)).min(today()));
                        let moment = self.office_moment(paid_on);
                        let mut p = self.draft(payment_shape, moment.max(created));
                        p.money_in(budget.currency, budget.rate);
                        p.set("paid_on", date(paid_on));
                        p.set("amount", share);
                        p.one("invoice", "invoices", invoice_id);
                        self.put(p);
                        paid += share;
                    }
                    d.set("paid_on", date(paid_on));
                    d.updated = d.updated.max(self.office_moment(paid_on));
                }
                finalized.push((invoice_id, c, budget.currency, budget.rate, with_tax));
            }
            d.set("amount_paid", paid);
            d.set("amount_unpaid", with_tax - paid);
            d.one("company", "companies", self.companies[c].id);
            d.one("subsidiary", "subsidiaries", self.subsidiaries[0]);
            let issuer = self.employee_on(invoiced_on);
            let issuer = self.employees[issuer].id;
            d.one("issuer", "people", issuer);
            d.one("creator", "people", issuer);
            self.with_custom_values(&mut d, "invoices");
            self.put(d);
            self.invoices.push(Item {
                id: invoice_id,
                name: format!("Invoice for {}", budget.name),
                created,
                company: Some(c),
            });
        }
        self.credit_notes(&finalized);
    }

    /// Credits a few finalized invoices with a one-line credit note.
    fn credit_notes(&mut self, finalized: &[(u64, usize, &'static str, f64, i64)]) {
        let count = finalized.len() / 40;
        for _ in 0..count {
            let (parent, c, currency, rate, with_tax) = finalized[self.below(finalized.len())];
            if self
                .store
                .get("invoices", parent)
                .and_then(|r| r.attributes.get("credited"))
                .and_then(Value::as_bool)
                == Some(true)
            {
                continue;
            }
            let created = self.moment(
                self.invoices
                    .iter()
                    .find(|i| i.id == parent)
                    .map_or(now(), |i| i.created),
                now(),
            );
            let amount = -(with_tax * 5 / 6);
            let tax = -(with_tax / 6);
            let mut d = self.draft(shape("invoices"), created);
            let id = d.record.id;
            d.money_in(currency, rate);
            let mut l = self.draft(shape("line_items"), created);
            l.money_in(currency, rate);
            l.set("description", "Credit for invoiced work");
            l.set("quantity", decimal(1.0));
            l.set("unit_id", 2);
            l.set("unit_price", amount);
            l.set("discount", 0.0);
            l.set("position", 1);
            l.set("tax_name", "VAT");
            l.set("tax_value", decimal(VAT_PERCENT));
            l.set("amount", amount);
            l.set("amount_tax", tax);
            l.set("amount_with_tax", amount + tax);
            l.one("invoice", "invoices", id);
            self.put(l);
            let on = created.date();
            d.set("invoice_type_id", 2);
            d.set("number", format!("CN-{id}"));
            d.set("subject", "Credit note");
            d.set("invoiced_on", date(on));
            d.set("finalized_on", date(on));
            d.set("finalized_at", ts(created));
            d.set("sent_on", date(on));
            d.set("pay_on", date(on));
            d.set("payment_terms", 0);
            d.set("payment_terms_days", 0);
            d.set("discount", 0.0);
            d.set("tax1_name", "VAT");
            d.set("tax1_value", decimal(VAT_PERCENT));
            d.set("amount", amount);
            d.set("amount_tax", tax);
            d.set("amount_with_tax", amount + tax);
            d.set("amount_paid", 0);
            d.set("amount_unpaid", 0);
            d.set("exchange_date", date(on));
            d.one("parent_invoice", "invoices", parent);
            d.one("company", "companies", self.companies[c].id);
            d.one("subsidiary", "subsidiaries", self.subsidiaries[0]);
            self.put(d);
            if let Some(record) = self.store.get_mut("invoices", parent) {
                record
                    .attributes
                    .insert("credited".into(), Value::Bool(true));
                set_money(
                    record,
                    "invoices",
                    "amount_credited",
                    -amount - tax,
                    rate,
                    false,
                );
                set_money(
                    record,
                    "invoices",
                    "amount_credited_with_tax",
                    -amount - tax,
                    rate,
                    false,
                );
            }
        }
    }

    /// Makes services and deals agree with what was tracked against them.
    pub(super) fn roll_up(&mut self) {
        for i in 0..self.services.len() {
            let s = self.services[i].clone();
            let rate = self.deals[s.deal].rate;
            let budget_total = self.service_budget_total(i);
            let revenue = if s.billable {
                s.billable_worked * s.price / 60
            } else {
                0
            };
            let cost = s.work_cost + s.expenses;
            let Some(record) = self.store.get_mut("services", s.id) else {
                continue;
            };
            let a = &mut record.attributes;
            a.insert("worked_time".into(), Value::from(s.worked));
            a.insert("billable_time".into(), Value::from(s.billable_worked));
            a.insert("booked_time".into(), Value::from(s.booked));
            set_ratio(record, "services", "profit_margin", margin(revenue, cost));
            set_money(record, "services", "budget_used", revenue, rate, true);
            set_money(record, "services", "revenue", revenue, rate, true);
            set_money(
                record,
                "services",
                "projected_revenue",
                revenue.max(budget_total),
                rate,
                true,
            );
            set_money(record, "services", "work_cost", s.work_cost, rate, true);
            set_money(record, "services", "cost", cost, rate, true);
            set_money(record, "services", "profit", revenue - cost, rate, true);
            set_money(record, "services", "expense_amount", s.expenses, rate, true);
        }

        for i in 0..self.deals.len() {
            let deal = self.deals[i].clone();
            if deal.services.is_empty() {
                continue;
            }
            let sum = |f: &dyn Fn(&Service) -> i64| -> i64 {
                deal.services.iter().map(|&s| f(&self.services[s])).sum()
            };
            let worked = sum(&|s| s.worked);
            let billable = sum(&|s| s.billable_worked);
            let revenue = sum(&|s| {
                if s.billable {
                    s.billable_worked * s.price / 60
                } else {
                    0
                }
            });
            let cost = sum(&|s| s.work_cost + s.expenses);
            let expenses = sum(&|s| s.expenses);
            let invoiced = sum(&|s| s.invoiced);
            let total: i64 = deal
                .services
                .iter()
                .map(|&s| self.service_budget_total(s))
                .sum();
            if !deal.budget {
                continue;
            }
            let Some(record) = self.store.get_mut("deals", deal.id) else {
                continue;
            };
            let a = &mut record.attributes;
            a.insert("worked_time".into(), Value::from(worked));
            a.insert("billable_time".into(), Value::from(billable));
            set_ratio(record, "deals", "profit_margin", margin(revenue, cost));
            let rate = deal.rate;
            set_money(record, "deals", "budget_total", total, rate, false);
            set_money(record, "deals", "services_revenue", total, rate, false);
            set_money(record, "deals", "deal_value", total, rate, false);
            set_money(record, "deals", "revenue", revenue, rate, false);
            set_money(record, "deals", "budget_used", revenue, rate, false);
            set_money(
                record,
                "deals",
                "projected_revenue",
                revenue.max(total),
                rate,
                false,
            );
            set_money(record, "deals", "cost", cost, rate, false);
            set_money(record, "deals", "profit", revenue - cost, rate, false);
            set_money(record, "deals", "expense", expenses, rate, false);
            set_money(record, "deals", "invoiced", invoiced, rate, false);
            set_money(
                record,
                "deals",
                "pending_invoicing",
                (revenue - invoiced).max(0),
                rate,
                false,
            );
        }
    }
}
