//! The e-commerce API of seed 003: user balances, orders and product lookups.
//!
//! A balance read or charge holds the user's async lock for the configured write latency; an
//! order holds the locks of its products (taken in id order, so orders never deadlock) for
//! that latency, then debits the user. Product lookups serve precomputed bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::input::{self, parse_int, parse_positive, positive_value, required_positive};
use super::respond::{HandlerResult, Reject, bad_request, json_bytes, not_found, ok, reject};
use super::state::{Sharded, simulate_write};

/// The products: id, name, price.
const PRODUCTS: [(u64, &str, u64); 4] = [
    (1, "T-shirt", 15000),
    (2, "Sneakers", 89000),
    (3, "Backpack", 39000),
    (4, "Sticker pack", 600),
];

/// The balance of a user on first use.
const START_BALANCE: u64 = 1_000_000_000;

/// Balances, product locks and precomputed product bodies.
#[derive(Debug)]
pub(crate) struct Shop {
    wallets: Sharded<u64, Arc<Mutex<u64>>>,
    product_locks: Box<[Mutex<()>]>,
    product_bodies: Box<[Bytes]>,
    next_order: AtomicU64,
}

impl Shop {
    pub fn new() -> Self {
        Shop {
            wallets: Sharded::default(),
            product_locks: PRODUCTS.iter().map(|_| Mutex::new(())).collect(),
            product_bodies: PRODUCTS
                .iter()
                .map(|(id, name, price)| {
                    Bytes::from(json!({"id": id, "name": name, "price": price}).to_string())
                })
                .collect(),
            next_order: AtomicU64::new(0),
        }
    }

    /// The balance cell of user `id`, created with [`START_BALANCE`] on first use.
    fn wallet(&self, id: u64) -> Arc<Mutex<u64>> {
        self.wallets.with(&id, |wallets| {
            Arc::clone(
                wallets
                    .entry(id)
                    .or_insert_with(|| Arc::new(Mutex::new(START_BALANCE))),
            )
        })
    }
}

/// The index into [`PRODUCTS`] of product `id`.
fn product_index(id: u64) -> Option<usize> {
    PRODUCTS.iter().position(|(pid, _, _)| *pid == id)
}

fn user_id(param: &str) -> Result<u64, Reject> {
    parse_positive(param).ok_or_else(|| {
        bad_request(&format!(
            "user id must be a positive integer, got `{param}`"
        ))
    })
}

/// `GET /v1/users/{id}/balance`.
pub(crate) async fn balance(shop: &Shop, param: &str, latency: Duration) -> HandlerResult {
    let id = user_id(param)?;
    let wallet = shop.wallet(id);
    let balance = wallet.lock().await;
    simulate_write(latency).await;
    Ok(ok(&json!({"userId": id, "balance": *balance})))
}

/// `POST /v1/users/{id}/balance`: adds `amount`.
pub(crate) async fn charge(
    shop: &Shop,
    param: &str,
    body: &[u8],
    latency: Duration,
) -> HandlerResult {
    let id = user_id(param)?;
    let body = input::object(body)?;
    let amount = required_positive(&body, "amount")?;
    let wallet = shop.wallet(id);
    let mut balance = wallet.lock().await;
    simulate_write(latency).await;
    *balance = balance
        .checked_add(amount)
        .ok_or_else(|| bad_request("field `amount` would overflow the balance"))?;
    Ok(ok(&json!({"userId": id, "balance": *balance})))
}

/// `POST /v1/orders`.
pub(crate) async fn order(shop: &Shop, body: &[u8], latency: Duration) -> HandlerResult {
    let body = input::object(body)?;
    let user = required_positive(&body, "userId")?;
    let total = required_positive(&body, "totalAmount")?;
    let items = match body.get("products") {
        None | Some(Value::Null) => return Err(bad_request("missing field `products`")),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => return Err(bad_request("field `products` must be a non-empty array")),
    };
    let mut sum: u64 = 0;
    let mut locked = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| format!("products[{i}].{name}");
        let product = item
            .get("productId")
            .filter(|v| !v.is_null())
            .ok_or_else(|| bad_request(&format!("missing field `{}`", field("productId"))))?;
        let product = positive_value(product, &field("productId"))?;
        let index = product_index(product).ok_or_else(|| {
            bad_request(&format!(
                "field `{}`: unknown product {product}",
                field("productId")
            ))
        })?;
        let quantity = item
            .get("quantity")
            .filter(|v| !v.is_null())
            .ok_or_else(|| bad_request(&format!("missing field `{}`", field("quantity"))))?;
        let quantity = positive_value(quantity, &field("quantity"))?;
        sum = PRODUCTS[index]
            .2
            .checked_mul(quantity)
            .and_then(|cost| sum.checked_add(cost))
            .ok_or_else(|| bad_request(&format!("field `{}` is too large", field("quantity"))))?;
        locked.push(index);
    }
    if sum != total {
        return Err(bad_request(&format!(
            "field `totalAmount` is {total}, but the products cost {sum}"
        )));
    }
    locked.sort_unstable();
    locked.dedup();
    let mut guards = Vec::with_capacity(locked.len());
    for &index in &locked {
        guards.push(shop.product_locks[index].lock().await);
    }
    simulate_write(latency).await;
    let wallet = shop.wallet(user);
    let mut balance = wallet.lock().await;
    if *balance < total {
        return Err(reject(
            StatusCode::CONFLICT,
            &json!({"error": "insufficient balance", "balance": *balance}),
        ));
    }
    *balance -= total;
    let order = shop.next_order.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(ok(&json!({
        "orderId": order,
        "userId": user,
        "totalAmount": total,
        "status": "PAID",
        "balance": *balance,
    })))
}

/// `GET /v1/products/{id}`.
pub(crate) fn product(shop: &Shop, param: &str) -> HandlerResult {
    let id = parse_int(param)
        .ok_or_else(|| bad_request(&format!("product id must be an integer, got `{param}`")))?;
    let index = u64::try_from(id)
        .ok()
        .and_then(product_index)
        .ok_or_else(|| not_found(&format!("unknown product {id}")))?;
    Ok(json_bytes(
        StatusCode::OK,
        shop.product_bodies[index].clone(),
    ))
}
