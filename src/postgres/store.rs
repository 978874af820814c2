//! The statements a worker process runs against the jobs table: claim,
//! record, renew, reclaim. Each finishing statement is guarded by the lease
//! token the claim handed out, so a process whose lease was taken over
//! records nothing.

use std::time::{Duration, SystemTime};

use tokio_postgres::Client;

use super::DurableError;

/// A job this process claimed: its row, under the lease `token`.
pub(super) struct Claimed {
    pub(super) id: i64,
    pub(super) token: i64,
    pub(super) payload: serde_json::Value,
    /// Attempts begun, this one included.
    pub(super) attempts: u32,
    pub(super) max_attempts: u32,
}

/// How a claimed job's attempt ended, as the table records it.
pub(super) enum Record {
    /// Ran to success.
    Done,
    /// Failed; ready again after `delay`, with `error`.
    Retry { delay: Duration, error: String },
    /// Failed its last attempt, or cannot run at all.
    Dead { error: String },
    /// Not started (the pool stopped first): ready again now, the attempt
    /// not counted.
    Release,
}

/// Ids and tokens, in the order of the ids: statements that update many
/// rows lock them in one order everywhere, so that two never deadlock.
fn by_id(jobs: &[(i64, i64)]) -> (Vec<i64>, Vec<i64>) {
    let mut jobs = jobs.to_vec();
    jobs.sort_unstable();
    jobs.into_iter().unzip()
}

/// Microseconds, as the statements take durations (saturating).
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Claims up to `limit` ready jobs of `kind`, due now, highest priority
/// first, under a lease of `lease` for `owner`; counts each one's attempt.
pub(super) async fn claim(
    client: &Client,
    kind: &str,
    limit: usize,
    owner: &str,
    lease: Duration,
) -> Result<Vec<Claimed>, DurableError> {
    let token = fastrand::i64(..);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "WITH picked AS ( \
                 SELECT id FROM workerpool.jobs \
                 WHERE kind = $1 AND state = 'ready' AND run_at <= now() \
                 ORDER BY priority DESC, run_at, id \
                 LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE workerpool.jobs AS j SET state = 'running', attempts = j.attempts + 1, \
                 lease_owner = $3, lease_token = $4, \
                 lease_expires_at = now() + make_interval(secs => $5::bigint / 1e6) \
             FROM picked WHERE j.id = picked.id \
             RETURNING j.id, j.payload, j.attempts, j.max_attempts, j.priority, j.run_at",
            &[&kind, &limit, &owner, &token, &micros(lease)],
        )
        .await?;
    // RETURNING keeps no order: the pool gets them by priority, then due time.
    let mut claimed: Vec<(i16, SystemTime, Claimed)> = rows
        .iter()
        .map(|row| {
            let job = Claimed {
                id: row.get(0),
                token,
                payload: row.get(1),
                attempts: row.get::<_, i32>(2).max(0) as u32,
                max_attempts: row.get::<_, i32>(3).max(1) as u32,
            };
            (row.get(4), row.get(5), job)
        })
        .collect();
    claimed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.id.cmp(&b.2.id)));
    Ok(claimed.into_iter().map(|(_, _, job)| job).collect())
}

/// Records that these jobs (id, token) are done, in one statement; returns
/// the ids it recorded (a job missing was no longer this process's).
pub(super) async fn done(client: &Client, jobs: &[(i64, i64)]) -> Result<Vec<i64>, DurableError> {
    let (ids, tokens) = by_id(jobs);
    let rows = client
        .query(
            "UPDATE workerpool.jobs AS j SET state = 'done', finished_at = now(), \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             FROM unnest($1::bigint[], $2::bigint[]) AS f(id, token) \
             WHERE j.id = f.id AND j.lease_token = f.token AND j.state = 'running' \
             RETURNING j.id",
            &[&ids, &tokens],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Records how one job's attempt ended (anything but done); `false` if the
/// job was no longer this process's.
pub(super) async fn record(
    client: &Client,
    id: i64,
    token: i64,
    record: &Record,
) -> Result<bool, DurableError> {
    const GUARD: &str = "WHERE id = $1 AND lease_token = $2 AND state = 'running'";
    const FREE: &str = "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL";
    let updated = match record {
        Record::Done => return Ok(done(client, &[(id, token)]).await?.len() == 1),
        Record::Retry { delay, error } => {
            client
                .execute(
                    &format!(
                        "UPDATE workerpool.jobs SET state = 'ready', last_error = $3, \
                         run_at = now() + make_interval(secs => $4::bigint / 1e6), {FREE} {GUARD}"
                    ),
                    &[&id, &token, error, &micros(*delay)],
                )
                .await?
        }
        Record::Dead { error } => {
            client
                .execute(
                    &format!(
                        "UPDATE workerpool.jobs SET state = 'dead', last_error = $3, \
                         finished_at = now(), {FREE} {GUARD}"
                    ),
                    &[&id, &token, error],
                )
                .await?
        }
        Record::Release => {
            client
                .execute(
                    &format!(
                        "UPDATE workerpool.jobs SET state = 'ready', \
                         attempts = greatest(attempts - 1, 0), {FREE} {GUARD}"
                    ),
                    &[&id, &token],
                )
                .await?
        }
    };
    Ok(updated == 1)
}

/// Renews the leases of these jobs (id, token) by `lease` from now.
pub(super) async fn renew(
    client: &Client,
    jobs: &[(i64, i64)],
    lease: Duration,
) -> Result<u64, DurableError> {
    let (ids, tokens) = by_id(jobs);
    Ok(client
        .execute(
            "UPDATE workerpool.jobs AS j \
             SET lease_expires_at = now() + make_interval(secs => $3::bigint / 1e6) \
             FROM unnest($1::bigint[], $2::bigint[]) AS h(id, token) \
             WHERE j.id = h.id AND j.lease_token = h.token AND j.state = 'running'",
            &[&ids, &tokens, &micros(lease)],
        )
        .await?)
}

/// Returns the jobs whose lease expired (their process died, or lost the
/// database for longer than the lease) to the queue, or, past their last
/// attempt, to the dead letters; returns how many.
pub(super) async fn reclaim(client: &Client) -> Result<u64, DurableError> {
    // Rows another process is reclaiming or recording are left to it.
    Ok(client
        .execute(
            "UPDATE workerpool.jobs SET \
                 state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'ready' END, \
                 finished_at = CASE WHEN attempts >= max_attempts THEN now() END, \
                 last_error = 'the lease expired: the process running it stopped \
                               or lost the database' \
                              || coalesce(' (its last error before: ' || last_error || ')', ''), \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             WHERE id IN (SELECT id FROM workerpool.jobs \
                          WHERE state = 'running' AND lease_expires_at < now() \
                          ORDER BY id FOR UPDATE SKIP LOCKED)",
            &[],
        )
        .await?)
}

/// When the next ready job of `kind` is due, if any is.
pub(super) async fn next_due(
    client: &Client,
    kind: &str,
) -> Result<Option<SystemTime>, DurableError> {
    let row = client
        .query_one(
            "SELECT min(run_at) FROM workerpool.jobs WHERE kind = $1 AND state = 'ready'",
            &[&kind],
        )
        .await?;
    Ok(row.get(0))
}

/// Deletes jobs that ended longer than `retention` ago.
pub(super) async fn prune(client: &Client, retention: Duration) -> Result<u64, DurableError> {
    Ok(client
        .execute(
            "DELETE FROM workerpool.jobs WHERE state IN ('done', 'dead') \
             AND finished_at < now() - make_interval(secs => $1::bigint / 1e6)",
            &[&micros(retention)],
        )
        .await?)
}
