//! The tables the token service owns.

pub(crate) mod token_signing_keys {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "token_signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        /// The JWT `kid` that names this key.
        pub kid: String,
        pub algorithm: String,
        /// The HS256 secret, envelope-encrypted (context `token_key/<tenant>/<kid>`).
        pub secret_sealed: Vec<u8>,
        pub status: String,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
