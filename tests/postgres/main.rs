//! The durable mode against a real PostgreSQL server, which these tests start
//! themselves (see `cluster`). Run with `cargo test --features postgres`.

#![cfg(feature = "postgres")]

#[path = "../support/built_example.rs"]
mod built_example;
mod cluster;
mod enqueue;
mod processes;
mod schema;
mod work;

use actix_workerpool::postgres::{Durable, JobStatus};
use actix_workerpool::{Task, TaskContext};
use serde::{Deserialize, Serialize};

/// An e-mail to send: the durable task most tests enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Email {
    pub to: String,
}

impl Task for Email {
    type Output = ();
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
        Ok(())
    }
}

impl Durable for Email {
    const KIND: &'static str = "email";
}

/// Another kind, to tell kinds apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub number: u32,
}

impl Task for Invoice {
    type Output = ();
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
        Ok(())
    }
}

impl Durable for Invoice {
    const KIND: &'static str = "invoice";
}

pub fn email(to: &str) -> Email {
    Email { to: to.to_owned() }
}

/// A plain client on `conninfo`, for what the tests check behind the queue's
/// back; its connection runs on the current arbiter.
pub async fn client(conninfo: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .expect("connect");
    actix_rt::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Asserts that a job's last error mentions `text`.
#[track_caller]
pub fn assert_error_mentions(job: &JobStatus, text: &str) {
    let error = job.last_error.as_deref();
    assert!(
        error.is_some_and(|error| error.contains(text)),
        "the last error {error:?} does not mention {text:?}"
    );
}
