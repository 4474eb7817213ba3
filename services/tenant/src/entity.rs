//! The tables the tenant service owns. Private to this crate: other crates use the service's functions.

pub(crate) mod tenants {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        #[sea_orm(unique)]
        pub site_id: String,
        pub status: String,
        #[sea_orm(column_type = "Text")]
        pub default_policy: String,
        #[sea_orm(column_type = "Text")]
        pub allowed_origins: String,
        pub clock_skew_seconds: i32,
        pub token_ttl_seconds: i32,
        /// Server configuration data as JSON; NULL for tenants made before it existed (they get the defaults).
        #[sea_orm(column_type = "Text", nullable)]
        pub server_config: Option<String>,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod users {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        #[sea_orm(unique)]
        pub email: String,
        pub password_hash: Option<String>,
        pub role: String,
        pub email_verified_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod staff_accounts {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "staff_accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(unique)]
        pub email: String,
        pub password_hash: String,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod api_keys {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub name: String,
        pub prefix: String,
        #[sea_orm(unique)]
        pub key_hash: String,
        pub created_at: DateTimeUtc,
        pub last_used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod tenant_secrets {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenant_secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub kind: String,
        pub name: String,
        /// Non-secret facts about the value, JSON.
        #[sea_orm(column_type = "Text")]
        pub meta: String,
        /// The value, envelope-encrypted (context `tenant_secret/<tenant>/<kind>/<name>`).
        pub value_sealed: Vec<u8>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod console_sessions {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "console_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub user_id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub last_seen_at: DateTimeUtc,
        pub user_agent: Option<String>,
        pub ip: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod account_tokens {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub user_id: Uuid,
        pub tenant_id: Uuid,
        pub purpose: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod staff_sessions {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "staff_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub staff_id: Uuid,
        pub created_at: DateTimeUtc,
        pub last_seen_at: DateTimeUtc,
        pub user_agent: Option<String>,
        pub ip: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod staff_audit {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "staff_audit")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: DateTimeUtc,
        pub staff_id: Uuid,
        pub staff_email: String,
        pub tenant_id: Option<Uuid>,
        pub action: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub detail: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
