//! Keptn's resource-service as a [`ResourceStore`] (§8): in-cluster
//! (`http://resource-service:8080`, names encoded once) or through the API gateway
//! (`{KEPTN_API_ENDPOINT}/resource-service`, names encoded twice because nginx decodes once,
//! `x-token` header). `?gitCommitID=` is passed when the event has one; 404 is "not found".

use async_trait::async_trait;
use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::{ResourceError, ResourceScope, ResourceStore, validate_name};

/// Everything but Go's `url.QueryEscape` unreserved characters is encoded (a space becomes
/// `%20`, which the resource-service's `QueryUnescape` reads like `+`).
const QUERY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn escape(s: &str) -> String {
    utf8_percent_encode(s, QUERY_ESCAPE).to_string()
}

/// How the resource-service is reached.
#[derive(Clone)]
pub enum Route {
    /// Directly, e.g. `http://resource-service:8080`.
    InCluster,
    /// Through the API gateway, with the API token.
    Gateway { token: String },
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::InCluster => write!(f, "InCluster"),
            Route::Gateway { .. } => write!(f, "Gateway(***)"),
        }
    }
}

/// Resources read from Keptn's resource-service.
#[derive(Debug, Clone)]
pub struct KeptnResources {
    client: reqwest::Client,
    base: String,
    route: Route,
}

#[derive(Deserialize)]
struct ResourceBody {
    #[serde(rename = "resourceContent", default)]
    resource_content: String,
}

impl KeptnResources {
    /// In-cluster: `base` is the resource-service URL, e.g. `http://resource-service:8080`.
    pub fn in_cluster(client: reqwest::Client, base: &str) -> Self {
        KeptnResources {
            client,
            base: base.trim_end_matches('/').to_string(),
            route: Route::InCluster,
        }
    }

    /// Through the API gateway: `api` is `KEPTN_API_ENDPOINT` (e.g. `https://keptn.example/api`).
    pub fn gateway(client: reqwest::Client, api: &str, token: String) -> Self {
        KeptnResources {
            client,
            base: format!("{}/resource-service", api.trim_end_matches('/')),
            route: Route::Gateway { token },
        }
    }

    /// The request URL for a resource (without the query string).
    pub fn url(&self, scope: &ResourceScope, uri: &str) -> Result<String, ResourceError> {
        let enc = |s: &str| match self.route {
            Route::InCluster => escape(s),
            Route::Gateway { .. } => escape(&escape(s)),
        };
        validate_name(&scope.project)?;
        validate_name(uri)?;
        let mut url = format!("{}/v1/project/{}", self.base, escape(&scope.project));
        if let Some(stage) = &scope.stage {
            validate_name(stage)?;
            url.push_str(&format!("/stage/{}", escape(stage)));
            if let Some(service) = &scope.service {
                validate_name(service)?;
                url.push_str(&format!("/service/{}", enc(service)));
            }
        }
        url.push_str(&format!("/resource/{}", enc(uri.trim_start_matches('/'))));
        Ok(url)
    }
}

#[async_trait]
impl ResourceStore for KeptnResources {
    async fn get(
        &self,
        scope: &ResourceScope,
        uri: &str,
        git_commit_id: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ResourceError> {
        let url = self.url(scope, uri)?;
        let unavailable = |reason: String| ResourceError::Unavailable {
            uri: uri.to_string(),
            reason,
        };
        let mut req = self.client.get(&url);
        if let Some(c) = git_commit_id.filter(|c| !c.is_empty()) {
            req = req.query(&[("gitCommitID", c)]);
        }
        if let Route::Gateway { token } = &self.route {
            req = req.header("x-token", token);
        }
        let resp = req.send().await.map_err(|e| {
            unavailable(format!("resource-service unreachable: {}", e.without_url()))
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let msg = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
                .unwrap_or_else(|| body.chars().take(200).collect());
            return Err(unavailable(format!(
                "resource-service answered HTTP {status}: {msg}"
            )));
        }
        let body: ResourceBody = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("unreadable resource-service answer: {e}")))?;
        base64::engine::general_purpose::STANDARD
            .decode(body.resource_content.trim())
            .map(Some)
            .map_err(|e| unavailable(format!("resourceContent is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    #[test]
    fn in_cluster_encodes_once_gateway_twice() {
        let scope = ResourceScope::service("fulltour", "qa", "helloservice");
        let r = KeptnResources::in_cluster(client(), "http://resource-service:8080/");
        assert_eq!(
            r.url(&scope, "prometheus/sli.yaml").expect("url"),
            "http://resource-service:8080/v1/project/fulltour/stage/qa/service/helloservice/resource/prometheus%2Fsli.yaml"
        );
        let g = KeptnResources::gateway(client(), "https://keptn.example/api", "t".into());
        assert_eq!(
            g.url(&scope, "locust/locust.conf").expect("url"),
            "https://keptn.example/api/resource-service/v1/project/fulltour/stage/qa/service/helloservice/resource/locust%252Flocust.conf"
        );
        assert_eq!(
            r.url(&ResourceScope::project("p"), "slo.yaml")
                .expect("url"),
            "http://resource-service:8080/v1/project/p/resource/slo.yaml"
        );
        assert!(r.url(&scope, "../x").is_err());
        assert!(!format!("{g:?}").contains("\"t\""));
    }
}
