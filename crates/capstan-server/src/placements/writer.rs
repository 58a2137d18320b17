//! Group commit for decisions: every rank logs its decision before it answers, and on
//! SQLite (`synchronous=FULL`) or PostgreSQL each commit waits for a flush to disk. Alone,
//! a request writes its decision in a transaction of its own, as before; when requests
//! come together, the ones that arrive while a commit is under way wait for it and then
//! go in the next transaction together, so many decisions share one flush.
//!
//! No background task: the first waiter to get the flush lock writes everything queued
//! and answers every request in the batch; the others find their answer when they get
//! the lock. The write itself runs in a spawned task, so a request dropped mid-write
//! (its client gone) cannot leave the others of its batch without an answer.

use std::sync::{Arc, Mutex};

use capstan_store::{DecisionRecord, Store, StoreError};
use tokio::sync::oneshot;

use crate::core::error::Failure;

/// What a queued decision learns: whether it was logged (false: its event id was used),
/// or why the batch failed.
type Outcome = Result<bool, String>;

/// The most decisions one transaction takes.
const MOST_PER_BATCH: usize = 256;

#[derive(Default)]
pub struct DecisionWriter {
    queue: Mutex<Vec<(DecisionRecord, oneshot::Sender<Outcome>)>>,
    flushing: tokio::sync::Mutex<()>,
}

impl DecisionWriter {
    /// Logs the decision, durably, before returning; an event id already used is
    /// `AlreadyExists`, as the store's own `insert_decision` says it.
    pub async fn write(
        &self,
        store: &Arc<dyn Store>,
        decision: DecisionRecord,
    ) -> Result<(), Failure> {
        let event_id = decision.event_id.clone();
        let (sender, mut receiver) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((decision, sender));
        loop {
            let _flushing = self.flushing.lock().await;
            match receiver.try_recv() {
                Ok(outcome) => return answer(outcome, event_id),
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err(Failure::Internal(anyhow::anyhow!(
                        "the decision's batch was abandoned"
                    )));
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch: Vec<_> = {
                let mut queue = self
                    .queue
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let take = queue.len().min(MOST_PER_BATCH);
                queue.drain(..take).collect()
            };
            let store = store.clone();
            let flush = tokio::spawn(async move {
                let (decisions, senders): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                match store.insert_decisions(&decisions).await {
                    Ok(inserted) => {
                        for (sender, inserted) in senders.into_iter().zip(inserted) {
                            let _ = sender.send(Ok(inserted));
                        }
                    }
                    Err(error) => {
                        let message = format!("{:#}", anyhow::Error::from(error));
                        for sender in senders {
                            let _ = sender.send(Err(message.clone()));
                        }
                    }
                }
            });
            if let Err(error) = flush.await {
                return Err(Failure::Internal(anyhow::anyhow!(
                    "writing decisions failed: {error}"
                )));
            }
            // Ours was in the batch unless more than a batch was queued before it; then
            // the loop takes the next one.
        }
    }
}

fn answer(outcome: Outcome, event_id: String) -> Result<(), Failure> {
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(StoreError::AlreadyExists {
            kind: "event",
            key: event_id,
        }
        .into()),
        Err(message) => Err(Failure::Internal(anyhow::anyhow!(message))),
    }
}
