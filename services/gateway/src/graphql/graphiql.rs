//! GraphiQL from the binary: the page on `GET /graphql` and its assets under
//! `/graphql/assets/`, so that it works with no internet access (async-graphql's page loads
//! GraphiQL and React from a CDN and stays blank offline).
//!
//! The files are vendored in `services/gateway/assets/graphiql/` (versions, licenses and
//! checksums in its README). Asset URLs carry the vendored version, so browsers may keep them
//! for good (`immutable`); the page and our start script are revalidated (`no-cache`). The page
//! sends a Content-Security-Policy that admits only this origin (scripts, styles, fonts,
//! fetches and graphql-ws), so a stray reference elsewhere would fail loudly in the browser.
//! Nothing here is served while `graphql.graphiql` is off.

use super::{GraphqlSettings, GRAPHQL_PATH};
use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// Where the assets are served.
pub const ASSETS_PATH: &str = "/graphql/assets";

/// One served file.
pub struct Asset {
    /// The last segment of its URL.
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// Versioned name: cache for good.
    pub immutable: bool,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every asset the page loads, plus the third-party licenses.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "react-18.3.1.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
        immutable: true,
    },
    Asset {
        name: "react-dom-18.3.1.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
        immutable: true,
    },
    Asset {
        name: "graphiql-4.0.3.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
        immutable: true,
    },
    Asset {
        name: "graphiql-4.0.3.min.css",
        content_type: CSS,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
        immutable: true,
    },
    Asset {
        name: "ichigen-graphiql.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/ichigen-graphiql.js"),
        immutable: false,
    },
    Asset {
        name: "THIRD_PARTY_LICENSES.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/THIRD_PARTY_LICENSES.txt"),
        immutable: false,
    },
];

/// The page: same-origin assets only, no inline script.
pub const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Ichigen GraphQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="/graphql/assets/graphiql-4.0.3.min.css">
    <style>
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="/graphql/assets/react-18.3.1.production.min.js"></script>
    <script src="/graphql/assets/react-dom-18.3.1.production.min.js"></script>
    <script src="/graphql/assets/graphiql-4.0.3.min.js"></script>
    <script src="/graphql/assets/ichigen-graphiql.js"></script>
  </body>
</html>
"#;

/// What the page may load: this origin only (GraphiQL and React set inline styles, and its
/// stylesheet inlines fonts and images as data URLs).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Mounts `GET /graphql/assets/{name}` (the page itself is the GET handler of `/graphql`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(format!("{ASSETS_PATH}/{{name}}"))
            .wrap(actix_web::middleware::Compress::default())
            .route(web::get().to(asset)),
    );
}

/// The page, or 404 when GraphiQL is off.
pub fn page(settings: &GraphqlSettings) -> HttpResponse {
    if !settings.graphiql {
        return HttpResponse::NotFound().finish();
    }
    debug_assert!(PAGE.contains(GRAPHQL_PATH));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(PAGE)
}

async fn asset(name: web::Path<String>, settings: web::Data<GraphqlSettings>) -> HttpResponse {
    let found = ASSETS.iter().find(|a| a.name == name.as_str());
    match found {
        Some(asset) if settings.graphiql => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((
                header::CACHE_CONTROL,
                if asset.immutable {
                    "public, max-age=31536000, immutable"
                } else {
                    "no-cache"
                },
            ))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(asset.bytes),
        _ => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_every_asset_it_references_from_here_and_nothing_else() {
        let mut referenced = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            for part in PAGE.split(attribute).skip(1) {
                referenced.push(part.split('"').next().unwrap_or_default());
            }
        }
        for url in &referenced {
            if *url == "data:," {
                continue;
            }
            let name = url
                .strip_prefix(&format!("{ASSETS_PATH}/"))
                .unwrap_or_else(|| panic!("{url} is not one of our assets"));
            assert!(ASSETS.iter().any(|a| a.name == name), "{url} is not served");
        }
        assert_eq!(referenced.len(), 6, "{referenced:?}");
        assert!(!PAGE.contains("//"), "no absolute or protocol-relative URL");
    }
}
