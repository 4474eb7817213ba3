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
        /// The HS256 secret or the Ed25519 private key (PKCS#8), envelope-encrypted (context
        /// `token_key/<tenant>/<kid>`); empty for a registered EdDSA public key, which only verifies.
        pub secret_sealed: Vec<u8>,
        /// The Ed25519 public key of an EdDSA key.
        pub public_key: Option<Vec<u8>>,
        pub status: String,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod used_tokens {
    use sea_orm::entity::prelude::*;

    /// Single-use tokens already used, until they expire.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "used_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        /// `<format>:<jti>`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_id: String,
        pub expires_at_ms: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod token_issuers {
    use sea_orm::entity::prelude::*;

    /// Which tenant owns the issuer name another service's token carries (a PallyCon site id, ...).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "token_issuers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub format: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub issuer: String,
        pub tenant_id: Uuid,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
