//! Content that could attack the edge's origin: nosniff everywhere, browser-executable
//! files as sandboxed attachments, the /watch page's policy.

use super::*;

#[tokio::test]
async fn every_response_says_nosniff() {
    let edge = start().await;
    let film = format!("/dl/{}/film.mp4", token(FILM));
    let watch = format!("/watch/{}", token(FILM));
    let etag = format!("\"uid-{FILM_SIZE}\"");
    type Case<'a> = (Method, String, Vec<(&'a str, &'a str)>, StatusCode);
    let cases: Vec<Case> = vec![
        (Method::GET, film.clone(), vec![], StatusCode::OK),
        (Method::HEAD, film.clone(), vec![], StatusCode::OK),
        (
            Method::GET,
            film.clone(),
            vec![("range", "bytes=0-0,5-5")],
            StatusCode::PARTIAL_CONTENT,
        ),
        (
            Method::GET,
            film.clone(),
            vec![("if-none-match", etag.as_str())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            Method::GET,
            film.clone(),
            vec![("range", "bytes=999999999-")],
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
        (Method::GET, watch, vec![], StatusCode::OK),
        (
            Method::GET,
            "/dl/forged/x".into(),
            vec![],
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/nope".into(), vec![], StatusCode::NOT_FOUND),
        (Method::POST, film, vec![], StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/healthz".into(), vec![], StatusCode::OK),
        (Method::GET, "/readyz".into(), vec![], StatusCode::OK),
    ];
    for (method, path, headers, status) in cases {
        let reply = edge.send(method.clone(), &path, &headers).await;
        assert_eq!(reply.status, status, "{method} {path}");
        assert_eq!(
            reply.header("x-content-type-options"),
            "nosniff",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn browser_executable_files_are_sandboxed_attachments() {
    let edge = start().await;
    for (file, name, content_type) in [
        (SVG, "cat.svg", "image/svg+xml"),
        (PAGE, "index.html", "text/html"),
        (SCRIPT, "x.js", "text/javascript"),
    ] {
        // Even when asked for in place (no `?download`), and for ranges too.
        for range in [None, Some("bytes=0-9")] {
            let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
            let reply = edge
                .get(&format!("/dl/{}/{name}", token(file)), &headers)
                .await;
            assert!(reply.status.is_success(), "{name}: {}", reply.status);
            assert_eq!(reply.header("content-type"), content_type);
            assert!(
                reply
                    .header("content-disposition")
                    .starts_with("attachment;"),
                "{name}: {}",
                reply.header("content-disposition")
            );
            assert_eq!(reply.header("content-security-policy"), "sandbox", "{name}");
            assert_eq!(reply.header("x-content-type-options"), "nosniff");
        }
    }
    // Media stays inline and unsandboxed, so players and the watch page keep working.
    let reply = edge
        .send(Method::HEAD, &format!("/dl/{}/film.mp4", token(FILM)), &[])
        .await;
    assert!(reply.header("content-disposition").starts_with("inline;"));
    assert!(reply.headers.get("content-security-policy").is_none());
}

#[tokio::test]
async fn watch_page_has_a_strict_policy_its_page_satisfies() {
    let edge = start().await;
    let reply = edge.get(&format!("/watch/{}", token(FILM)), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let policy = reply.header("content-security-policy").to_owned();
    let page = String::from_utf8(reply.body.to_vec()).unwrap();
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{policy}");
    assert!(directives.contains(&"media-src 'self'"), "{policy}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert!(
        !policy.contains("script-src"),
        "no script is allowed: {policy}"
    );
    // The player's source is a same-origin path, served by this edge.
    let src_at = page.find("<source src=\"").expect("a player") + "<source src=\"".len();
    let src = &page[src_at..src_at + page[src_at..].find('"').unwrap()];
    assert!(src.starts_with("/dl/"), "{src}");
    let media = edge.get(src, &[("range", "bytes=0-99")]).await;
    assert_eq!(media.status, StatusCode::PARTIAL_CONTENT);
    assert!(media.header("content-type").starts_with("video/"));
    // The page's one inline style is the one whose hash the policy allows (checked in the
    // unit tests); nothing else inline can run.
    assert!(!page.contains("<script"));
    assert_eq!(page.matches("<style>").count(), 1);
}
