//! Leases.

use capstan_store::testing::TestBackend;
use capstan_store::*;

use crate::each_backend;

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        assert!(
            store
                .acquire_lease("rollouts", "a", 1_000, 100)
                .await
                .unwrap()
        );
        assert!(
            !store
                .acquire_lease("rollouts", "b", 1_050, 100)
                .await
                .unwrap()
        );
        assert!(
            store
                .acquire_lease("rollouts", "a", 1_090, 100)
                .await
                .unwrap(),
            "renewed"
        );
        assert!(
            !store
                .acquire_lease("rollouts", "b", 1_150, 100)
                .await
                .unwrap()
        );
        assert!(
            store
                .acquire_lease("rollouts", "b", 1_190, 100)
                .await
                .unwrap(),
            "expired"
        );
        assert!(
            !store
                .acquire_lease("rollouts", "a", 1_200, 100)
                .await
                .unwrap()
        );
    }
    each_backend!(check);
}
