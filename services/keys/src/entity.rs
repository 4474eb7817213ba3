//! The tables the key service owns. Private to this crate: other crates use [`crate::KeyStore`].

pub(crate) mod contents {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub content_id: String,
        pub created_at: DateTimeUtc,
        /// The content's policy (JSON): license parameters stored with the video, narrowing the tenant default.
        #[sea_orm(column_type = "Text", nullable)]
        pub policy: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod content_keys {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "content_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub content_ref: Uuid,
        /// Position in the content's key list (the order keys were requested or imported in).
        pub ordinal: i32,
        pub track_type: String,
        pub kid: String,
        /// The content key, envelope-encrypted under the master key (context `content_key/<tenant>/<kid>`).
        pub key_sealed: Vec<u8>,
        pub iv: String,
        pub source: String,
        pub created_at: DateTimeUtc,
        /// The crypto period (live key rotation) the key belongs to; `None` for a key that does not rotate.
        pub period_index: Option<i64>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod widevine_signers {
    use sea_orm::entity::prelude::*;

    /// Which tenant owns a Widevine signer name (the key material is in the tenant's secrets vault).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "widevine_signers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
