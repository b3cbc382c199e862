//! Reading Kubernetes manifests (pure): find the Services of a release and compute the URI
//! helm-service reported, `http://<service>.<namespace>:<lowest TCP port>`.

use serde::Deserialize;
use serde_json::Value;

/// A Service found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: String,
    /// The lowest TCP port of the Service.
    pub port: u16,
}

/// Every object of a multi-document YAML manifest, as JSON values (empty documents skipped).
pub fn documents(manifest: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(manifest) {
        let v = Value::deserialize(doc).map_err(|e| format!("invalid manifest YAML: {e}"))?;
        if v.is_object() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The Services of a manifest, each with its lowest TCP port (Services without TCP ports skipped).
pub fn services(docs: &[Value]) -> Vec<ServicePort> {
    docs.iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Service"))
        .filter_map(|d| {
            let name = d.pointer("/metadata/name")?.as_str()?.to_string();
            let port = d
                .pointer("/spec/ports")?
                .as_array()?
                .iter()
                .filter(|p| {
                    p.get("protocol")
                        .and_then(Value::as_str)
                        .is_none_or(|proto| proto == "TCP")
                })
                .filter_map(|p| p.get("port")?.as_u64())
                .filter_map(|p| u16::try_from(p).ok())
                .min()?;
            Some(ServicePort { name, port })
        })
        .collect()
}

/// The local URI of the first Service: `http://<name>.<namespace>:<port>`.
pub fn local_uri(services: &[ServicePort], namespace: &str) -> Option<String> {
    services
        .first()
        .map(|s| format!("http://{}.{namespace}:{}", s.name, s.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
---
# Source: helloservice/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: helloservice}
spec: {replicas: 1}
---
apiVersion: v1
kind: Service
metadata:
  name: helloservice
spec:
  ports:
    - {name: metrics, port: 9090, protocol: UDP}
    - {name: http, port: 8080}
    - {name: alt, port: 80, protocol: TCP}
---
"#;

    #[test]
    fn lowest_tcp_port_of_the_first_service() {
        let docs = documents(MANIFEST).expect("parse");
        assert_eq!(docs.len(), 2);
        let s = services(&docs);
        assert_eq!(
            s,
            vec![ServicePort {
                name: "helloservice".into(),
                port: 80
            }]
        );
        assert_eq!(
            local_uri(&s, "fulltour-qa").as_deref(),
            Some("http://helloservice.fulltour-qa:80")
        );
    }

    #[test]
    fn no_service_means_no_uri_and_bad_yaml_is_an_error() {
        let docs = documents("kind: ConfigMap\nmetadata: {name: x}\n").expect("parse");
        assert!(local_uri(&services(&docs), "ns").is_none());
        assert!(documents("kind: [unclosed").is_err());
    }
}
