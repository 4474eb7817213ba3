//! Database connections. One migration set serves SQLite (embedded default) and PostgreSQL.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr, SqlErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use sea_orm::DatabaseConnection as Db;

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let sqlite = url.starts_with("sqlite:");
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(if sqlite { 8 } else { 20 })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        // WAL lets readers run beside the one writer; NORMAL sync is durable across process crashes (not power loss,
        // which WAL+NORMAL may lose the last transaction of). The busy timeout queues writers instead of failing.
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // 16 MiB of page cache per connection instead of 2: the license log's indexes stay in memory, so
                // inserts into them do not spill pages to the WAL mid-transaction.
                .pragma("cache_size", "-16384")
        });
    Database::connect(options).await
}

/// Begin a transaction that reads and then writes. On SQLite it starts as a write transaction (BEGIN IMMEDIATE): a
/// deferred one that reads first and writes later fails with SQLITE_BUSY at once, without waiting out the busy timeout,
/// when another connection wrote in between (its snapshot is stale), so under load such transactions fail instead of
/// queueing. PostgreSQL ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// True when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// True when `err` is a unique-constraint violation (portable across SQLite and PostgreSQL).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// The connection pool's open and idle connections, for the `clavis_db_pool_connections` gauges.
pub fn pool_stats(db: &DatabaseConnection) -> Option<(u32, usize)> {
    // Ask the backend first: the pool getters panic on the other backend.
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            Some((pool.size(), pool.num_idle()))
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            Some((pool.size(), pool.num_idle()))
        }
        _ => None,
    }
}
