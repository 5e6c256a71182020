//! Shared helpers of the simulator tests: a server on port 0 with the
//! standard fixture, and a client that sends the API's headers.

#![allow(dead_code)]

pub use productive_pg::sim::SimOptions;
use productive_pg::sim::fixture::{self, ids};
use productive_pg::sim::store::Store;
use productive_pg::sim::{RateLimits, SimServer, start};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tokio::net::TcpListener;

pub const TOKEN: &str = "test-token";
pub const MEDIA_TYPE: &str = "application/vnd.api+json";

/// A running simulator and a client for it.
pub struct Sim {
    pub server: SimServer,
    pub client: reqwest::Client,
}

/// Options for tests: our token, no rate limits, no faults.
pub fn test_options() -> SimOptions {
    SimOptions {
        token: TOKEN.to_string(),
        limits: RateLimits::disabled(),
        ..SimOptions::default()
    }
}

pub async fn start_with(store: Store, options: SimOptions) -> Sim {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let server = start(listener, store, options)
        .await
        .expect("start simulator");
    Sim {
        server,
        client: reqwest::Client::new(),
    }
}

/// The standard fixture with [`test_options`].
pub async fn start_standard() -> Sim {
    start_with(fixture::standard(), test_options()).await
}

/// An answer: status, headers and the body parsed as JSON (`Null` when
/// empty).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ids of `data`, in order.
    pub fn ids(&self) -> Vec<String> {
        self.body["data"]
            .as_array()
            .expect("a list document")
            .iter()
            .map(|r| r["id"].as_str().expect("string id").to_string())
            .collect()
    }

    /// The first error's code.
    pub fn error_code(&self) -> &str {
        self.body["errors"][0]["code"].as_str().unwrap_or_default()
    }
}

impl Sim {
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.server.base_url())
    }

    /// A request with the token, organization and content type set.
    pub fn request(&self, method: Method, path_and_query: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path_and_query))
            .header("X-Auth-Token", TOKEN)
            .header("X-Organization-Id", ids::ORGANIZATION.to_string())
            .header("Content-Type", MEDIA_TYPE)
    }

    pub async fn send(&self, builder: RequestBuilder) -> Reply {
        let response = builder.send().await.expect("request reaches the simulator");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("whole body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path_and_query: &str) -> Reply {
        self.send(self.request(Method::GET, path_and_query)).await
    }

    pub async fn write(&self, method: Method, path: &str, body: Value) -> Reply {
        let builder = self.request(method, path).body(body.to_string());
        self.send(builder).await
    }

    /// The ids of every record a list request returns (one page of 200).
    pub async fn list_ids(&self, path_and_query: &str) -> Vec<String> {
        let separator = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let reply = self
            .get(&format!("{path_and_query}{separator}page[size]=200"))
            .await;
        assert_eq!(reply.status, 200, "{path_and_query}: {}", reply.body);
        reply.ids()
    }
}

/// Ids as the API writes them.
pub fn id_strings(ids: &[u64]) -> Vec<String> {
    ids.iter().map(u64::to_string).collect()
}
