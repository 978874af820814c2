//! The queue's schema in PostgreSQL: the migrations that ship with the
//! crate (`migrations/*.sql`), applying them, and checking that a database
//! has the version this build works with.

use tokio_postgres::{Client, GenericClient};

use super::DurableError;

/// The migrations, in order: migration `n` (from 1) brings the schema to
/// version `n`.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_jobs.sql")];

/// The schema version this build works with.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Any number, the same in every process: migrations take this advisory lock,
/// so that processes starting together apply each migration once.
const MIGRATION_LOCK: i64 = 0x776f_726b_706f_6f6c; // "workpool"

/// The version of the schema in the database; 0 if it has none.
pub(super) async fn version(client: &impl GenericClient) -> Result<i32, DurableError> {
    let table = client
        .query_one(
            "SELECT to_regclass('workerpool.schema_version') IS NOT NULL",
            &[],
        )
        .await?;
    if !table.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT version FROM workerpool.schema_version", &[])
        .await?;
    Ok(row.get(0))
}

/// An error unless the database's schema is the one this build works with.
pub(super) async fn check(client: &Client) -> Result<(), DurableError> {
    compare(version(client).await?)
}

fn compare(found: i32) -> Result<(), DurableError> {
    let expected = SCHEMA_VERSION;
    match found.cmp(&expected) {
        std::cmp::Ordering::Less => Err(DurableError::SchemaTooOld { found, expected }),
        std::cmp::Ordering::Greater => Err(DurableError::SchemaTooNew { found, expected }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Brings the schema to [`SCHEMA_VERSION`]: each missing migration in a
/// transaction of its own, under an advisory lock. A database migrated by a
/// newer build is left alone, with an error.
pub(super) async fn migrate(client: &mut Client) -> Result<(), DurableError> {
    loop {
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let found = version(&transaction).await?;
        if found >= SCHEMA_VERSION {
            transaction.commit().await?;
            return compare(found);
        }
        let next = found + 1;
        transaction
            .batch_execute(MIGRATIONS[(next - 1) as usize])
            .await?;
        transaction
            .execute(
                "UPDATE workerpool.schema_version SET version = $1",
                &[&next],
            )
            .await?;
        transaction.commit().await?;
        log::info!("workerpool schema migrated to version {next}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_other_than_this_builds_name_both() {
        assert!(compare(SCHEMA_VERSION).is_ok());
        let old = compare(0).unwrap_err().to_string();
        assert!(old.contains("version 0") && old.contains(&format!("version {SCHEMA_VERSION}")));
        let new = compare(SCHEMA_VERSION + 1).unwrap_err().to_string();
        assert!(
            new.contains(&format!("version {}", SCHEMA_VERSION + 1)) && new.contains("upgrade")
        );
    }
}
