//! Scheduled flag changes.

use capstan_store::testing::TestBackend;
use capstan_store::*;
use serde_json::json;

use crate::each_backend;
use crate::helpers::{audit, bootstrapped, create_flag, env, flag, project};

#[tokio::test]
async fn a_schedule_settles_once() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let schedule = NewSchedule {
            project: project(),
            environment: env("production"),
            flag: flag("checkout"),
            run_at: 1_000,
            action: json!({"kind": "enable"}),
            created_by: "tester".to_owned(),
            created_at: 10,
        };
        let created = store
            .create_schedule(schedule, audit("schedule.create", "checkout"))
            .await
            .unwrap();
        assert!(store.due_schedules(999).await.unwrap().is_empty());
        let due = store.due_schedules(1_000).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, created.id);
        // A change that carries the schedule out settles it in the same transaction; a
        // second one (another replica) finds it settled and changes nothing.
        let mut carry_out = create_flag("checkout", 0);
        carry_out
            .writes
            .push(ScheduleWrite::Settle(created.id).into());
        carry_out.at = 1_001;
        store.apply(carry_out).await.unwrap();
        let mut again = create_flag("other", 1);
        again.writes.push(ScheduleWrite::Settle(created.id).into());
        assert!(matches!(
            store.apply(again).await,
            Err(StoreError::AlreadySettled { .. })
        ));
        assert_eq!(
            store
                .load_environment(&project(), &env("production"))
                .await
                .unwrap()
                .flags
                .len(),
            1
        );
        assert!(
            !store
                .settle_schedule(created.id, ScheduleOutcome::Applied, 1_002)
                .await
                .unwrap()
        );
        assert!(store.due_schedules(2_000).await.unwrap().is_empty());
        let listed = store
            .list_schedules(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(listed[0].status, ScheduleStatus::Applied);
        assert_eq!(listed[0].settled_at, Some(1_001));
    }
    each_backend!(check);
}
