//! Actor-to-actor dispatch: an `Orders` actor charges cards through the pool,
//! fire and report. It sends `SubmitAndReport` with its own address as the
//! recipient, never awaits in a handler, and hears every outcome as a
//! `TaskReport` message.
//!
//! ```sh
//! cargo run --example actor_dispatch
//! ```

use std::collections::HashMap;
use std::time::Duration;

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
        if self.card % 100 == 13 {
            return Err(format!("card ...{} declined", self.card % 10_000));
        }
        Ok(self.order)
    }
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
    /// Orders waiting for their charge, by the id the pool gave it.
    pending: HashMap<TaskId, u32>,
    expected: usize,
    paid: Vec<u32>,
    declined: Vec<String>,
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
        match report {
            TaskReport::Finished { id, outcome } => {
                self.pending.remove(&id);
                match outcome {
                    Outcome::Completed { output, .. } => self.paid.push(output),
                    Outcome::Failed { error, .. } => self.declined.push(error),
                    other => println!("{id}: {other:?}"),
                }
            }
            TaskReport::Refused(refused) => {
                let why = refused.to_string();
                println!("order {} refused: {why}", refused.into_inner().order)
            }
        }
        if self.paid.len() + self.declined.len() == self.expected {
            self.paid.sort();
            println!("paid orders: {:?}", self.paid);
            println!("declined: {:?}", self.declined);
            System::current().stop();
        }
    }
}

fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("actix_workerpool=error"),
    )
    .init();
    let system = System::new();
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
            paid: Vec::new(),
            declined: Vec::new(),
        }
        .start();
        for order in 0..10 {
            let card =
                4_000_000_000 + u64::from(order) * 1_000 + if order % 4 == 1 { 13 } else { 42 };
            orders.do_send(PlaceOrder { order, card });
        }
    });
    system.run().unwrap();
}
