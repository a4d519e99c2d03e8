//! The concert API of seed 004: concert lookup (precomputed ~4–5 KB bodies) and the waiting
//! queue, where a user's position is the order in which it first joined.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use super::input::{self, optional_id, optional_positive, parse_int};
use super::respond::{HandlerResult, bad_request, json_bytes, not_found, ok};
use super::state::{Sharded, uuid_v4};

/// The concerts: title, venue, the month of their two schedules.
const CONCERTS: [(&str, &str, &str); 3] = [
    ("DevConcert 2025", "Seoul", "2025-09"),
    ("DevConcert 2025 Encore", "Busan", "2025-10"),
    ("DevConcert 2025 Finale", "Incheon", "2025-11"),
];
const SEAT_PRICE: u64 = 50000;

/// Concert bodies and the queue of each concert.
#[derive(Debug)]
pub(crate) struct Concerts {
    bodies: Box<[Bytes]>,
    queues: Box<[Queue]>,
    active: u64,
}

#[derive(Debug, Default)]
struct Queue {
    members: Sharded<String, Arc<Ticket>>,
    joined: AtomicU64,
}

#[derive(Debug)]
struct Ticket {
    token: String,
    position: u64,
}

impl Concerts {
    /// Concerts with `seats` seats per schedule, whose first `active` queue positions are
    /// `ACTIVE`.
    pub fn new(seats: u32, active: u64) -> Self {
        let bodies = CONCERTS
            .iter()
            .zip(1u64..)
            .map(|(&(title, venue, month), id)| {
                let schedules: Vec<_> = (1..=2u64)
                    .map(|n| {
                        let seats: Vec<_> = (1..=seats)
                            .map(|no| json!({"seatNo": no, "price": SEAT_PRICE, "status": "AVAILABLE"}))
                            .collect();
                        json!({
                            "scheduleId": 100 * id + n,
                            "date": format!("{month}-{n:02}"),
                            "seats": seats,
                        })
                    })
                    .collect();
                Bytes::from(
                    json!({
                        "concertId": id,
                        "title": title,
                        "venue": venue,
                        "schedules": schedules,
                    })
                    .to_string(),
                )
            })
            .collect();
        Concerts {
            bodies,
            queues: CONCERTS.iter().map(|_| Queue::default()).collect(),
            active,
        }
    }

    /// The index of concert `id`.
    fn index(&self, id: i64) -> Option<usize> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        (index < self.bodies.len()).then_some(index)
    }
}

/// `GET /concerts/{id}`.
pub(crate) fn concert(concerts: &Concerts, param: &str) -> HandlerResult {
    let id = parse_int(param)
        .ok_or_else(|| bad_request(&format!("concert id must be an integer, got `{param}`")))?;
    let index = concerts
        .index(id)
        .ok_or_else(|| not_found(&format!("unknown concert {id}")))?;
    Ok(json_bytes(StatusCode::OK, concerts.bodies[index].clone()))
}

/// `POST /queue/token`: joining again returns the same token and position.
pub(crate) fn join_queue(concerts: &Concerts, body: &[u8]) -> HandlerResult {
    let body = input::object(body)?;
    let user =
        optional_id(&body, "userId")?.ok_or_else(|| bad_request("missing field `userId`"))?;
    let concert = optional_positive(&body, "concertId")?.unwrap_or(1);
    let index = i64::try_from(concert)
        .ok()
        .and_then(|id| concerts.index(id))
        .ok_or_else(|| not_found(&format!("unknown concert {concert}")))?;
    let queue = &concerts.queues[index];
    let ticket = queue.members.with(user.as_str(), |members| {
        if let Some(ticket) = members.get(user.as_str()) {
            return Arc::clone(ticket);
        }
        let ticket = Arc::new(Ticket {
            token: uuid_v4(),
            position: queue.joined.fetch_add(1, Ordering::Relaxed) + 1,
        });
        members.insert(user.clone(), Arc::clone(&ticket));
        ticket
    });
    let status = if ticket.position <= concerts.active {
        "ACTIVE"
    } else {
        "WAITING"
    };
    Ok(ok(&json!({
        "token": ticket.token,
        "concertId": concert,
        "userId": user,
        "position": ticket.position,
        "status": status,
    })))
}
