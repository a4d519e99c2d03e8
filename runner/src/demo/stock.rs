//! The stock-trading API of seed 000: login, stock search, buy and logout, with the
//! `session_id` cookie as the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::input::{self, cookie, query_param, required_positive, required_str};
use super::respond::{HandlerResult, Reject, bad_request, ok, unauthorized};
use super::state::{Sharded, hex_id};

/// The listed stocks: code, name, price.
const STOCKS: [(&str, &str, u64); 5] = [
    ("005930", "Samsung Electronics", 71000),
    ("000660", "SK hynix", 180000),
    ("035420", "NAVER", 190000),
    ("035720", "Kakao", 45000),
    ("005380", "Hyundai Motor", 240000),
];

/// Sessions (id → username) and the order counter.
#[derive(Debug, Default)]
pub(crate) struct Stock {
    sessions: Sharded<String, Arc<str>>,
    next_order: AtomicU64,
}

/// The request's `session_id` cookie, or 401.
fn session_id(headers: &HeaderMap) -> Result<&str, Reject> {
    cookie(headers, "session_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| unauthorized("missing session: send the session_id cookie"))
}

fn unknown_session() -> Reject {
    unauthorized("unknown or expired session")
}

impl Stock {
    /// The user of the request's session, or 401.
    fn session(&self, headers: &HeaderMap) -> Result<Arc<str>, Reject> {
        self.sessions
            .get(session_id(headers)?)
            .ok_or_else(unknown_session)
    }
}

/// `POST /api/login`.
pub(crate) fn login(stock: &Stock, body: &[u8]) -> HandlerResult {
    let body = input::object(body)?;
    let username = required_str(&body, "username")?;
    required_str(&body, "password")?;
    let id = hex_id();
    stock.sessions.insert(id.clone(), Arc::from(username));
    let mut response = ok(&json!({
        "session_id": id,
        "username": username,
        "cookies": { "session_id": id },
    }));
    if let Ok(value) = HeaderValue::from_str(&format!("session_id={id}; Path=/; HttpOnly")) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /api/stock/search?query=...`.
pub(crate) fn search(stock: &Stock, headers: &HeaderMap, query: Option<&str>) -> HandlerResult {
    stock.session(headers)?;
    let text = query_param(query, "query")
        .filter(|q| !q.is_empty())
        .ok_or_else(|| bad_request("missing query parameter `query`"))?;
    let needle = text.to_lowercase();
    let results: Vec<_> = STOCKS
        .iter()
        .filter(|(code, name, _)| code.contains(&needle) || name.to_lowercase().contains(&needle))
        .map(|(code, name, price)| json!({"stock_id": code, "name": name, "price": price}))
        .collect();
    Ok(ok(&json!({ "query": text, "results": results })))
}

/// `POST /api/stock/buy`.
pub(crate) fn buy(stock: &Stock, headers: &HeaderMap, body: &[u8]) -> HandlerResult {
    stock.session(headers)?;
    let body = input::object(body)?;
    let stock_id = required_str(&body, "stock_id")?;
    let &(code, _, price) = STOCKS
        .iter()
        .find(|(code, _, _)| *code == stock_id)
        .ok_or_else(|| bad_request(&format!("unknown stock_id `{stock_id}`")))?;
    let quantity = required_positive(&body, "quantity")?;
    let total = price
        .checked_mul(quantity)
        .ok_or_else(|| bad_request("field `quantity` is too large"))?;
    let order = stock.next_order.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(ok(&json!({
        "order_id": format!("ord-{order}"),
        "stock_id": code,
        "quantity": quantity,
        "price": price,
        "total": total,
    })))
}

/// `POST /api/logout`.
pub(crate) fn logout(stock: &Stock, headers: &HeaderMap) -> HandlerResult {
    let id = session_id(headers)?;
    stock.sessions.remove(id).ok_or_else(unknown_session)?;
    let mut response = ok(&json!({ "ok": true }));
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("session_id=; Path=/; Max-Age=0"),
    );
    Ok(response)
}
