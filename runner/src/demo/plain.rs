//! The plain targets of seeds 000 and 001: `GET /` and `GET /boards`, served from
//! precomputed bodies without locks.

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use super::respond::{Resp, json_bytes, text};

/// The precomputed bodies.
#[derive(Debug)]
pub(crate) struct Plain {
    boards: Bytes,
}

impl Plain {
    pub fn new() -> Self {
        let boards: Vec<_> = (1..=20)
            .map(|id| {
                json!({
                    "id": id,
                    "title": format!("Board {id}"),
                    "author": format!("user{id}"),
                    "createdAt": format!("2025-01-{id:02}T00:00:00Z"),
                })
            })
            .collect();
        Plain {
            boards: Bytes::from(json!({ "boards": boards }).to_string()),
        }
    }
}

/// `GET /`: 200 `OK\n`.
pub(crate) fn root() -> Resp {
    text(StatusCode::OK, Bytes::from_static(b"OK\n"))
}

/// `GET /boards`: the 20 boards.
pub(crate) fn boards(plain: &Plain) -> Resp {
    json_bytes(StatusCode::OK, plain.boards.clone())
}
