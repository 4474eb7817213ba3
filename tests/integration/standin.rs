//! A local STAND-IN for a third-party license server that cannot be reached from here (Google's Widevine license
//! service, a tenant's PlayReady license server): a real HTTP server on a free port that records every request
//! exactly as received and answers from a script, so tests check the exact request Clavis sends and how Clavis
//! handles each kind of answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// One answer of the script.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Status, content type and body.
    Reply(u16, &'static str, String),
    /// Wait, then reply.
    Slow(Duration, Box<Answer>),
}

/// One request as the stand-in received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

#[derive(Default)]
struct State {
    script: Vec<Answer>,
    received: Vec<Received>,
}

pub struct StandIn {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

async fn answer(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let next = {
        let mut state = state.lock().unwrap();
        state.received.push(Received {
            method: req.method().to_string(),
            path: req.uri().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                .collect(),
            body: body.to_vec(),
        });
        // Each request takes the next answer; the last one repeats.
        if state.script.len() > 1 { state.script.remove(0) } else { state.script[0].clone() }
    };
    let mut next = next;
    loop {
        match next {
            Answer::Slow(delay, then) => {
                tokio::time::sleep(delay).await;
                next = *then;
            }
            Answer::Reply(status, content_type, body) => {
                return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                    .content_type(content_type)
                    .body(body);
            }
        }
    }
}

impl StandIn {
    /// Start a stand-in answering `path` from `script` (each request takes the next answer; the last repeats).
    pub async fn start(path: &str, script: Vec<Answer>) -> StandIn {
        assert!(!script.is_empty());
        let state = Arc::new(Mutex::new(State { script, received: Vec::new() }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        StandIn { url: format!("http://127.0.0.1:{port}{path}"), state, server: handle }
    }

    /// Replace the script.
    pub fn script(&self, script: Vec<Answer>) {
        assert!(!script.is_empty());
        self.state.lock().unwrap().script = script;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    pub fn last(&self) -> Received {
        self.received().pop().expect("the stand-in received a request")
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let server = self.server.clone();
        tokio::spawn(async move { server.stop(false).await });
    }
}
