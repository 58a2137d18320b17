/// What can go wrong in the store. The server maps each variant to one HTTP status and
/// one stable error code; `Database` is the only one a client never sees the details of.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {key:?} not found")]
    NotFound { kind: &'static str, key: String },

    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: &'static str, key: String },

    /// The row changed since the writer read it: optimistic concurrency lost.
    #[error("{kind} {key:?} was changed concurrently; its current version is {current_version}")]
    VersionConflict {
        kind: &'static str,
        key: String,
        current_version: i64,
    },

    /// The environment changed since the writer loaded it; the writer reloads and retries.
    #[error("environment {environment:?} was changed concurrently")]
    RevisionConflict { environment: String },

    /// The scheduled change was already carried out, cancelled or failed elsewhere.
    #[error("scheduled change {id} is no longer pending")]
    AlreadySettled { id: i64 },

    #[error("stored data is not valid: {0}")]
    Corrupt(String),

    #[error("failed to open store: {0}")]
    Open(String),

    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the database could not be reached, as opposed to refusing the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            )
        )
    }
}
