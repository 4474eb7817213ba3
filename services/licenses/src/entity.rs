//! The tables the license service owns.

pub(crate) mod license_log {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "license_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: Uuid,
        /// Unix time in milliseconds (an integer so time-range scans stay index-ordered on both databases).
        pub at_ms: i64,
        pub drm: String,
        pub user_id: Option<String>,
        pub content_id: Option<String>,
        /// Requested KIDs, hex, comma-separated.
        #[sea_orm(column_type = "Text")]
        pub kids: String,
        pub outcome: String,
        pub error_code: Option<i32>,
        pub rule: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub detail: Option<String>,
        pub latency_us: i64,
        pub client_ip: Option<String>,
        pub origin: Option<String>,
        pub request_id: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
