//! The load generator: HTTP/1.1 on tokio + hyper with one keep-alive connection per user.
//!
//! - **Closed model**: `users` loops started `1/spawn_rate` s apart; each picks a task by weight,
//!   sends its requests in order, then thinks (`wait_time`). Each user records into its own
//!   histograms, merged at the end, so the hot path shares nothing but two relaxed counters.
//! - **Open model**: tasks are started at `t0 + i/rate` whatever the target does; latency is
//!   measured from that *intended* start, so a stalled target shows up as latency instead of
//!   fewer samples (no coordinated omission). Connections come from a small idle pool.
//!
//! The run time is a soft stop (no new requests, in-flight ones finish within their timeout);
//! the cancellation token is a hard stop (in-flight requests are abandoned).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan::{Model, Request, Task, WaitTime, Workload};
use super::stats::{ErrorClass, Recorder, Summary};
use super::target::Target;

/// Live counters, read by the CLI's progress line.
#[derive(Debug, Default)]
pub struct Progress {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub users: AtomicU64,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunResult {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub summary: Summary,
    /// True when the hard stop (shutdown, Ctrl-C) ended the run early.
    pub cancelled: bool,
}

/// One keep-alive connection. Its I/O future is polled by whichever task is sending on it
/// (no separate connection task: no cross-task wake-ups on the hot path). Between requests
/// nothing polls it, which HTTP/1.1 does not need.
struct Conn {
    tx: SendRequest<Full<Bytes>>,
    io: Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

struct Ctx {
    target: Target,
    tasks: Vec<Task>,
    /// Request-targets per task and request, parsed once (base path applied).
    uris: Vec<Vec<http::Uri>>,
    cumulative: Vec<u32>,
    timeout: Duration,
    /// Soft stop: no new tasks.
    soft: CancellationToken,
    /// Hard stop: abandon in-flight requests.
    hard: CancellationToken,
    iterations_left: Option<AtomicU64>,
    progress: Arc<Progress>,
}

impl Ctx {
    /// Index of a task picked by weight.
    fn pick(&self, rng: &mut fastrand::Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1).max(1);
        let x = rng.u32(0..total);
        let i = self.cumulative.partition_point(|c| *c <= x);
        i.min(self.tasks.len().saturating_sub(1))
    }

    /// Takes one iteration from the budget; false when it is used up.
    fn take_iteration(&self) -> bool {
        match &self.iterations_left {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    fn stopping(&self) -> bool {
        self.soft.is_cancelled() || self.hard.is_cancelled()
    }

    fn count(&self, outcome: &Result<(), ErrorClass>) {
        self.progress.requests.fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            self.progress.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs a workload against a target until its run time or iteration count is reached or
/// `cancel` fires. Never fails: every problem is a classified failed request.
pub async fn run(
    workload: &Workload,
    target: &Target,
    cancel: CancellationToken,
    progress: Arc<Progress>,
) -> RunResult {
    let mut cumulative = Vec::with_capacity(workload.tasks.len());
    let mut acc = 0u32;
    for t in &workload.tasks {
        acc = acc.saturating_add(t.weight);
        cumulative.push(acc);
    }
    let soft = cancel.child_token();
    let uris = workload
        .tasks
        .iter()
        .map(|t| {
            t.requests
                .iter()
                .map(|r| {
                    // Plan paths were checked to be origin-form; "/" is the fallback.
                    target
                        .path(&r.path)
                        .parse()
                        .unwrap_or_else(|_| http::Uri::from_static("/"))
                })
                .collect()
        })
        .collect();
    let ctx = Arc::new(Ctx {
        target: target.clone(),
        tasks: workload.tasks.clone(),
        uris,
        cumulative,
        timeout: workload.timeout,
        soft: soft.clone(),
        hard: cancel.clone(),
        iterations_left: workload.iterations.map(AtomicU64::new),
        progress,
    });
    let start = Utc::now();
    let t0 = Instant::now();
    let deadline = workload.run_time.and_then(|d| t0.checked_add(d));
    if let Some(deadline) = deadline {
        let soft = soft.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => soft.cancel(),
                _ = soft.cancelled() => {}
            }
        });
    }
    let recorder = match workload.model {
        Model::Closed {
            users,
            spawn_rate,
            wait,
        } => closed(ctx.clone(), t0, deadline, users, spawn_rate, wait).await,
        Model::Open {
            rate,
            max_in_flight,
        } => open(ctx.clone(), t0, deadline, rate, max_in_flight).await,
    };
    soft.cancel();
    let elapsed = t0.elapsed();
    RunResult {
        start,
        end: Utc::now(),
        summary: recorder.summary(elapsed.as_secs_f64()),
        cancelled: cancel.is_cancelled(),
    }
}

async fn closed(
    ctx: Arc<Ctx>,
    t0: Instant,
    deadline: Option<Instant>,
    users: u32,
    spawn_rate: f64,
    wait: Option<WaitTime>,
) -> Recorder {
    let mut set = JoinSet::new();
    for i in 0..users {
        // A spawn time past what an Instant can hold is "never".
        let Some(at) = t0.checked_add(secs(f64::from(i) / spawn_rate)) else {
            break;
        };
        if deadline.is_some_and(|d| at >= d) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = ctx.soft.cancelled() => break,
        }
        if ctx.stopping() {
            break;
        }
        ctx.progress.users.fetch_add(1, Ordering::Relaxed);
        set.spawn(user(ctx.clone(), u64::from(i), wait));
    }
    let mut acc = Recorder::default();
    while let Some(r) = set.join_next().await {
        if let Ok(rec) = r {
            rec.merge_into(&mut acc);
        }
    }
    acc
}

async fn user(ctx: Arc<Ctx>, seed: u64, wait: Option<WaitTime>) -> Recorder {
    let mut rec = Recorder::default();
    let mut rng =
        fastrand::Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ fastrand::u64(..));
    let mut conn: Option<Conn> = None;
    // Registered once per user, not once per request: both cost a lock in tokio.
    let hard = ctx.hard.clone().cancelled_owned();
    tokio::pin!(hard);
    // One timer per user, moved forward only when it would fire before `timeout` from now,
    // so a request times out between 1.0x and 1.1x its timeout without a timer per request.
    let slack = ctx.timeout / 10;
    let timer = tokio::time::sleep(ctx.timeout + slack);
    tokio::pin!(timer);
    'outer: while !ctx.stopping() && ctx.take_iteration() {
        let task_start = Instant::now();
        let ti = ctx.pick(&mut rng);
        let task = &ctx.tasks[ti];
        let mut connect_failed = false;
        for (req, uri) in task.requests.iter().zip(&ctx.uris[ti]) {
            let sent = Instant::now();
            if timer.deadline() < sent + ctx.timeout {
                timer.as_mut().reset(sent + ctx.timeout + slack);
            }
            let outcome = tokio::select! {
                biased;
                _ = &mut hard => break 'outer,
                o = send(&ctx.target, &mut conn, req, uri) => o,
                _ = &mut timer => Err(ErrorClass::Timeout),
            };
            if outcome.is_err() && !matches!(outcome, Err(ErrorClass::Status(_))) {
                conn = None;
            }
            connect_failed |= outcome == Err(ErrorClass::Connect);
            ctx.count(&outcome);
            rec.record(&req.name, micros(sent.elapsed()), outcome);
        }
        let mut pause = think(wait, task_start.elapsed(), &mut rng);
        if connect_failed {
            // A target that refuses connections would otherwise be hammered in a tight loop.
            pause = pause.max(Duration::from_millis(100));
        }
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = ctx.soft.cancelled() => break,
            }
        }
    }
    rec
}

fn think(wait: Option<WaitTime>, task_took: Duration, rng: &mut fastrand::Rng) -> Duration {
    match wait {
        None => Duration::ZERO,
        Some(WaitTime::Constant(s)) => secs(s),
        Some(WaitTime::Between([a, b])) => secs(a + (b - a) * rng.f64()),
        Some(WaitTime::ConstantThroughput(per_sec)) => {
            secs(1.0 / per_sec).saturating_sub(task_took)
        }
    }
}

async fn open(
    ctx: Arc<Ctx>,
    t0: Instant,
    deadline: Option<Instant>,
    rate: f64,
    max_in_flight: u32,
) -> Recorder {
    let shared = Arc::new(Mutex::new(Recorder::default()));
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(max_in_flight as usize));
    let mut rng = fastrand::Rng::new();
    let mut set = JoinSet::new();
    let mut ticks = pacer(t0, rate);
    loop {
        // Starts already due are honoured even if the deadline timer fired meanwhile: the run
        // ends at the first start at or past the deadline, not when the runtime noticed it.
        let intended = tokio::select! {
            biased;
            t = ticks.recv() => match t {
                Some(t) => t,
                None => break,
            },
            _ = ctx.soft.cancelled() => break,
        };
        if ctx.hard.is_cancelled()
            || deadline.is_some_and(|d| intended >= d)
            || !ctx.take_iteration()
        {
            break;
        }
        let task_idx = ctx.pick(&mut rng);
        let (ctx2, shared, pool, permits) =
            (ctx.clone(), shared.clone(), pool.clone(), permits.clone());
        set.spawn(async move {
            let lag = micros(Instant::now().saturating_duration_since(intended));
            if let Ok(mut r) = shared.lock() {
                r.record_lag(lag);
            }
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let mut conn = pool.lock().ok().and_then(|mut p| p.pop());
            let mut from = intended;
            for (req, uri) in ctx2.tasks[task_idx]
                .requests
                .iter()
                .zip(&ctx2.uris[task_idx])
            {
                let outcome = send_timed(&ctx2, &mut conn, req, uri).await;
                ctx2.count(&outcome);
                let us = micros(from.elapsed());
                if let Ok(mut r) = shared.lock() {
                    r.record(&req.name, us, outcome);
                }
                from = Instant::now();
            }
            if let (Some(c), Ok(mut p)) = (conn, pool.lock()) {
                p.push(c);
            }
        });
        // Reap finished tasks so the set does not grow with the run.
        while set.try_join_next().is_some() {}
    }
    tokio::select! {
        _ = async { while set.join_next().await.is_some() {} } => {}
        _ = ctx.hard.cancelled() => set.abort_all(),
    }
    drop(set);
    match Arc::try_unwrap(shared) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(arc) => arc.lock().map(|r| r.clone()).unwrap_or_default(),
    }
}

/// The open model's clock: a dedicated thread that sleeps to each intended start with the OS
/// timer's precision (tokio's timer wheel ticks in whole milliseconds and rounds up, which
/// showed as up to 2 ms of start lag) and hands the start time to the runtime. The thread
/// ends when the receiver is dropped.
fn pacer(t0: Instant, rate: f64) -> tokio::sync::mpsc::UnboundedReceiver<Instant> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let t0 = t0.into_std();
    let spawned = std::thread::Builder::new()
        .name("loadtest-pacer".into())
        .spawn(move || {
            let mut i: u64 = 0;
            while !tx.is_closed() {
                let Some(intended) = t0.checked_add(secs(i as f64 / rate)) else {
                    break;
                };
                let now = std::time::Instant::now();
                if intended > now {
                    // Never sleep long: a closed receiver is noticed within 50 ms.
                    std::thread::sleep((intended - now).min(Duration::from_millis(50)));
                    continue;
                }
                if tx.send(Instant::from_std(intended)).is_err() {
                    break;
                }
                i += 1;
            }
        });
    if spawned.is_err() {
        tracing::warn!("could not start the pacer thread; the open model sends nothing");
    }
    rx
}

/// Seconds to a duration, saturating (plans may hold absurd but valid numbers; never panic).
fn secs(x: f64) -> Duration {
    Duration::try_from_secs_f64(x).unwrap_or(if x > 0.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Sends one request within the timeout; on any failure the connection is dropped.
async fn send_timed(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    req: &Request,
    uri: &http::Uri,
) -> Result<(), ErrorClass> {
    let r = match tokio::time::timeout(ctx.timeout, send(&ctx.target, conn, req, uri)).await {
        Ok(r) => r,
        Err(_) => Err(ErrorClass::Timeout),
    };
    if matches!(
        r,
        Err(ErrorClass::Timeout | ErrorClass::Request | ErrorClass::BodyRead | ErrorClass::Connect)
    ) {
        *conn = None;
    }
    r
}

async fn connect(target: &Target) -> Result<Conn, ErrorClass> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|_| ErrorClass::Connect)?;
    let _ = stream.set_nodelay(true);
    let (tx, io) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ErrorClass::Connect)?;
    Ok(Conn {
        tx,
        io: Box::pin(io),
    })
}

async fn send(
    target: &Target,
    conn: &mut Option<Conn>,
    req: &Request,
    uri: &http::Uri,
) -> Result<(), ErrorClass> {
    let Conn { tx, io } = match conn {
        Some(c) if !c.tx.is_closed() => c,
        _ => conn.insert(connect(target).await?),
    };
    let exchange = async {
        tx.ready().await.map_err(|_| ErrorClass::Request)?;
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(uri.clone())
            .header(http::header::HOST, target.host_header.clone());
        for (n, v) in &req.headers {
            builder = builder.header(n, v);
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|_| ErrorClass::Request)?;
        let response = tx
            .send_request(request)
            .await
            .map_err(|_| ErrorClass::Request)?;
        let status = response.status();
        let mut body = response.into_body();
        // Read to the end without keeping the bytes.
        while let Some(frame) = body.frame().await {
            frame.map_err(|_| ErrorClass::BodyRead)?;
        }
        if status.as_u16() >= 400 {
            return Err(ErrorClass::Status(status.as_u16()));
        }
        Ok(())
    };
    tokio::pin!(exchange);
    tokio::select! {
        biased;
        r = &mut exchange => r,
        // The connection ended (peer closed, I/O error) before the exchange completed. What it
        // delivered last (a head, a broken body) is already queued: poll once more to classify.
        _ = io.as_mut() => futures::FutureExt::now_or_never(exchange).unwrap_or(Err(ErrorClass::Request)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_time_models() {
        let mut rng = fastrand::Rng::with_seed(7);
        assert_eq!(think(None, Duration::ZERO, &mut rng), Duration::ZERO);
        assert_eq!(
            think(Some(WaitTime::Constant(1.5)), Duration::ZERO, &mut rng),
            Duration::from_millis(1500)
        );
        for _ in 0..100 {
            let d = think(
                Some(WaitTime::Between([1.0, 2.0])),
                Duration::ZERO,
                &mut rng,
            );
            assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(2));
        }
        // 4 tasks/s = 250 ms per task; a 100 ms task waits 150 ms, a slow one not at all.
        let ct = Some(WaitTime::ConstantThroughput(4.0));
        assert_eq!(
            think(ct, Duration::from_millis(100), &mut rng),
            Duration::from_millis(150)
        );
        assert_eq!(
            think(ct, Duration::from_millis(400), &mut rng),
            Duration::ZERO
        );
    }
}
