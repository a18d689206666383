//! Which URLs the client may call: http(s) URLs without userinfo under one of the configured
//! bases — same scheme, host and port (default ports made explicit), and a path equal to the
//! base's path or below it at a segment boundary (`/api` allows `/api` and `/api/x`, not
//! `/apix`). Paths are compared after URL normalization, so `/api/../admin` is `/admin`.

use reqwest::Url;

/// One configured base URL.
#[derive(Debug, Clone)]
struct Base {
    scheme: String,
    host: String,
    port: u16,
    /// The path without a trailing `/` (empty for the root).
    path: String,
}

impl Base {
    fn allows(&self, url: &Url) -> bool {
        url.scheme() == self.scheme
            && url.host_str() == Some(self.host.as_str())
            && url.port_or_known_default() == Some(self.port)
            && (self.path.is_empty()
                || url.path() == self.path
                || url
                    .path()
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    fn display(&self) -> String {
        format!(
            "{}://{}:{}{}/",
            self.scheme, self.host, self.port, self.path
        )
    }
}

/// The configured upstream bases.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowList {
    bases: Vec<Base>,
}

impl AllowList {
    /// Parses the bases; the error is the offending base and why.
    pub(crate) fn new<'a>(
        bases: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, (String, String)> {
        let bases = bases
            .into_iter()
            .map(|text| {
                let url = parse_http(text).map_err(|reason| (text.to_owned(), reason))?;
                if url.query().is_some() || url.fragment().is_some() {
                    return Err((
                        text.to_owned(),
                        "a base URL has no query or fragment".into(),
                    ));
                }
                Ok(Base {
                    scheme: url.scheme().to_owned(),
                    host: url.host_str().unwrap_or_default().to_owned(),
                    port: url.port_or_known_default().unwrap_or_default(),
                    path: url.path().trim_end_matches('/').to_owned(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { bases })
    }

    /// `url` parsed, if the client may call it; otherwise why not.
    pub(crate) fn check(&self, url: &str) -> Result<Url, String> {
        let parsed = parse_http(url)?;
        if self.bases.iter().any(|base| base.allows(&parsed)) {
            return Ok(parsed);
        }
        let allowed = if self.bases.is_empty() {
            "none configured".to_owned()
        } else {
            self.bases
                .iter()
                .map(Base::display)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(format!(
            "not under a configured upstream (allowed: {allowed})"
        ))
    }

    /// The bases, for diagnostics.
    pub(crate) fn describe(&self) -> Vec<String> {
        self.bases.iter().map(Base::display).collect()
    }
}

/// `url` parsed, if it is an absolute http(s) URL with a host and without userinfo.
pub(crate) fn parse_http(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http(s)", parsed.scheme()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("URL carries userinfo".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("URL has no host".into());
    }
    Ok(parsed)
}

/// `url` without its query and fragment, for logs and errors.
pub(crate) fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> AllowList {
        AllowList::new([
            "http://localhost:8091",
            "https://manage-pom-cases.example/api/",
            "http://prison-api.example/base",
        ])
        .expect("valid bases")
    }

    #[test]
    fn urls_under_a_base_are_allowed() {
        let list = list();
        for url in [
            "http://localhost:8091/sent-referral/f56c5f7c-632f-4cad-a1b3-693541cb5f22",
            "http://LOCALHOST:8091/x?y=1#z",
            "https://manage-pom-cases.example:443/api/pom-allocation/A0123BY/1",
            "https://manage-pom-cases.example/api",
            "http://prison-api.example:80/base/api/bookings/1208804",
        ] {
            assert!(list.check(url).is_ok(), "{url} should be allowed");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let list = list();
        for url in [
            "http://example.invalid/sent-referral/1",
            "http://localhost:8092/sent-referral/1",
            "https://localhost:8091/sent-referral/1",
            "http://127.0.0.1:8091/sent-referral/1",
            "http://manage-pom-cases.example/api/x",
            "https://manage-pom-cases.example/apix",
            "https://manage-pom-cases.example/api/../admin",
            "https://manage-pom-cases.example/other",
            "http://user:pass@localhost:8091/x",
            "http://user@localhost:8091/x",
            "ftp://localhost:8091/x",
            "file:///etc/passwd",
            "/relative/path",
            "not a url",
        ] {
            assert!(list.check(url).is_err(), "{url} should be refused");
        }
    }

    #[test]
    fn bad_bases_are_configuration_errors() {
        assert!(AllowList::new(["ftp://host"]).is_err());
        assert!(AllowList::new(["http://u:p@host"]).is_err());
        assert!(AllowList::new(["http://host/?q=1"]).is_err());
        assert!(AllowList::new(["host:8080"]).is_err());
    }

    #[test]
    fn logs_drop_the_query() {
        let url = Url::parse("http://h/a/b?token=secret#f").expect("url");
        assert_eq!(without_query(&url), "http://h/a/b");
    }
}
