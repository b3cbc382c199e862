//! The deployment handler with the process backend, driven by the runner over a real
//! nats-server: a minimal dispatcher written here (the lead's `serve` is not in this branch)
//! answers `je-deployment` with the real handler and `je-test` by checking that the deployed
//! URI serves the delivered version.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keptn_native::deploy::process::ProcessBackend;
use keptn_native::deploy::{Backends, DeployBackend, DeployConfig};
use keptn_native::handlers::deployment::DeploymentHandler;
use keptn_native::handlers::{TaskHandler, TaskOutcome, TaskRequest};
use keptn_native::keptn::envelope::encode;
use keptn_native::keptn::{Finished, ReplyBuilder, decode};
use keptn_native::runner::shipyard::Shipyard;
use keptn_native::runner::{Collect, Delivery, RunSpec, run_on_nats};
use tokio_util::sync::CancellationToken;

use crate::harness::nats::NatsServer as Nats;
use crate::harness::{exe, http};

const SHIPYARD: &str = "apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nspec:\n  stages:\n    - name: qa\n      sequences:\n        - name: delivery\n          tasks:\n            - name: je-deployment\n            - name: je-test\n    - name: production\n      sequences:\n        - name: delivery\n          triggeredOn: [{event: qa.delivery.finished}]\n          tasks:\n            - name: je-deployment\n            - name: je-test\n";

#[tokio::test]
async fn runner_and_deployment_handler_deliver_to_local_processes() {
    let nats = Nats::start();
    let sd = tempfile::tempdir().expect("tempdir");
    let cfg = DeployConfig {
        process_sd_dir: Some(sd.path().to_path_buf()),
        ..Default::default()
    };
    let process = Arc::new(ProcessBackend::new(&cfg, http()).with_exe(exe()));
    let handler = Arc::new(DeploymentHandler::new(
        Backends::new(cfg).with(process.clone()),
    ));

    let client = nats.client().await;
    let mut sub = client
        .subscribe("sh.keptn.event.*.triggered")
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let replies = ReplyBuilder::new("keptn-native-test");
    let service = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let Ok(env) = decode(&msg.payload) else {
                continue;
            };
            let Some(t) = env.into_triggered() else {
                continue;
            };
            let finished = match t.task.as_str() {
                "je-deployment" => {
                    client
                        .publish(
                            t.ty.replace(".triggered", ".started"),
                            encode(&replies.started(&t, None)).into(),
                        )
                        .await
                        .expect("pub");
                    match handler
                        .handle(TaskRequest {
                            event: t.clone(),
                            cancel: CancellationToken::new(),
                        })
                        .await
                        .expect("handle")
                    {
                        TaskOutcome::Finished(f) => f,
                        other => panic!("{other:?}"),
                    }
                }
                "je-test" => {
                    client
                        .publish(
                            t.ty.replace(".triggered", ".started"),
                            encode(&replies.started(&t, None)).into(),
                        )
                        .await
                        .expect("pub");
                    let uri = t.data["deployment"]["deploymentURIsLocal"][0]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let want = t.data["labels"]["version"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let got = match http().get(format!("{uri}/version")).send().await {
                        Ok(r) => r
                            .json::<serde_json::Value>()
                            .await
                            .ok()
                            .and_then(|v| v["version"].as_str().map(str::to_string)),
                        Err(_) => None,
                    };
                    if got.as_deref() == Some(want.as_str()) {
                        Finished::pass(format!("{uri} serves {want}"))
                    } else {
                        Finished::errored(format!("{uri} serves {got:?}, expected {want}"))
                    }
                }
                _ => continue,
            };
            client
                .publish(
                    t.ty.replace(".triggered", ".finished"),
                    encode(&replies.finished(&t, &finished)).into(),
                )
                .await
                .expect("pub");
        }
    });

    let spec = RunSpec {
        project: "fulltour".into(),
        service: "helloservice".into(),
        image: "ghcr.io/podtato-head/podtatoserver:v0.1.1".into(),
        labels: [("version".to_string(), "v0.1.1".to_string())].into(),
        stage: None,
        sequence: "delivery".into(),
        task_timeout: Duration::from_secs(60),
    };
    let d = Delivery::new(
        Shipyard::parse(SHIPYARD).expect("shipyard"),
        spec,
        uuid::Uuid::new_v4().to_string(),
    );
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        run_on_nats(
            &nats.url(),
            d,
            "img",
            &mut Collect::default(),
            Duration::from_secs(60),
        ),
    )
    .await
    .expect("bounded")
    .expect("run");
    assert!(report.passed, "{report:?}");
    assert_eq!(report.sequences.len(), 2);
    for s in &report.sequences {
        assert_eq!(s.tasks[1].result, "pass", "{s:?}");
        assert!(s.tasks[1].message.contains("serves v0.1.1"), "{s:?}");
    }
    for stage in ["qa", "production"] {
        let f = sd
            .path()
            .join(format!("helloservice-fulltour-{stage}.json"));
        let port = process
            .port_of("fulltour", stage, "helloservice")
            .await
            .expect("running");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f).expect("sd")).expect("json");
        assert_eq!(v[0]["targets"][0], format!("127.0.0.1:{port}"));
    }
    service.abort();
    process.shutdown().await;
}
