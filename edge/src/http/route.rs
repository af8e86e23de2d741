//! Which handler a request goes to: method + path → [`Route`], as a pure function.
//!
//! Called first for every request by [`super::handle`]. Knows nothing about tokens beyond
//! cutting them out of the path, and never allocates more than the path it was given.
//! Every other path ending in `.json` is a Stremio addon route, judged in [`super::addon`]
//! (which knows the addon secret). Also renders the path for logs with the token or addon
//! secret redacted, since both are capabilities.

use http::Method;

use super::addon::AddonMethod;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET`/`HEAD /dl/{token}[/{name}]`; `download` is the `?download` flag.
    Download {
        token: &'a str,
        head: bool,
        download: bool,
    },
    /// `GET /watch/{token}`.
    Watch {
        token: &'a str,
    },
    /// Any other `*.json` path (any method): a Stremio addon request, maybe under a secret.
    Addon {
        path: &'a str,
        method: AddonMethod,
    },
    Healthz,
    Readyz,
    /// A known path with a method it does not serve; `allow` lists the ones it does.
    MethodNotAllowed {
        allow: &'static str,
    },
    NotFound,
}

impl Route<'_> {
    /// Label for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Download { .. } => "download",
            Route::Watch { .. } => "watch",
            Route::Addon { .. } => "addon",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::MethodNotAllowed { .. } => "method_not_allowed",
            Route::NotFound => "not_found",
        }
    }
}

/// Maps a request line to a route.
pub fn route<'a>(method: &Method, path: &'a str, query: Option<&str>) -> Route<'a> {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(rest) = path.strip_prefix("/dl/") {
        let token = rest.split('/').next().unwrap_or_default();
        if token.is_empty() {
            return Route::NotFound;
        }
        if !get_or_head {
            return Route::MethodNotAllowed { allow: "GET, HEAD" };
        }
        return Route::Download {
            token,
            head: method == Method::HEAD,
            download: has_flag(query, "download"),
        };
    }
    if let Some(rest) = path.strip_prefix("/watch/") {
        let token = rest.split('/').next().unwrap_or_default();
        if token.is_empty() {
            return Route::NotFound;
        }
        return if get_or_head {
            Route::Watch { token }
        } else {
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        };
    }
    if path.ends_with(".json") {
        let method = match *method {
            Method::GET => AddonMethod::Get,
            Method::HEAD => AddonMethod::Head,
            Method::OPTIONS => AddonMethod::Options,
            _ => AddonMethod::Other,
        };
        return Route::Addon { path, method };
    }
    let fixed = match path {
        "/healthz" => Route::Healthz,
        "/readyz" => Route::Readyz,
        _ => return Route::NotFound,
    };
    if get_or_head {
        fixed
    } else {
        Route::MethodNotAllowed { allow: "GET, HEAD" }
    }
}

fn has_flag(query: Option<&str>, flag: &str) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair == flag || pair.split_once('=').is_some_and(|(k, _)| k == flag))
    })
}

/// First segments of addon paths without a secret prefix.
const ADDON_FIRST_SEGMENTS: [&str; 4] = ["catalog", "meta", "stream", "subtitles"];

/// The path with a link token replaced by `…`, for logs.
pub fn redacted_path(path: &str) -> String {
    RedactedPath(path).to_string()
}

/// Displays a path with its link token replaced by `…`. Formats only when a log line is
/// actually written, so a filtered-out access log costs no allocation.
#[derive(Debug, Clone, Copy)]
pub struct RedactedPath<'a>(pub &'a str);

impl std::fmt::Display for RedactedPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for prefix in ["/dl/", "/watch/"] {
            if let Some(rest) = self.0.strip_prefix(prefix) {
                let after_token = rest.find('/').map_or("", |at| &rest[at..]);
                return write!(f, "{prefix}…{after_token}");
            }
        }
        // An addon path whose first segment is not an addon word starts with the secret.
        if self.0.ends_with(".json")
            && let Some(rest) = self.0.strip_prefix('/')
            && let Some(at) = rest.find('/')
            && !ADDON_FIRST_SEGMENTS.contains(&&rest[..at])
        {
            return write!(f, "/…{}", &rest[at..]);
        }
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_routes() {
        assert_eq!(
            route(&Method::GET, "/dl/abc/film.mkv", None),
            Route::Download {
                token: "abc",
                head: false,
                download: false
            }
        );
        assert_eq!(
            route(&Method::HEAD, "/dl/abc", Some("download")),
            Route::Download {
                token: "abc",
                head: true,
                download: true
            }
        );
        assert_eq!(
            route(&Method::GET, "/dl/abc/x", Some("a=1&download=1")),
            Route::Download {
                token: "abc",
                head: false,
                download: true
            }
        );
        assert_eq!(route(&Method::GET, "/dl/", None), Route::NotFound);
        assert_eq!(route(&Method::GET, "/dl//x", None), Route::NotFound);
        assert!(matches!(
            route(&Method::POST, "/dl/abc/x", None),
            Route::MethodNotAllowed { .. }
        ));
    }

    #[test]
    fn other_routes() {
        assert_eq!(
            route(&Method::GET, "/watch/tok", None),
            Route::Watch { token: "tok" }
        );
        assert_eq!(route(&Method::GET, "/healthz", None), Route::Healthz);
        assert_eq!(route(&Method::HEAD, "/readyz", None), Route::Readyz);
        // Metrics have their own listener (`super::scrape`), never the public port.
        assert_eq!(route(&Method::GET, "/metrics", None), Route::NotFound);
        assert_eq!(route(&Method::GET, "/", None), Route::NotFound);
        assert_eq!(route(&Method::GET, "/metrics/x", None), Route::NotFound);
        assert_eq!(
            route(&Method::OPTIONS, "/s/manifest.json", None),
            Route::Addon {
                path: "/s/manifest.json",
                method: AddonMethod::Options
            }
        );
        assert_eq!(
            route(&Method::PUT, "/manifest.json", None),
            Route::Addon {
                path: "/manifest.json",
                method: AddonMethod::Other
            }
        );
        // Links are never addon routes, whatever their file name.
        assert!(matches!(
            route(&Method::GET, "/dl/tok/x.json", None),
            Route::Download { .. }
        ));
        assert!(matches!(
            route(&Method::DELETE, "/healthz", None),
            Route::MethodNotAllowed { .. }
        ));
        assert!(!has_flag(Some("downloads=1"), "download"));
    }

    #[test]
    fn tokens_never_reach_logs() {
        assert_eq!(redacted_path("/dl/SECRET/film.mkv"), "/dl/…/film.mkv");
        assert_eq!(redacted_path("/dl/SECRET"), "/dl/…");
        assert_eq!(redacted_path("/watch/SECRET"), "/watch/…");
        assert_eq!(redacted_path("/healthz"), "/healthz");
        assert_eq!(
            redacted_path("/SECRET/catalog/movie/top.json"),
            "/…/catalog/movie/top.json"
        );
        assert_eq!(redacted_path("/SECRET/manifest.json"), "/…/manifest.json");
        assert_eq!(redacted_path("/manifest.json"), "/manifest.json");
        assert_eq!(
            redacted_path("/stream/movie/tt1.json"),
            "/stream/movie/tt1.json"
        );
    }
}
