//! Migrations and schema versions.

use actix_workerpool::postgres::{DurableError, Queue, SCHEMA_VERSION};

use crate::cluster::Cluster;

#[actix_rt::test]
async fn a_database_without_the_schema_is_refused_until_migrated() {
    let db = Cluster::shared().database();
    match Queue::connect(&db).await {
        Err(DurableError::SchemaTooOld { found, expected }) => {
            assert_eq!((found, expected), (0, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooOld, got {:?}", other.err()),
    }
    Queue::migrate(&db).await.expect("migrate");
    Queue::connect(&db).await.expect("connect after migrating");
}

#[actix_rt::test]
async fn migrating_twice_and_from_several_processes_at_once_applies_each_migration_once() {
    let db = Cluster::shared().database();
    let migrations: Vec<_> = (0..4).map(|_| Queue::migrate(&db)).collect();
    for migrated in futures::future::join_all(migrations).await {
        migrated.expect("concurrent migrate");
    }
    Queue::migrate(&db).await.expect("migrate again");
    let client = crate::client(&db).await;
    let row = client
        .query_one("SELECT version FROM workerpool.schema_version", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), SCHEMA_VERSION);
}

#[actix_rt::test]
async fn a_schema_newer_than_this_build_names_both_versions() {
    let db = Cluster::shared().database();
    Queue::migrate(&db).await.unwrap();
    let client = crate::client(&db).await;
    client
        .execute(
            "UPDATE workerpool.schema_version SET version = version + 1",
            &[],
        )
        .await
        .unwrap();
    for refused in [
        Queue::connect(&db).await.err(),
        Queue::migrate(&db).await.err(),
    ] {
        match refused {
            Some(DurableError::SchemaTooNew { found, expected }) => {
                assert_eq!((found, expected), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}

#[actix_rt::test]
async fn an_unreachable_database_is_a_typed_connect_error() {
    let nowhere = "host=/nonexistent-workerpool-socket-dir port=5432 user=postgres dbname=x connect_timeout=2";
    match Queue::connect(nowhere).await {
        Err(error @ DurableError::Connect(_)) => {
            assert!(std::error::Error::source(&error).is_some());
        }
        other => panic!("expected Connect, got {:?}", other.err()),
    }
}
