//! The replicator actor: one Durable Object per replication job.
//!
//! Replication (checkpointed pull and push driven by alarms) is built in a
//! later issue; until then the class exists so the deployment's Durable
//! Object migrations are final, and it answers every request with CouchDB's
//! `not_implemented` error.

use shared::error::CouchError;
use shared::http::Response;

/// The answer the actor gives until replication lands.
pub fn not_yet() -> Response {
    Response::error(&CouchError::not_implemented(
        "Replication is not supported by this server yet",
    ))
}

#[cfg(target_arch = "wasm32")]
mod binding {
    use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

    #[durable_object]
    pub struct ReplicatorActor {
        _state: State,
    }

    impl DurableObject for ReplicatorActor {
        fn new(state: State, _env: Env) -> Self {
            ReplicatorActor { _state: state }
        }

        async fn fetch(&self, _req: Request) -> Result<Response> {
            let r = super::not_yet();
            Ok(Response::from_bytes(r.body)?.with_status(r.status))
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use binding::ReplicatorActor;

#[cfg(test)]
mod tests {
    #[test]
    fn answers_not_implemented() {
        let r = super::not_yet();
        assert_eq!(r.status, 501);
        assert_eq!(r.json_body()["error"], "not_implemented");
    }
}
