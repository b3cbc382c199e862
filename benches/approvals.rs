//! Approval round-trip benchmark over a real nats-server.
//!
//! `cargo bench --bench approvals` starts `nats-server` and the release binary
//! (`keptn-native serve`, journal on) as child processes on free ports, then measures:
//! 1. resident memory of the idle service;
//! 2. latency from publishing `approval.triggered` to receiving `.started` and `.finished`
//!    at a steady rate (default 1,000 events/s for 10 s);
//! 3. the sustained rate of automatic approvals completed (100,000 events, at most 5,000
//!    unanswered at a time), and what an unpaced burst of 50,000 costs.
//!
//! Everything runs on this machine: the generator, nats-server and the service share the CPUs.
//! Knobs: `BENCH_RATE`, `BENCH_SECONDS`, `BENCH_SUSTAINED`, `BENCH_WINDOW`, `BENCH_BURST`.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn triggered(id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "specversion": "1.0", "id": id, "source": "bench",
        "type": "sh.keptn.event.approval.triggered", "datacontenttype": "application/json",
        "time": "2026-11-22T10:00:00.000Z", "shkeptncontext": "bench-context",
        "data": {"project": "p", "stage": "qa", "service": "s", "result": "pass",
                 "approval": {"pass": "automatic", "warning": "manual"}}
    }))
    .expect("json")
}

type Seen = Arc<Mutex<HashMap<String, (Option<Instant>, Option<Instant>)>>>;

/// Whether event `<prefix><i>` is still unanswered.
fn unanswered(seen: &Seen, prefix: &str, i: u64) -> bool {
    seen.lock()
        .expect("lock")
        .get(&format!("{prefix}{i}"))
        .is_none_or(|e| e.1.is_none())
}

/// Waits until events `<prefix>0..n` are finished, or nothing new arrived for 3 s (at most
/// 120 s); returns how many were, and when the last one arrived.
async fn wait_finished(seen: &Seen, prefix: &str, n: u64, t0: Instant) -> (u64, Instant) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (done, last) = {
            let g = seen.lock().expect("lock");
            let mut done = 0u64;
            let mut last = t0;
            for i in 0..n {
                if let Some((_, Some(f))) = g.get(&format!("{prefix}{i}")) {
                    done += 1;
                    last = last.max(*f);
                }
            }
            (done, last)
        };
        let stalled = done > 0 && last.elapsed() > Duration::from_secs(3);
        if done == n || stalled || Instant::now() > deadline {
            return (done, last);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::main]
async fn main() {
    let nats_bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nats-server installed");
    let nats_port = free_port();
    let _nats = Kill(
        Command::new(nats_bin)
            .args(["-a", "127.0.0.1", "-p", &nats_port.to_string()])
            .args(
                std::env::var("BENCH_NATS_LOG")
                    .map(|l| vec!["-l".to_string(), l])
                    .unwrap_or_default(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server"),
    );
    let url = format!("nats://127.0.0.1:{nats_port}");
    let data = tempfile::tempdir().expect("tempdir");
    let http_port = free_port();
    std::thread::sleep(Duration::from_millis(300));
    let service = Kill(
        Command::new(env!("CARGO_BIN_EXE_keptn-native"))
            .args([
                "serve",
                "--nats-url",
                &url,
                "--listen",
                &format!("127.0.0.1:{http_port}"),
            ])
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("keptn-native"),
    );
    let pid = service.0.id();
    let client = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(url.as_str())
        .await
        .expect("connect");
    let mut sub = client
        .subscribe("sh.keptn.event.approval.*")
        .await
        .expect("sub");
    client.flush().await.expect("flush");
    let seen: Seen = Arc::default();
    let s2 = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let now = Instant::now();
            let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else {
                continue;
            };
            let Some(tid) = v["triggeredid"].as_str() else {
                continue;
            };
            let mut g = s2.lock().expect("lock");
            let e = g.entry(tid.to_string()).or_default();
            if m.subject.ends_with(".started") {
                e.0 = Some(now);
            } else if m.subject.ends_with(".finished") {
                e.1 = Some(now);
            }
        }
    });
    // Warm-up: the service is ready when it answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let id = format!("warm-{}", uuid::Uuid::new_v4());
        client
            .publish("sh.keptn.event.approval.triggered", triggered(&id).into())
            .await
            .expect("pub");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if seen
            .lock()
            .expect("lock")
            .get(&id)
            .is_some_and(|e| e.1.is_some())
        {
            break;
        }
        assert!(Instant::now() < deadline, "service did not answer");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_kib(pid);

    // 1. Steady rate.
    let rate = env_or("BENCH_RATE", 1000);
    let seconds = env_or("BENCH_SECONDS", 10);
    let total = rate * seconds;
    let mut sent: HashMap<String, Instant> = HashMap::with_capacity(total as usize);
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let id = format!("steady-{i}");
        let payload = triggered(&id);
        sent.insert(id, Instant::now());
        client
            .publish("sh.keptn.event.approval.triggered", payload.into())
            .await
            .expect("pub");
    }
    client.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut h_started = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
    let mut h_finished = h_started.clone();
    let mut missing = 0;
    {
        let g = seen.lock().expect("lock");
        for (id, t0) in &sent {
            match g.get(id) {
                Some((Some(s), Some(f))) => {
                    h_started
                        .record(s.duration_since(*t0).as_micros().max(1) as u64)
                        .expect("rec");
                    h_finished
                        .record(f.duration_since(*t0).as_micros().max(1) as u64)
                        .expect("rec");
                }
                _ => missing += 1,
            }
        }
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "steady {rate}/s for {seconds}s: {} events, {missing} without both replies",
        total
    );
    println!(
        "  triggered -> started : p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(&h_started, 0.5),
        ms(&h_started, 0.99),
        h_started.max() as f64 / 1000.0
    );
    println!(
        "  triggered -> finished: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(&h_finished, 0.5),
        ms(&h_finished, 0.99),
        h_finished.max() as f64 / 1000.0
    );

    // 2. Sustained: approvals with at most BENCH_WINDOW unanswered at any time (a control
    //    plane that keeps the service busy without flooding its buffers).
    let total = env_or("BENCH_SUSTAINED", 100_000);
    let window = env_or("BENCH_WINDOW", 5_000);
    let t0 = Instant::now();
    for i in 0..total {
        while i >= window && unanswered(&seen, "sus-", i - window) {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        client
            .publish(
                "sh.keptn.event.approval.triggered",
                triggered(&format!("sus-{i}")).into(),
            )
            .await
            .expect("pub");
    }
    client.flush().await.expect("flush");
    let (done, last) = wait_finished(&seen, "sus-", total, t0).await;
    let secs = last.duration_since(t0).as_secs_f64();
    println!(
        "sustained, {total} approvals, at most {window} unanswered: {done} finished in {secs:.2} s = {:.0} approvals/s",
        done as f64 / secs
    );

    // 3. Burst: everything at once (more than any control plane sends): what a flood costs.
    let burst = env_or("BENCH_BURST", 50_000);
    let t0 = Instant::now();
    for i in 0..burst {
        client
            .publish(
                "sh.keptn.event.approval.triggered",
                triggered(&format!("burst-{i}")).into(),
            )
            .await
            .expect("pub");
    }
    client.flush().await.expect("flush");
    let publish_secs = t0.elapsed().as_secs_f64();
    let (done, last) = wait_finished(&seen, "burst-", burst, t0).await;
    let secs = last.duration_since(t0).as_secs_f64();
    println!(
        "burst of {burst} published in {publish_secs:.2} s: {done} finished in {secs:.2} s = {:.0} approvals/s",
        done as f64 / secs
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http_port}/metrics")).await
        && let Ok(text) = r.text().await
    {
        for line in text.lines().filter(|l| {
            [
                "keptn_native_events_received_total",
                "keptn_native_replies_sent_total",
                "keptn_native_publish_errors_total",
                "keptn_native_nats_reconnects_total",
                "keptn_native_nats_slow_consumer_total",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        }) {
            println!("  service: {line}");
        }
    }
    println!(
        "resident memory: idle {:.1} MiB, after load {:.1} MiB",
        idle_rss as f64 / 1024.0,
        rss_kib(pid) as f64 / 1024.0
    );
}
