//! The test target (pure): parsing the URL that load is aimed at, and the allow-list of host
//! patterns that keeps an event from aiming load at arbitrary hosts.

/// Where load goes: plain HTTP/1.1 to `host:port`, paths prefixed with `base_path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub host_header: http::HeaderValue,
    /// Path of the target URL without a trailing `/` (empty for `/`).
    pub base_path: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    #[error("target {0:?} is not a valid URL")]
    Invalid(String),
    #[error("target {0:?}: only http:// targets are supported (https is not yet)")]
    Scheme(String),
    #[error("target {0:?} must not carry credentials, a query or a fragment")]
    Extra(String),
    #[error(
        "target host {host:?} is not in the load-test allow-list {patterns:?} (set LOADTEST_ALLOWED_HOSTS)"
    )]
    NotAllowed { host: String, patterns: Vec<String> },
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let invalid = || TargetError::Invalid(url.to_string());
        let uri: http::Uri = url.trim().parse().map_err(|_| invalid())?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(TargetError::Scheme(url.into())),
            None => return Err(invalid()),
        }
        let auth = uri.authority().ok_or_else(invalid)?;
        if auth.as_str().contains('@') || uri.query().is_some() || url.contains('#') {
            return Err(TargetError::Extra(url.into()));
        }
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid());
        }
        let port = auth.port_u16().unwrap_or(80);
        let host_header = http::HeaderValue::from_str(auth.as_str()).map_err(|_| invalid())?;
        Ok(Target {
            url: url.trim().to_string(),
            host: host.to_ascii_lowercase(),
            port,
            host_header,
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The request-target for a plan path (which starts with `/`).
    pub fn path(&self, path: &str) -> String {
        if self.base_path.is_empty() {
            path.to_string()
        } else {
            format!("{}{}", self.base_path, path)
        }
    }
}

/// Default allow-list: the service's own namespace (`<project>-<stage>`), as the tutorial and
/// helm-service address services.
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &[
    "*.{project}-{stage}",
    "*.{project}-{stage}.svc",
    "*.{project}-{stage}.svc.cluster.local",
];

/// Checks a host (and port) against patterns (pure).
///
/// Patterns: `name` (exact), `*.suffix` (one or more labels before `.suffix`), `*` (anything:
/// only for trusted setups), optionally `:port`; `{project}`, `{stage}`, `{service}` are replaced
/// by the event's values. Comparison ignores case.
pub fn check_allowed(
    target: &Target,
    patterns: &[String],
    vars: &[(&str, &str)],
) -> Result<(), TargetError> {
    let host = target.host.to_ascii_lowercase();
    let allowed = patterns.iter().any(|raw| {
        let mut p = raw.trim().to_ascii_lowercase();
        for (k, v) in vars {
            p = p.replace(&format!("{{{k}}}"), &v.to_ascii_lowercase());
        }
        let (hp, port) = split_port(&p);
        if let Some(port) = port
            && port != target.port
        {
            return false;
        }
        if hp == "*" {
            return true;
        }
        match hp.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            None => host == hp,
        }
    });
    if allowed {
        Ok(())
    } else {
        Err(TargetError::NotAllowed {
            host: target.host.clone(),
            patterns: patterns.to_vec(),
        })
    }
}

fn split_port(p: &str) -> (&str, Option<u16>) {
    if let Some(i) = p.rfind(':')
        && !p[..i].contains(':')
        && let Ok(port) = p[i + 1..].parse()
    {
        return (&p[..i], Some(port));
    }
    (p, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Target {
        Target::parse(url).expect("target")
    }

    #[test]
    fn targets_parse() {
        let x = t("http://helloservice.fulltour-qa");
        assert_eq!(
            (x.host.as_str(), x.port, x.base_path.as_str()),
            ("helloservice.fulltour-qa", 80, "")
        );
        assert_eq!(x.path("/a"), "/a");
        let y = t("http://127.0.0.1:8080/api/");
        assert_eq!(
            (y.port, y.host_header.to_str().ok()),
            (8080, Some("127.0.0.1:8080"))
        );
        assert_eq!(y.path("/a?b=1"), "/api/a?b=1");
        assert_eq!(t("http://[::1]:81").host, "::1");
        assert!(matches!(
            Target::parse("https://x"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            Target::parse("x.y:80"),
            Err(TargetError::Invalid(_))
        ));
        assert!(matches!(
            Target::parse("http://u:p@x/"),
            Err(TargetError::Extra(_))
        ));
        assert!(matches!(
            Target::parse("http://x/?q=1"),
            Err(TargetError::Extra(_))
        ));
        assert!(Target::parse("").is_err());
    }

    #[test]
    fn allow_list_matches_hosts_ports_and_placeholders() {
        let defaults: Vec<String> = DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let vars = [
            ("project", "fulltour"),
            ("stage", "qa"),
            ("service", "helloservice"),
        ];
        for ok in [
            "http://helloservice.fulltour-qa",
            "http://helloservice.fulltour-qa:80",
            "http://HelloService.Fulltour-QA.svc.cluster.local:8080/x",
        ] {
            assert!(check_allowed(&t(ok), &defaults, &vars).is_ok(), "{ok}");
        }
        for bad in [
            "http://fulltour-qa",
            "http://helloservice.fulltour-production",
            "http://evilfulltour-qa",
            "http://metadata.google.internal",
            "http://169.254.169.254",
            "http://helloservice.fulltour-qa.evil.com",
        ] {
            let e = check_allowed(&t(bad), &defaults, &vars).expect_err(bad);
            assert!(e.to_string().contains("allow-list"), "{e}");
        }
        let pats: Vec<String> = ["127.0.0.1:8080", "localhost", "*.example.org"]
            .map(String::from)
            .to_vec();
        assert!(check_allowed(&t("http://127.0.0.1:8080"), &pats, &[]).is_ok());
        assert!(check_allowed(&t("http://127.0.0.1:9090"), &pats, &[]).is_err());
        assert!(check_allowed(&t("http://localhost:1"), &pats, &[]).is_ok());
        assert!(check_allowed(&t("http://a.b.example.org"), &pats, &[]).is_ok());
        assert!(check_allowed(&t("http://example.org"), &pats, &[]).is_err());
        assert!(check_allowed(&t("http://anything"), &["*".into()], &[]).is_ok());
        assert!(check_allowed(&t("http://anything"), &[], &[]).is_err());
    }
}
