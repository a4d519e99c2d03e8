//! The reservation and point API of seed 002: bearer tokens, dates, free seats, seat
//! reservation (one winner per seat), points and payment.
//!
//! A seat is a `OnceLock`: the first reservation to set it wins and every other user gets 409,
//! without a lock on the read path. Reservations are never released, so a reservation id
//! (`R<scheduleId>-<seatId>`) names its seat and needs no lookup table. Points sit behind a
//! per-user async lock held for the configured write latency.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::input::{
    self, optional_id, optional_positive, parse_int, query_param, required_positive, required_str,
};
use super::respond::{
    HandlerResult, Reject, bad_request, json_bytes, not_found, ok, reject, unauthorized,
};
use super::state::{Sharded, hex_id, lock, simulate_write};

const FIRST_SCHEDULE: u64 = 12345;
const DATES: [&str; 7] = [
    "2025-06-01",
    "2025-06-02",
    "2025-06-03",
    "2025-06-04",
    "2025-06-05",
    "2025-06-06",
    "2025-06-07",
];
const ROWS: usize = 10;
const SEATS_PER_ROW: usize = 20;
const SEAT_PRICE: u64 = 5000;

/// Accounts, tokens and the seats of every schedule.
#[derive(Debug)]
pub(crate) struct Reservations {
    accounts: Sharded<String, Arc<Account>>,
    tokens: Sharded<String, Arc<Account>>,
    schedules: Box<[Schedule]>,
    dates_body: Bytes,
}

/// A user of the reservation API: its token and points.
#[derive(Debug)]
struct Account {
    user: String,
    token: String,
    points: tokio::sync::Mutex<u64>,
}

#[derive(Debug)]
struct Schedule {
    id: u64,
    date: &'static str,
    seats: Box<[OnceLock<Arc<Reservation>>]>,
}

#[derive(Debug)]
struct Reservation {
    schedule_id: u64,
    seat: usize,
    user: String,
    paid: Mutex<bool>,
}

impl Reservation {
    fn id(&self) -> String {
        format!("R{}-{}", self.schedule_id, seat_name(self.seat))
    }

    fn to_json(&self) -> Value {
        let status = if *lock(&self.paid) {
            "PAID"
        } else {
            "RESERVED"
        };
        json!({
            "reservationId": self.id(),
            "scheduleId": self.schedule_id,
            "seatId": seat_name(self.seat),
            "userId": self.user,
            "status": status,
            "price": SEAT_PRICE,
        })
    }
}

/// `A1`..`J20` for seat index 0..200.
fn seat_name(index: usize) -> String {
    let row = char::from(b'A' + (index / SEATS_PER_ROW) as u8);
    format!("{row}{}", index % SEATS_PER_ROW + 1)
}

/// The index of a seat name such as `B7`.
fn parse_seat(name: &str) -> Option<usize> {
    let mut chars = name.chars();
    let row = chars.next()?;
    if !row.is_ascii_uppercase() {
        return None;
    }
    let row = (row as usize) - ('A' as usize);
    let number = input::parse_positive(chars.as_str())? as usize;
    (row < ROWS && number <= SEATS_PER_ROW).then(|| row * SEATS_PER_ROW + number - 1)
}

impl Reservations {
    pub fn new() -> Self {
        let schedules: Box<[Schedule]> = DATES
            .iter()
            .zip(FIRST_SCHEDULE..)
            .map(|(&date, id)| Schedule {
                id,
                date,
                seats: (0..ROWS * SEATS_PER_ROW).map(|_| OnceLock::new()).collect(),
            })
            .collect();
        let dates: Vec<_> = schedules
            .iter()
            .map(|s| json!({"date": s.date, "scheduleId": s.id}))
            .collect();
        Reservations {
            accounts: Sharded::default(),
            tokens: Sharded::default(),
            schedules,
            dates_body: Bytes::from(json!({ "dates": dates }).to_string()),
        }
    }

    /// The account of the request's bearer token, or 401.
    fn account(&self, headers: &HeaderMap) -> Result<Arc<Account>, Reject> {
        let token = input::bearer(headers)
            .ok_or_else(|| unauthorized("missing token: send Authorization: Bearer <token>"))?;
        self.tokens
            .get(token)
            .ok_or_else(|| unauthorized("unknown token"))
    }

    fn schedule(&self, id: i64) -> Option<&Schedule> {
        let index = u64::try_from(id).ok()?.checked_sub(FIRST_SCHEDULE)?;
        self.schedules.get(usize::try_from(index).ok()?)
    }
}

/// `POST /auth/token`. A user keeps one token for the life of the server.
pub(crate) fn issue_token(r: &Reservations, body: &[u8]) -> HandlerResult {
    let body = input::object(body)?;
    let username = required_str(&body, "username")?;
    required_str(&body, "password")?;
    let account = r.accounts.with(username, |accounts| {
        if let Some(account) = accounts.get(username) {
            return Arc::clone(account);
        }
        let account = Arc::new(Account {
            user: username.to_string(),
            token: format!("tok_{}", hex_id()),
            points: tokio::sync::Mutex::new(0),
        });
        r.tokens.insert(account.token.clone(), Arc::clone(&account));
        accounts.insert(username.to_string(), Arc::clone(&account));
        account
    });
    Ok(ok(&json!({
        "token": account.token,
        "userId": account.user,
        "expiresIn": 3600,
    })))
}

/// `GET /reservations/available/dates`.
pub(crate) fn dates(r: &Reservations, headers: &HeaderMap) -> HandlerResult {
    r.account(headers)?;
    Ok(json_bytes(StatusCode::OK, r.dates_body.clone()))
}

/// `GET /reservations/available/seat?scheduleId=...`.
pub(crate) fn seats(r: &Reservations, headers: &HeaderMap, query: Option<&str>) -> HandlerResult {
    r.account(headers)?;
    let raw = query_param(query, "scheduleId")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_request("missing query parameter `scheduleId`"))?;
    let id = parse_int(&raw)
        .ok_or_else(|| bad_request("query parameter `scheduleId` must be an integer"))?;
    let schedule = r
        .schedule(id)
        .ok_or_else(|| not_found(&format!("unknown schedule {id}")))?;
    let mut body = format!(
        r#"{{"scheduleId":{},"date":"{}","seats":["#,
        schedule.id, schedule.date
    );
    let mut first = true;
    for (index, seat) in schedule.seats.iter().enumerate() {
        if seat.get().is_none() {
            if !first {
                body.push(',');
            }
            first = false;
            let _ = write!(
                body,
                r#"{{"seatId":"{}","price":{SEAT_PRICE}}}"#,
                seat_name(index)
            );
        }
    }
    body.push_str("]}");
    Ok(json_bytes(StatusCode::OK, Bytes::from(body)))
}

/// `POST /reservations`: of concurrent requests for one free seat, exactly one wins.
pub(crate) fn reserve(r: &Reservations, headers: &HeaderMap, body: &[u8]) -> HandlerResult {
    let account = r.account(headers)?;
    let body = input::object(body)?;
    let schedule_id = required_positive(&body, "scheduleId")?;
    let seat_id = required_str(&body, "seatId")?;
    let user = optional_id(&body, "userId")?.unwrap_or_else(|| account.user.clone());
    let schedule = i64::try_from(schedule_id)
        .ok()
        .and_then(|id| r.schedule(id))
        .ok_or_else(|| not_found(&format!("unknown schedule {schedule_id}")))?;
    let seat = parse_seat(seat_id)
        .ok_or_else(|| bad_request(&format!("unknown seatId `{seat_id}` (A1..J20)")))?;
    let mut user = Some(user);
    let holder = schedule.seats[seat].get_or_init(|| {
        Arc::new(Reservation {
            schedule_id: schedule.id,
            seat,
            user: user.take().unwrap_or_default(),
            paid: Mutex::new(false),
        })
    });
    // `user` is `None` when this request created the reservation.
    if user.as_deref().is_none_or(|u| u == holder.user) {
        Ok(ok(&holder.to_json()))
    } else {
        Err(reject(
            StatusCode::CONFLICT,
            &json!({"error": "seat already reserved", "seatId": seat_name(seat)}),
        ))
    }
}

/// `GET /points/balance`.
pub(crate) async fn balance(
    r: &Reservations,
    headers: &HeaderMap,
    latency: Duration,
) -> HandlerResult {
    let account = r.account(headers)?;
    let points = account.points.lock().await;
    simulate_write(latency).await;
    Ok(ok(&json!({"userId": account.user, "balance": *points})))
}

/// `POST /points/charge`: points go to the token's user.
pub(crate) async fn charge(
    r: &Reservations,
    headers: &HeaderMap,
    body: &[u8],
    latency: Duration,
) -> HandlerResult {
    let account = r.account(headers)?;
    let body = input::object(body)?;
    let amount = required_positive(&body, "amount")?;
    let mut points = account.points.lock().await;
    simulate_write(latency).await;
    *points = points
        .checked_add(amount)
        .ok_or_else(|| bad_request("field `amount` would overflow the balance"))?;
    Ok(ok(&json!({"userId": account.user, "balance": *points})))
}

/// `POST /reservations/pay`: the price comes from the token user's points, once.
pub(crate) async fn pay(
    r: &Reservations,
    headers: &HeaderMap,
    body: &[u8],
    latency: Duration,
) -> HandlerResult {
    let account = r.account(headers)?;
    let body = input::object(body)?;
    let id = required_str(&body, "reservationId")?;
    let amount = optional_positive(&body, "amount")?;
    let reservation = id
        .strip_prefix('R')
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(schedule, seat)| {
            let schedule = r.schedule(parse_int(schedule)?)?;
            schedule.seats.get(parse_seat(seat)?)?.get()
        })
        .ok_or_else(|| not_found(&format!("unknown reservation `{id}`")))?;
    if let Some(amount) = amount.filter(|&a| a != SEAT_PRICE) {
        return Err(bad_request(&format!(
            "field `amount` is {amount}, but the reservation's price is {SEAT_PRICE}"
        )));
    }
    let mut points = account.points.lock().await;
    simulate_write(latency).await;
    let mut paid = lock(&reservation.paid);
    if !*paid {
        if *points < SEAT_PRICE {
            return Err(reject(
                StatusCode::CONFLICT,
                &json!({"error": "insufficient balance", "balance": *points}),
            ));
        }
        *points -= SEAT_PRICE;
        *paid = true;
    }
    drop(paid);
    Ok(ok(&json!({
        "reservationId": reservation.id(),
        "status": "PAID",
        "paid": SEAT_PRICE,
        "balance": *points,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_names_round_trip() {
        for index in 0..ROWS * SEATS_PER_ROW {
            assert_eq!(parse_seat(&seat_name(index)), Some(index));
        }
        assert_eq!(seat_name(0), "A1");
        assert_eq!(seat_name(199), "J20");
        for bad in ["", "A", "A0", "A21", "K1", "a1", "A-1", "1A"] {
            assert_eq!(parse_seat(bad), None, "{bad}");
        }
    }
}
