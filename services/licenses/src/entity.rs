//! The tables the license service owns.

pub(crate) mod license_stats {
    use sea_orm::entity::prelude::*;

    /// Hourly counts kept beside the log (see the `license_stats` migration).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "license_stats")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub hour_ms: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub drm: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub outcome: String,
        /// 0 for issued licenses.
        #[sea_orm(primary_key, auto_increment = false)]
        pub error_code: i32,
        pub requests: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

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
        pub device_id: Option<String>,
        pub flag: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod devices {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "devices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub device_id: String,
        pub user_id: String,
        pub name: String,
        #[sea_orm(column_type = "Text")]
        pub public_key: String,
        pub generation: i32,
        pub state: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod device_revocations {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "device_revocations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub device_id: String,
        pub generation: i32,
        pub revoked_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod device_bundles {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "device_bundles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub device_id: String,
        pub content_id: String,
        pub generation: i32,
        #[sea_orm(column_type = "Text")]
        pub jwe: String,
        pub expires_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod license_devices {
    use sea_orm::entity::prelude::*;

    /// A device a user obtained licenses on (device limits).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "license_devices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub device_id: String,
        pub drm: String,
        pub first_seen_ms: i64,
        pub last_seen_ms: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod stream_slots {
    use sea_orm::entity::prelude::*;

    /// A stream a user is playing: held by a license with a renewal interval, extended by its renewals.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stream_slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub stream_id: String,
        pub content_id: String,
        pub device_id: Option<String>,
        pub drm: String,
        pub started_ms: i64,
        pub renewed_ms: i64,
        pub expires_ms: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod client_states {
    use sea_orm::entity::prelude::*;

    /// The highest client state counter a device has shown (rollback detection).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "client_states")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub device_id: String,
        pub counter: i64,
        pub updated_ms: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
