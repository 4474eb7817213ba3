//! Master-key rotation: re-wrap every sealed value in the database under the current master key.
//!
//! Each crate that stores sealed values describes its column as a [`SealedColumn`] (the table, the sealed column,
//! and how to rebuild the context string a row was sealed with). [`rotate`] walks each table in primary-key order,
//! one transaction per batch: a batch either commits entirely or not at all, and rows already under the current key
//! are skipped, so an interrupted rotation (killed, crashed, database restarted) resumes by running it again and can
//! never lose a key. Each write is a compare-and-swap on the value read, so a secret that a live instance replaces
//! during the rotation keeps its new value. Only data keys are re-wrapped; the secrets themselves are never decrypted.

use std::time::Duration;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult};
use serde::Serialize;
use uuid::Uuid;

use crate::crypto::MasterKey;
use crate::error::{ClavisError, Result};

/// A table column holding values sealed by [`MasterKey::seal`].
pub struct SealedColumn {
    pub table: &'static str,
    /// The sealed column (bytes); empty values (nothing sealed) are skipped.
    pub column: &'static str,
    /// Columns the context is rebuilt from; the primary key `id` (UUID) is always read.
    pub context_columns: &'static [&'static str],
    /// The context string the row's value was sealed with.
    pub context: fn(&QueryResult) -> std::result::Result<String, sea_orm::DbErr>,
}

/// What one table's pass did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct TableReport {
    pub table: &'static str,
    pub scanned: u64,
    pub rewrapped: u64,
}

/// How many sealed values each master key holds in one table.
#[derive(Debug, Serialize)]
pub struct TableStatus {
    pub table: &'static str,
    /// Master key id (hex) -> number of values.
    pub by_key: std::collections::BTreeMap<String, u64>,
}

/// Re-wrap one batch of `column`'s rows after `after` (by id). Returns the last id seen (None when the table is done).
async fn rotate_batch(
    db: &DatabaseConnection,
    master: &MasterKey,
    column: &SealedColumn,
    after: Option<Uuid>,
    batch_size: u64,
    report: &mut TableReport,
) -> Result<Option<Uuid>> {
    let txn = crate::db::begin_write(db).await?;
    let rows = read_batch(&txn, column, after, batch_size).await?;
    let Some(last) = rows.last().map(|(id, _, _)| *id) else {
        txn.commit().await?;
        return Ok(None);
    };
    rewrap_rows(&txn, master, column, &rows, report).await?;
    txn.commit().await?;
    Ok((rows.len() as u64 == batch_size).then_some(last))
}

/// Re-wrap the rows read, each only if it still holds the value read: a secret that a running instance replaced
/// meanwhile (sealed under the current key already) must not be overwritten with the re-wrapped old value, or the
/// new secret would be lost. Such a row is read again and re-wrapped if it still needs it.
async fn rewrap_rows(
    db: &impl ConnectionTrait,
    master: &MasterKey,
    column: &SealedColumn,
    rows: &[(Uuid, String, Vec<u8>)],
    report: &mut TableReport,
) -> Result<()> {
    for (id, context, sealed) in rows {
        report.scanned += 1;
        let (mut context, mut sealed) = (context.clone(), sealed.clone());
        // A value replaced again and again between our read and write is retried a few times, then left for the
        // next run (`master-key status` shows what is still under an old key).
        for _ in 0..3 {
            if sealed.is_empty() {
                break;
            }
            let Some(rewrapped) = master.rewrap(&context, &sealed)? else { break };
            let update = Query::update()
                .table(Alias::new(column.table))
                .value(Alias::new(column.column), rewrapped)
                .and_where(Expr::col(Alias::new("id")).eq(*id))
                .and_where(Expr::col(Alias::new(column.column)).eq(sealed.clone()))
                .to_owned();
            if db.execute(&update).await?.rows_affected() == 1 {
                report.rewrapped += 1;
                break;
            }
            match read_row(db, column, *id).await? {
                Some((_, now_context, now_sealed)) => (context, sealed) = (now_context, now_sealed),
                None => break,
            }
        }
    }
    Ok(())
}

async fn read_row(
    db: &impl ConnectionTrait,
    column: &SealedColumn,
    id: Uuid,
) -> Result<Option<(Uuid, String, Vec<u8>)>> {
    let mut select = Query::select();
    select
        .column(Alias::new("id"))
        .column(Alias::new(column.column))
        .columns(column.context_columns.iter().map(|c| Alias::new(*c)))
        .from(Alias::new(column.table))
        .and_where(Expr::col(Alias::new("id")).eq(id));
    match db.query_one(&select).await? {
        Some(row) => {
            let sealed: Vec<u8> = row.try_get("", column.column)?;
            Ok(Some((id, (column.context)(&row)?, sealed)))
        }
        None => Ok(None),
    }
}

async fn read_batch(
    db: &impl ConnectionTrait,
    column: &SealedColumn,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(Uuid, String, Vec<u8>)>> {
    let mut select = Query::select();
    select
        .column(Alias::new("id"))
        .column(Alias::new(column.column))
        .columns(column.context_columns.iter().map(|c| Alias::new(*c)))
        .from(Alias::new(column.table))
        .order_by(Alias::new("id"), Order::Asc)
        .limit(limit);
    if let Some(after) = after {
        select.and_where(Expr::col(Alias::new("id")).gt(after));
    }
    db.query_all(&select)
        .await?
        .iter()
        .map(|row| {
            let id: Uuid = row.try_get("", "id")?;
            let sealed: Vec<u8> = row.try_get("", column.column)?;
            Ok((id, (column.context)(row)?, sealed))
        })
        .collect::<std::result::Result<Vec<_>, sea_orm::DbErr>>()
        .map_err(ClavisError::from)
}

/// Rotate every column, calling `progress` after each committed batch. `pause` between batches limits the load a
/// rotation puts on a live database.
pub async fn rotate(
    db: &DatabaseConnection,
    master: &MasterKey,
    columns: &[SealedColumn],
    batch_size: u64,
    pause: Duration,
    mut progress: impl FnMut(&TableReport),
) -> Result<Vec<TableReport>> {
    let batch_size = Ord::max(batch_size, 1);
    let mut reports = Vec::new();
    for column in columns {
        let mut report = TableReport { table: column.table, ..TableReport::default() };
        let mut after = None;
        loop {
            after = rotate_batch(db, master, column, after, batch_size, &mut report).await?;
            progress(&report);
            if after.is_none() {
                break;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Count the sealed values per master key id in every column (what `clavis master-key status` prints).
pub async fn status(db: &DatabaseConnection, columns: &[SealedColumn]) -> Result<Vec<TableStatus>> {
    let mut out = Vec::new();
    for column in columns {
        let mut by_key = std::collections::BTreeMap::new();
        let mut after = None;
        loop {
            let rows = read_batch(db, column, after, 1000).await?;
            for (_, _, sealed) in &rows {
                if !sealed.is_empty() {
                    let id = MasterKey::sealed_by(sealed).unwrap_or_else(|| "malformed".into());
                    *by_key.entry(id).or_insert(0) += 1;
                }
            }
            match rows.last() {
                Some((id, _, _)) if rows.len() == 1000 => after = Some(*id),
                _ => break,
            }
        }
        out.push(TableStatus { table: column.table, by_key });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Database};

    use super::*;

    const COLUMN: SealedColumn = SealedColumn {
        table: "secrets",
        column: "sealed",
        context_columns: &["ctx"],
        context: |row| row.try_get("", "ctx"),
    };

    #[tokio::test]
    async fn a_value_replaced_during_the_rotation_is_kept_not_overwritten() {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared("CREATE TABLE secrets (id BLOB PRIMARY KEY, ctx TEXT NOT NULL, sealed BLOB NOT NULL)")
            .await
            .unwrap();
        let old_encoded = MasterKey::generate_base64().unwrap();
        let old = MasterKey::from_base64(&old_encoded).unwrap();
        let new_encoded = MasterKey::generate_base64().unwrap();
        let new = MasterKey::from_base64(&new_encoded).unwrap();
        let rotating = MasterKey::from_base64(&new_encoded)
            .unwrap()
            .with_previous(vec![MasterKey::from_base64(&old_encoded).unwrap()]);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for (id, value) in [(a, b"secret a".as_slice()), (b, b"secret b")] {
            let sealed = old.seal("ctx", value).unwrap();
            let insert = Query::insert()
                .into_table(Alias::new("secrets"))
                .columns([Alias::new("id"), Alias::new("ctx"), Alias::new("sealed")])
                .values_panic([id.into(), "ctx".into(), sealed.into()])
                .to_owned();
            db.execute(&insert).await.unwrap();
        }
        // The rotation reads both rows; then an instance replaces b (sealed under the new key) before the write.
        let rows = read_batch(&db, &COLUMN, None, 10).await.unwrap();
        let replaced = new.seal("ctx", b"secret b, version 2").unwrap();
        let update = Query::update()
            .table(Alias::new("secrets"))
            .value(Alias::new("sealed"), replaced)
            .and_where(Expr::col(Alias::new("id")).eq(b))
            .to_owned();
        db.execute(&update).await.unwrap();
        let mut report = TableReport::default();
        rewrap_rows(&db, &rotating, &COLUMN, &rows, &mut report).await.unwrap();
        assert_eq!((report.scanned, report.rewrapped), (2, 1), "a re-wrapped; b already under the new key");
        let after = read_batch(&db, &COLUMN, None, 10).await.unwrap();
        let open = |id: Uuid| {
            let (_, ctx, sealed) = after.iter().find(|(i, _, _)| *i == id).unwrap();
            new.open(ctx, sealed).unwrap().to_vec()
        };
        assert_eq!(open(a), b"secret a");
        assert_eq!(open(b), b"secret b, version 2", "the newer value survives the rotation");
    }
}
