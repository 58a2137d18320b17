//! API tokens.

use capstan_model::Role;
use capstan_store::testing::TestBackend;
use capstan_store::*;

use crate::each_backend;
use crate::helpers::{audit, bootstrapped, env, project, token};

#[tokio::test]
async fn tokens_rotate_and_revoke() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let mut sdk = token("sdk1", Role::Sdk, "hash-sdk1");
        sdk.project = Some(project());
        sdk.environment = Some(env("production"));
        store
            .create_token(sdk.clone(), audit("token.create", "sdk1"))
            .await
            .unwrap();
        assert_eq!(
            store.token_by_hash("hash-sdk1").await.unwrap(),
            Some(sdk.clone())
        );

        let replacement = TokenRecord {
            id: "sdk2".to_owned(),
            hash: "hash-sdk2".to_owned(),
            ..sdk.clone()
        };
        store
            .rotate_token("sdk1", 500, replacement, audit("token.rotate", "sdk1"))
            .await
            .unwrap();
        let old = store.token_by_id("sdk1").await.unwrap();
        assert_eq!(old.expires_at, Some(500));
        assert!(old.is_valid_at(499) && !old.is_valid_at(500));
        assert!(store.token_by_id("sdk2").await.unwrap().is_valid_at(10_000));

        store
            .revoke_token("sdk2", 600, audit("token.revoke", "sdk2"))
            .await
            .unwrap();
        assert!(!store.token_by_id("sdk2").await.unwrap().is_valid_at(601));
        assert!(matches!(
            store
                .revoke_token("sdk2", 601, audit("token.revoke", "sdk2"))
                .await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.list_tokens().await.unwrap().len(), 3);
    }
    each_backend!(check);
}
