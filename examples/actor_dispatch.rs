//! Actor-to-actor dispatch: an `Orders` actor charges cards through the pool,
//! fire and report. It sends `SubmitAndReport` with its own address as the
//! recipient, never awaits in a handler, and hears every outcome as a
//! `TaskReport` message.
//!
//! ```sh
//! cargo run --example actor_dispatch
//! ```
//!
//! It prints each report as it arrives, then what the reports add up to.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_workerpool::{Outcome, Pool, SubmitAndReport, Task, TaskContext, TaskId, TaskReport};

/// Charges a card; cards ending in 13 are declined.
struct ChargeCard {
    order: u32,
    card: u64,
}

impl Task for ChargeCard {
    /// The order it was for.
    type Output = u32;
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<u32, String> {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        if declines(self.card) {
            return Err(format!("card ...{} declined", self.card % 10_000));
        }
        Ok(self.order)
    }
}

/// The demo's bank declines every card that ends in 13.
fn declines(card: u64) -> bool {
    card % 100 == 13
}

/// The card each order pays with: every fourth one, from order 1 on, ends in 13.
fn card_for(order: u32) -> u64 {
    4_000_000_000 + u64::from(order) * 1_000 + if order % 4 == 1 { 13 } else { 42 }
}

/// A new order to charge.
#[derive(Message)]
#[rtype(result = "()")]
struct PlaceOrder {
    order: u32,
    card: u64,
}

struct Orders {
    /// Held, not only its address: the pool stays open while the actor lives.
    payments: Pool<ChargeCard>,
    /// Orders waiting for their charge, by the id the pool gave it: how a
    /// report, which names only the task, is matched to its order.
    pending: HashMap<TaskId, u32>,
    expected: usize,
    reports: usize,
    /// When the orders were placed: the reports say how long after it they came.
    started: Instant,
    paid: Vec<u32>,
    /// Orders whose charge failed (`None`: a report that came before the
    /// pool's answer to `send`, so before its id was known).
    declined: Vec<Option<u32>>,
}

impl Actor for Orders {
    type Context = Context<Self>;
}

impl Handler<PlaceOrder> for Orders {
    type Result = ();

    fn handle(&mut self, order: PlaceOrder, ctx: &mut Context<Self>) {
        let charge = SubmitAndReport {
            task: ChargeCard {
                order: order.order,
                card: order.card,
            },
            report_to: ctx.address().recipient(),
        };
        // Ask for the id without blocking the handler: the answer comes back
        // into this actor through the context, the report later by message.
        let order = order.order;
        ctx.spawn(self.payments.addr().send(charge).into_actor(self).map(
            move |accepted, orders, _| {
                if let Ok(Some(id)) = accepted {
                    orders.pending.insert(id, order);
                }
            },
        ));
    }
}

impl Handler<TaskReport<ChargeCard>> for Orders {
    type Result = ();

    fn handle(&mut self, report: TaskReport<ChargeCard>, _: &mut Context<Self>) {
        self.reports += 1;
        let at = format!("{:>3} ms", self.started.elapsed().as_millis());
        match report {
            TaskReport::Finished { id, outcome } => {
                let order = self.pending.remove(&id);
                let which = match order {
                    Some(order) => format!("order {order}"),
                    // The report came before the pool's answer to `send`.
                    None => "an order not yet matched".to_string(),
                };
                match outcome {
                    Outcome::Completed { output, .. } => {
                        println!("   {at}  {id}, {which}: paid");
                        self.paid.push(output)
                    }
                    Outcome::Failed { error, .. } => {
                        println!("   {at}  {id}, {which}: declined ({error})");
                        self.declined.push(order)
                    }
                    other => println!("   {at}  {id}, {which}: {other:?}"),
                }
            }
            TaskReport::Refused(refused) => {
                let why = refused.to_string();
                println!(
                    "   {at}  order {} refused by the pool: {why}",
                    refused.into_inner().order
                )
            }
        }
        if self.reports == self.expected {
            self.summarize();
            System::current().stop();
        }
    }
}

impl Orders {
    /// What the reports add up to, in words.
    fn summarize(&mut self) {
        let elapsed = self.started.elapsed().as_millis();
        self.paid.sort();
        self.declined.sort();
        let paid: Vec<_> = self.paid.iter().map(u32::to_string).collect();
        let declined: Vec<_> = (self.declined.iter())
            .map(|order| order.map_or("?".to_string(), |order| order.to_string()))
            .collect();
        // Said only if true: each order's number among the reports once.
        let mut reported: Vec<_> = (self.paid.iter().copied())
            .chain(self.declined.iter().flatten().copied())
            .collect();
        reported.sort();
        let each_once = reported.iter().copied().eq(0..self.expected as u32);
        println!("\nWhat this shows:");
        println!(
            "   {}: {} placed, {} reports, {} still waiting.",
            if each_once {
                "Every order got exactly one report"
            } else {
                "NOT every order got exactly one report"
            },
            self.expected,
            self.reports,
            self.pending.len()
        );
        println!(
            "   Paid: orders {}. Declined: orders {} (their cards end in 13).",
            paid.join(", "),
            declined.join(", ")
        );
        println!(
            "   The {} charges took {elapsed} ms in all, not {} x 20 ms: the 3 workers ran them\n   \
             side by side, while the actor's handlers never waited for one; each\n   \
             outcome came to the actor as a message.",
            self.expected, self.expected
        );
    }
}

fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("actix_workerpool=error"),
    )
    .init();
    let system = System::new();
    let to_decline: Vec<_> = (0..10)
        .filter(|&order| declines(card_for(order)))
        .map(|order: u32| order.to_string())
        .collect();
    let to_decline = to_decline.join(", ");
    println!(
        "An `Orders` actor takes 10 orders (numbered 0 to 9) and charges each order's
card through a pool of 3 workers, 20 ms a charge. Its handler hands the charge
to the pool with `SubmitAndReport` and returns at once; the pool sends the
outcome back to the actor as a `TaskReport` message. The bank declines cards
that end in 13, on purpose: orders {to_decline} pay with one.

Reports, as they arrive (time since the orders were placed; task#N is the id
the pool gave the charge):"
    );
    system.block_on(async {
        let pool = Pool::builder()
            .workers(3)
            .queue_capacity(16)
            .build()
            .unwrap();
        let orders = Orders {
            payments: pool,
            pending: HashMap::new(),
            expected: 10,
            reports: 0,
            started: Instant::now(),
            paid: Vec::new(),
            declined: Vec::new(),
        }
        .start();
        for order in 0..10 {
            orders.do_send(PlaceOrder {
                order,
                card: card_for(order),
            });
        }
    });
    system.run().unwrap();
}
