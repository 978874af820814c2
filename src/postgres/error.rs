//! What can go wrong between the pool and PostgreSQL.

use thiserror::Error;

/// An error of the durable mode. Every variant that comes from a lower layer
/// keeps it as its [`source`](std::error::Error::source).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DurableError {
    /// The database could not be reached (or refused the connection).
    #[error("could not connect to PostgreSQL")]
    Connect(#[source] tokio_postgres::Error),
    /// A statement failed, or the connection broke while it ran.
    #[error("a query to PostgreSQL failed")]
    Query(#[from] tokio_postgres::Error),
    /// The database has no schema, or an older one than this build needs:
    /// run [`Queue::migrate`](super::Queue::migrate).
    #[error(
        "the database's workerpool schema is version {found}, this build needs version {expected}: run Queue::migrate"
    )]
    SchemaTooOld {
        /// The version the database has (0: none).
        found: i32,
        /// The version this build works with.
        expected: i32,
    },
    /// The database's schema is newer than this build knows: a newer build
    /// migrated it. Upgrade this one.
    #[error(
        "the database's workerpool schema is version {found}, newer than this build's version {expected}: upgrade actix-workerpool"
    )]
    SchemaTooNew {
        /// The version the database has.
        found: i32,
        /// The version this build works with.
        expected: i32,
    },
    /// A job's payload could not be turned into JSON.
    #[error("could not serialize a job of kind {kind:?}")]
    Serialize {
        /// The job's kind.
        kind: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A setting out of range: of [`Enqueue`](super::Enqueue), or of a
    /// [`DurableWorkerBuilder`](super::DurableWorkerBuilder).
    #[error("invalid setting: {0}")]
    InvalidOption(&'static str),
    /// The durable worker's pool refused its settings.
    #[error("the durable worker's pool could not be built")]
    Pool(#[source] crate::BuildError),
    /// The database did not answer within this long.
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The jobs table holds a state this build does not know.
    #[error("a job in the database has the unknown state {0:?}")]
    UnknownState(String),
}
