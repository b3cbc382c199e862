//! The embedded store (SQLite, bundled): the journal of handled triggered events and the
//! pending manual approvals.
//!
//! One writer thread owns the connection and applies operations in batches, one transaction
//! per batch ("group commit"): under load, thousands of journal writes share one commit, so
//! the journal costs little throughput while every `.started` is still preceded by a durable
//! record of the event.
//!
//! Journal states of a triggered event:
//! - `accepted`: recorded, `.started` not yet known to be sent;
//! - `started`: `.started` sent, the handler runs;
//! - `pending`: waiting for a manual decision (approvals);
//! - `finishing`: the `.finished` is recorded (column `reply`, the outbox) and not yet known
//!   to be published;
//! - `finished`: `.finished` sent (or, for approvals, sent by someone else).
//!
//! After a crash, `accepted` rows get their `.started` again (same id), `finishing` rows have
//! their recorded `.finished` sent again as it was, `accepted` and `started` rows are answered
//! with an `errored` `.finished` (see `crate::dispatch::Dispatcher::recover`), and `pending`
//! rows stay pending.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod history;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::keptn::envelope::salvage_scope;
use crate::keptn::{EventType, TriggeredEvent};
use crate::untrusted::RawObject;

/// Store failures (all of them mean the store cannot be trusted for this operation).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("store error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot encode or decode a journal entry: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the store could not commit: {0}")]
    Commit(String),
    #[error("the store is closed")]
    Closed,
}

/// Where a triggered event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalState {
    Accepted,
    Started,
    Pending,
    Finishing,
    Finished,
}

impl JournalState {
    fn as_str(self) -> &'static str {
        match self {
            JournalState::Accepted => "accepted",
            JournalState::Started => "started",
            JournalState::Pending => "pending",
            JournalState::Finishing => "finishing",
            JournalState::Finished => "finished",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" => JournalState::Accepted,
            "started" => JournalState::Started,
            "pending" => JournalState::Pending,
            "finishing" => JournalState::Finishing,
            "finished" => JournalState::Finished,
            _ => return None,
        })
    }
}

/// A journal row that is not finished.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenEntry {
    pub event: TriggeredEvent,
    pub state: JournalState,
    /// Why it waits (pending approvals).
    pub reason: Option<String>,
    /// Unix milliseconds when the event was accepted.
    pub received_at_ms: i64,
    /// Why the stored event could only be read in part (see [`read_event`]).
    pub unreadable: Option<String>,
    /// The recorded `.finished` (JSON CloudEvent) of a `finishing` entry.
    pub reply: Option<String>,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Answers one caller once its batch is committed (the argument is the commit error, if any).
type Answer = Box<dyn FnOnce(Option<&str>)>;

enum Op {
    Accept(Box<TriggeredEvent>, Reply<bool>),
    SetState(String, JournalState, Option<String>),
    Settle(String, Option<String>, Reply<Option<TriggeredEvent>>),
    RecordReply(String, String, Reply<()>),
    Open(Reply<Vec<OpenEntry>>),
    Get(String, Reply<Option<(TriggeredEvent, JournalState)>>),
    Prune(i64, Reply<usize>),
    Flush(Reply<()>),
    RecordEvaluation(Box<EvaluationRecord>, Reply<()>),
    Evaluations(EvaluationQuery, Reply<Vec<(String, String)>>),
}

/// One evaluation result this service produced (the standalone history).
#[derive(Debug, Clone)]
pub struct EvaluationRecord {
    pub id: String,
    pub project: String,
    pub stage: String,
    pub service: String,
    pub result: String,
    /// The `evaluation.finished` data, JSON.
    pub data: String,
}

/// Which evaluation results to read, newest first.
#[derive(Debug, Clone)]
pub struct EvaluationQuery {
    pub project: String,
    pub stage: String,
    pub service: String,
    /// Only these `data.result` values; `None` for all.
    pub include: Option<Vec<String>>,
    pub limit: usize,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Op>,
    /// Alive while any handle is; the checkpoint thread stops when it is gone.
    _alive: std::sync::Arc<()>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    triggered_id  TEXT PRIMARY KEY,
    keptn_context TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    event         TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT,
    reply         TEXT,
    received_at   INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_open ON journal(state) WHERE state <> 'finished';
CREATE INDEX IF NOT EXISTS journal_updated ON journal(updated_at);
CREATE TABLE IF NOT EXISTS evaluations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL,
    project    TEXT NOT NULL,
    stage      TEXT NOT NULL,
    service    TEXT NOT NULL,
    result     TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_scope ON evaluations(project, stage, service, seq);
";

/// How many operations one transaction takes at most.
const MAX_BATCH: usize = 4096;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Store {
    /// Opens (or creates) `<dir>/keptn-native.db` and starts the writer thread.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("keptn-native.db");
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: rusqlite::Error::InvalidPath(format!("{}: {e}", dir.display()).into()),
        })?;
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // WAL + NORMAL: a commit is durable against a process crash (what the journal is for)
        // without an fsync per transaction.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        // Journals written before the outbox existed lack its column.
        if conn.prepare("SELECT reply FROM journal LIMIT 0").is_err() {
            conn.execute_batch("ALTER TABLE journal ADD COLUMN reply TEXT")
                .map_err(open_err)?;
        }
        // Checkpoints (the only fsyncs) run on their own connection and thread, so that a
        // slow disk never stalls the commit in front of a `.started`.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(open_err)?;
        let checkpointer = Connection::open(&path).map_err(open_err)?;
        checkpointer
            .busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: rusqlite::Error::InvalidPath(e.to_string().into()),
            })?;
        let alive = std::sync::Arc::new(());
        let watch = std::sync::Arc::downgrade(&alive);
        thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, watch))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: rusqlite::Error::InvalidPath(e.to_string().into()),
            })?;
        Ok(Store { tx, _alive: alive })
    }

    async fn call<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(op(tx)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Records a new triggered event as `accepted`. `false` if its id is already in the
    /// journal (a duplicate delivery).
    pub async fn accept(&self, event: &TriggeredEvent) -> Result<bool, StoreError> {
        self.call(|r| Op::Accept(Box::new(event.clone()), r)).await
    }

    /// Moves an entry to a new state without waiting for the commit.
    pub fn set_state(&self, triggered_id: &str, state: JournalState, reason: Option<String>) {
        // A closed store only happens at shutdown; recovery covers what was not written.
        let _ = self
            .tx
            .send(Op::SetState(triggered_id.to_string(), state, reason));
    }

    /// Moves an entry to a new state and waits until that is committed.
    pub async fn mark(
        &self,
        triggered_id: &str,
        state: JournalState,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        self.set_state(triggered_id, state, reason);
        self.flush().await
    }

    /// Claims a pending entry for settling and returns it, or `None` if it was not pending
    /// (unknown, or already settled by someone else). With `reply` (the `.finished` to send,
    /// JSON), the entry moves to `finishing` with that reply in the outbox; without, to
    /// `finished` (someone else sent it).
    pub async fn settle(
        &self,
        triggered_id: &str,
        reply: Option<String>,
    ) -> Result<Option<TriggeredEvent>, StoreError> {
        self.call(|r| Op::Settle(triggered_id.to_string(), reply, r))
            .await
    }

    /// Records the `.finished` about to be published (the outbox): the entry moves to
    /// `finishing`. Returns once that is committed.
    pub async fn record_reply(&self, triggered_id: &str, reply: String) -> Result<(), StoreError> {
        self.call(|r| Op::RecordReply(triggered_id.to_string(), reply, r))
            .await
    }

    /// Every entry that is not finished, oldest first.
    pub async fn open_entries(&self) -> Result<Vec<OpenEntry>, StoreError> {
        self.call(Op::Open).await
    }

    /// One entry by triggered id.
    pub async fn get(
        &self,
        triggered_id: &str,
    ) -> Result<Option<(TriggeredEvent, JournalState)>, StoreError> {
        self.call(|r| Op::Get(triggered_id.to_string(), r)).await
    }

    /// Deletes finished entries older than `age`; returns how many.
    pub async fn prune_finished(&self, age: Duration) -> Result<usize, StoreError> {
        let cutoff = now_ms() - age.as_millis() as i64;
        self.call(|r| Op::Prune(cutoff, r)).await
    }

    /// Records an evaluation result (standalone history for relative criteria).
    pub async fn record_evaluation(&self, record: EvaluationRecord) -> Result<(), StoreError> {
        self.call(|r| Op::RecordEvaluation(Box::new(record), r))
            .await
    }

    /// Earlier evaluation results as `(id, data JSON)`, newest first.
    pub async fn evaluations(
        &self,
        query: EvaluationQuery,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.call(|r| Op::Evaluations(query, r)).await
    }

    /// Waits until every operation sent so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(Op::Flush).await
    }
}

/// Copies the WAL into the database file every half second (PASSIVE: never blocks the
/// writer), until the store is closed.
fn checkpoint_loop(conn: Connection, alive: std::sync::Weak<()>) {
    loop {
        thread::sleep(Duration::from_millis(500));
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "journal checkpoint failed");
        }
    }
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if let Err(e) = apply_batch(&mut conn, batch) {
            tracing::error!(error = %e, "journal batch failed");
        }
    }
}

/// Applies a batch in one transaction, then answers every caller. If the commit fails,
/// every caller gets the error.
fn apply_batch(conn: &mut Connection, batch: Vec<Op>) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    for op in batch {
        answers.push(apply(&tx, op));
    }
    let committed = tx.commit();
    let err = committed.as_ref().err().map(|e| e.to_string());
    for answer in answers {
        answer(err.as_deref());
    }
    committed.map_err(StoreError::from)
}

/// The columns a journal event is read back from.
struct Row {
    json: String,
    id: String,
    keptn_context: String,
    ty: String,
}

impl Row {
    /// Reads `event, triggered_id, keptn_context, event_type` (the first four columns),
    /// whatever their storage class, so that a damaged row cannot fail the whole read.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let text = |i: usize| -> rusqlite::Result<String> {
            use rusqlite::types::ValueRef;
            Ok(match row.get_ref(i)? {
                ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(f) => f.to_string(),
                ValueRef::Null => String::new(),
            })
        };
        Ok(Row {
            json: text(0)?,
            id: text(1)?,
            keptn_context: text(2)?,
            ty: text(3)?,
        })
    }

    /// The stored event. What the journal stored always comes back: an entry that cannot be
    /// decoded in full (written before `data` was limited at intake, or damaged) yields its
    /// correlation columns and whatever of its scope can be read, with the reason.
    fn event(self) -> (TriggeredEvent, Option<String>) {
        match serde_json::from_str::<TriggeredEvent>(&self.json) {
            Ok(ev) => (ev, None),
            Err(e) => {
                let reason = format!("the journal entry could only be read in part: {e}");
                tracing::warn!(triggered_id = %self.id, %reason, "unreadable journal entry");
                (self.salvage(), Some(reason))
            }
        }
    }

    fn salvage(&self) -> TriggeredEvent {
        let obj = RawObject::parse(self.json.as_bytes()).unwrap_or_default();
        let task = match EventType::parse(&self.ty) {
            EventType::Task { task, .. } => task,
            _ => obj.text("task").unwrap_or_default(),
        };
        TriggeredEvent {
            id: self.id.clone(),
            ty: self.ty.clone(),
            task,
            keptn_context: self.keptn_context.clone(),
            git_commit_id: obj.text("git_commit_id"),
            source: obj.text("source").unwrap_or_default(),
            time: obj
                .text("time")
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.to_utc()),
            data: obj.raw("data").map(salvage_scope).unwrap_or_default(),
        }
    }
}

/// Runs one operation and returns the closure that answers its caller once the commit is done.
fn apply(tx: &rusqlite::Transaction<'_>, op: Op) -> Answer {
    fn answer<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Answer {
        Box::new(move |commit_err: Option<&str>| {
            let result = match commit_err {
                Some(e) => Err(StoreError::Commit(e.to_string())),
                None => result,
            };
            let _ = reply.send(result);
        })
    }
    let now = now_ms();
    match op {
        Op::Accept(ev, reply) => {
            let r = (|| -> Result<bool, StoreError> {
                let json = serde_json::to_string(&ev)?;
                let n = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO journal
                         (triggered_id, keptn_context, event_type, event, state, received_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, 'accepted', ?5, ?5)",
                    )?
                    .execute(params![ev.id, ev.keptn_context, ev.ty, json, now])?;
                Ok(n == 1)
            })();
            answer(reply, r)
        }
        Op::SetState(id, state, reason) => {
            let r = tx
                .prepare_cached(
                    "UPDATE journal SET state = ?2, reason = COALESCE(?3, reason), updated_at = ?4
                     WHERE triggered_id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, state.as_str(), reason, now]));
            if let Err(e) = r {
                tracing::error!(error = %e, triggered_id = %id, "cannot update journal state");
            }
            Box::new(|_| {})
        }
        Op::Settle(id, outbox, reply) => {
            let r = (|| -> Result<Option<TriggeredEvent>, StoreError> {
                let state = if outbox.is_some() {
                    JournalState::Finishing
                } else {
                    JournalState::Finished
                };
                let n = tx
                    .prepare_cached(
                        "UPDATE journal SET state = ?3, reply = ?4, updated_at = ?2
                         WHERE triggered_id = ?1 AND state = 'pending'",
                    )?
                    .execute(params![id, now, state.as_str(), outbox])?;
                if n == 0 {
                    return Ok(None);
                }
                let row = tx.query_row(
                    "SELECT event, triggered_id, keptn_context, event_type FROM journal
                     WHERE triggered_id = ?1",
                    params![id],
                    Row::read,
                )?;
                Ok(Some(row.event().0))
            })();
            answer(reply, r)
        }
        Op::RecordReply(id, json, reply) => {
            let r = tx
                .prepare_cached(
                    "UPDATE journal SET state = 'finishing', reply = ?2, updated_at = ?3
                     WHERE triggered_id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, json, now]))
                .map(|_| ())
                .map_err(StoreError::from);
            answer(reply, r)
        }
        Op::Open(reply) => {
            let r = (|| -> Result<Vec<OpenEntry>, StoreError> {
                let mut stmt = tx.prepare_cached(
                    "SELECT event, triggered_id, keptn_context, event_type, state, reason,
                            received_at, reply
                     FROM journal WHERE state <> 'finished' ORDER BY received_at, triggered_id",
                )?;
                let rows = stmt.query_map([], |row| {
                    Ok((
                        Row::read(row)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, Option<String>>(5)?,
                        row.get::<_, i64>(6)?,
                        row.get::<_, Option<String>>(7)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (row, state, reason, received_at_ms, reply) = row?;
                    let Some(state) = JournalState::parse(&state) else {
                        continue;
                    };
                    let (event, unreadable) = row.event();
                    out.push(OpenEntry {
                        event,
                        state,
                        reason,
                        received_at_ms,
                        unreadable,
                        reply,
                    });
                }
                Ok(out)
            })();
            answer(reply, r)
        }
        Op::Get(id, reply) => {
            let r = (|| -> Result<Option<(TriggeredEvent, JournalState)>, StoreError> {
                let row = tx
                    .query_row(
                        "SELECT event, triggered_id, keptn_context, event_type, state
                         FROM journal WHERE triggered_id = ?1",
                        params![id],
                        |row| Ok((Row::read(row)?, row.get::<_, String>(4)?)),
                    )
                    .optional()?;
                Ok(row.map(|(row, state)| {
                    (
                        row.event().0,
                        JournalState::parse(&state).unwrap_or(JournalState::Finished),
                    )
                }))
            })();
            answer(reply, r)
        }
        Op::Prune(cutoff, reply) => {
            let r = tx
                .execute(
                    "DELETE FROM journal WHERE state = 'finished' AND updated_at <= ?1",
                    params![cutoff],
                )
                .map_err(StoreError::from);
            answer(reply, r)
        }
        Op::Flush(reply) => answer(reply, Ok(())),
        Op::RecordEvaluation(rec, reply) => {
            let r = tx
                .prepare_cached(
                    "INSERT INTO evaluations (id, project, stage, service, result, data, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        rec.id,
                        rec.project,
                        rec.stage,
                        rec.service,
                        rec.result,
                        rec.data,
                        now
                    ])
                })
                .map(|_| ())
                .map_err(StoreError::from);
            answer(reply, r)
        }
        Op::Evaluations(q, reply) => {
            let r = (|| -> Result<Vec<(String, String)>, StoreError> {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, data, result FROM evaluations
                     WHERE project = ?1 AND stage = ?2 AND service = ?3
                     ORDER BY seq DESC",
                )?;
                let rows = stmt.query_map(params![q.project, q.stage, q.service], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, data, result) = row?;
                    if q.include.as_ref().is_none_or(|inc| inc.contains(&result)) {
                        out.push((id, data));
                        if out.len() >= q.limit {
                            break;
                        }
                    }
                }
                Ok(out)
            })();
            answer(reply, r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(id: &str) -> TriggeredEvent {
        TriggeredEvent {
            id: id.into(),
            ty: "sh.keptn.event.approval.triggered".into(),
            task: "approval".into(),
            keptn_context: "ctx".into(),
            git_commit_id: None,
            source: "test".into(),
            time: None,
            data: json!({"project": "p", "stage": "s", "service": "svc"}),
        }
    }

    #[tokio::test]
    async fn accept_detects_duplicates_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        assert!(store.accept(&ev("a")).await.expect("accept"));
        assert!(!store.accept(&ev("a")).await.expect("accept"));
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert!(!store.accept(&ev("a")).await.expect("accept"));
        assert!(store.accept(&ev("b")).await.expect("accept"));
    }

    #[tokio::test]
    async fn open_entries_and_settle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        for id in ["a", "b", "c"] {
            store.accept(&ev(id)).await.expect("accept");
        }
        store.set_state("a", JournalState::Finished, None);
        store.set_state("b", JournalState::Pending, Some("manual".into()));
        store.set_state("c", JournalState::Started, None);
        let open = store.open_entries().await.expect("open");
        let states: Vec<_> = open
            .iter()
            .map(|e| (e.event.id.as_str(), e.state))
            .collect();
        assert_eq!(
            states,
            vec![("b", JournalState::Pending), ("c", JournalState::Started)]
        );
        assert_eq!(open[0].reason.as_deref(), Some("manual"));
        assert_eq!(open[0].event, ev("b"));
        // Only a pending entry can be settled, and only once.
        assert!(store.settle("c", None).await.expect("settle").is_none());
        assert_eq!(
            store.settle("b", None).await.expect("settle"),
            Some(ev("b"))
        );
        assert!(store.settle("b", None).await.expect("settle").is_none());
        assert_eq!(
            store.get("b").await.expect("get").map(|(_, s)| s),
            Some(JournalState::Finished)
        );
    }

    #[tokio::test]
    async fn a_recorded_reply_is_open_until_marked_sent_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.accept(&ev("a")).await.expect("accept");
        store.accept(&ev("p")).await.expect("accept");
        store
            .mark("p", JournalState::Pending, None)
            .await
            .expect("mark");
        store
            .record_reply("a", "{\"id\":\"r\"}".into())
            .await
            .expect("record");
        // A decision recorded with its reply: only the first settle wins.
        assert!(
            store
                .settle("p", Some("{\"id\":\"d\"}".into()))
                .await
                .expect("settle")
                .is_some()
        );
        assert!(store.settle("p", None).await.expect("settle").is_none());
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        let open = store.open_entries().await.expect("open");
        let got: Vec<_> = open
            .iter()
            .map(|e| (e.event.id.as_str(), e.state, e.reply.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", JournalState::Finishing, Some("{\"id\":\"r\"}")),
                ("p", JournalState::Finishing, Some("{\"id\":\"d\"}")),
            ]
        );
        store
            .mark("a", JournalState::Finished, None)
            .await
            .expect("mark");
        assert_eq!(store.open_entries().await.expect("open").len(), 1);
    }

    #[tokio::test]
    async fn prune_removes_only_old_finished_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.accept(&ev("a")).await.expect("accept");
        store.accept(&ev("b")).await.expect("accept");
        store.set_state("a", JournalState::Finished, None);
        store.flush().await.expect("flush");
        assert_eq!(
            store
                .prune_finished(Duration::from_secs(3600))
                .await
                .expect("prune"),
            0
        );
        assert_eq!(
            store.prune_finished(Duration::ZERO).await.expect("prune"),
            1
        );
        assert!(store.get("a").await.expect("get").is_none());
        assert!(store.get("b").await.expect("get").is_some());
    }

    #[tokio::test]
    async fn many_concurrent_accepts_are_batched_and_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let mut tasks = Vec::new();
        for i in 0..2000 {
            let store = store.clone();
            // Every id twice: exactly one of each pair is new.
            tasks.push(tokio::spawn(async move {
                store.accept(&ev(&format!("id-{}", i / 2))).await
            }));
        }
        let mut new = 0;
        for t in tasks {
            if t.await.expect("join").expect("accept") {
                new += 1;
            }
        }
        assert_eq!(new, 1000);
    }

    #[tokio::test]
    async fn an_entry_that_cannot_be_decoded_is_still_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.accept(&ev("ok")).await.expect("accept");
        store.set_state("ok", JournalState::Pending, Some("manual".into()));
        store.flush().await.expect("flush");
        drop(store);
        // What an older version stored for an approval whose data nested 130 levels deep.
        let deep = format!("{}{}", "[".repeat(130), "]".repeat(130));
        let json = format!(
            r#"{{"id":"deep","ty":"sh.keptn.event.approval.triggered","task":"approval","keptn_context":"ctx-d","git_commit_id":"c1","source":"s","time":null,"data":{{"project":"p","stage":"s","service":"svc","x":{deep}}}}}"#
        );
        assert!(serde_json::from_str::<TriggeredEvent>(&json).is_err());
        let conn = Connection::open(dir.path().join("keptn-native.db")).expect("conn");
        conn.execute(
            "INSERT INTO journal (triggered_id, keptn_context, event_type, event, state, received_at, updated_at)
             VALUES ('deep', 'ctx-d', 'sh.keptn.event.approval.triggered', ?1, 'pending', 1, 1)",
            params![json],
        )
        .expect("insert");
        drop(conn);
        let store = Store::open(dir.path()).expect("reopen");
        let open = store.open_entries().await.expect("open entries");
        assert_eq!(open.len(), 2);
        let deep = open.iter().find(|e| e.event.id == "deep").expect("deep");
        assert!(
            deep.unreadable
                .as_deref()
                .unwrap_or("")
                .contains("recursion limit")
        );
        assert_eq!(deep.event.keptn_context, "ctx-d");
        assert_eq!(deep.event.task, "approval");
        assert_eq!(deep.event.git_commit_id.as_deref(), Some("c1"));
        assert_eq!(
            deep.event.data,
            json!({"project": "p", "stage": "s", "service": "svc"})
        );
        let (got, state) = store.get("deep").await.expect("get").expect("some");
        assert_eq!((got.id.as_str(), state), ("deep", JournalState::Pending));
        let settled = store
            .settle("deep", None)
            .await
            .expect("settle")
            .expect("pending");
        assert_eq!(settled.data["project"], "p");
        // A damaged row (a BLOB that is not UTF-8) does not fail the read of the others.
        drop(store);
        let conn = Connection::open(dir.path().join("keptn-native.db")).expect("conn");
        conn.execute(
            "INSERT INTO journal (triggered_id, keptn_context, event_type, event, state, received_at, updated_at)
             VALUES ('damaged', 'ctx-x', 'sh.keptn.event.approval.triggered', X'FF00FE', 'started', 2, 2)",
            [],
        )
        .expect("insert");
        drop(conn);
        let store = Store::open(dir.path()).expect("reopen");
        let open = store.open_entries().await.expect("open entries");
        let damaged = open
            .iter()
            .find(|e| e.event.id == "damaged")
            .expect("damaged");
        assert_eq!(damaged.event.keptn_context, "ctx-x");
        assert!(damaged.unreadable.is_some());
    }
}
