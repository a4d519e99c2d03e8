//! Integration tests of the demo server over real HTTP on loopback: the README's API, the
//! httpbin helpers, the seat race, the per-user write lock and graceful shutdown.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use stampede_runner::demo::{DemoConfig, DemoServer};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The bound on every single await of these tests.
const LIMIT: Duration = Duration::from_secs(10);

async fn start(config: DemoConfig) -> DemoServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    timeout(LIMIT, DemoServer::start(addr, config))
        .await
        .expect("start in time")
        .expect("bind")
}

async fn start_default() -> DemoServer {
    start(DemoConfig::default()).await
}

/// A response, with the body read.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `error` field of a JSON error body.
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_string()
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = timeout(LIMIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (sender, connection) = timeout(LIMIT, http1::handshake(TokioIo::new(stream)))
            .await
            .expect("handshake in time")
            .expect("handshake");
        tokio::spawn(connection);
        Conn { sender }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "demo");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .expect("request");
        let exchange = async {
            let response = self.sender.send_request(request).await.expect("send");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        timeout(LIMIT, exchange).await.expect("response in time")
    }
}

/// One request on a fresh connection.
async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let body = body.map(|b| Bytes::from(b.to_string()));
    Conn::open(addr)
        .await
        .send(method, path, headers, body)
        .await
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    call(addr, Method::GET, path, headers, None).await
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
    call(addr, Method::POST, path, headers, Some(body)).await
}

async fn post_raw(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    Conn::open(addr)
        .await
        .send(
            Method::POST,
            path,
            headers,
            Some(Bytes::from(body.to_string())),
        )
        .await
}

async fn token(addr: SocketAddr, user: &str) -> String {
    let reply = post(
        addr,
        "/auth/token",
        &[],
        json!({"username": user, "password": "pw"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    format!("Bearer {}", reply.json()["token"].as_str().expect("token"))
}

async fn stop(server: DemoServer) {
    timeout(LIMIT, server.shutdown())
        .await
        .expect("shutdown in time");
}

#[tokio::test]
async fn plain_targets_and_routing() {
    let server = start_default().await;
    let addr = server.addr();
    assert_eq!(server.base_url(), format!("http://{addr}"));

    let mut conn = Conn::open(addr).await;
    let root = conn.send(Method::GET, "/", &[], None).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(&root.body[..], b"OK\n");
    assert!(root.header("content-type").starts_with("text/plain"));

    let boards = conn.send(Method::GET, "/boards", &[], None).await;
    assert_eq!(boards.status, StatusCode::OK);
    assert_eq!(boards.header("content-type"), "application/json");
    let boards = boards.json();
    let list = boards["boards"].as_array().expect("boards");
    assert_eq!(list.len(), 20);
    assert_eq!(
        list[0],
        json!({"id": 1, "title": "Board 1", "author": "user1", "createdAt": "2025-01-01T00:00:00Z"})
    );
    assert_eq!(list[19]["id"], 20);

    let missing = conn.send(Method::GET, "/nope", &[], None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.error().contains("/nope"));

    let wrong = conn.send(Method::DELETE, "/boards", &[], None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.header("allow"), "GET");
    let wrong = conn
        .send(Method::PUT, "/v1/users/1/balance", &[], None)
        .await;
    assert_eq!(wrong.header("allow"), "GET, POST");

    // All five requests went over one keep-alive connection.
    let stats = server.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.route("GET /"), 1);
    assert_eq!(stats.route("GET /boards"), 1);
    assert_eq!(stats.route("404"), 1);
    assert_eq!(stats.route("405"), 2);
    stop(server).await;
}

#[tokio::test]
async fn stock_trading_flow() {
    let server = start_default().await;
    let addr = server.addr();

    let login = post(
        addr,
        "/api/login",
        &[],
        json!({"username": "test_user", "password": "test_pass"}),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    let body = login.json();
    let session = body["session_id"].as_str().expect("session").to_string();
    assert_eq!(session.len(), 32);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(body["username"], "test_user");
    assert_eq!(body["cookies"]["session_id"], session.as_str());
    assert_eq!(
        login.header("set-cookie"),
        format!("session_id={session}; Path=/; HttpOnly")
    );
    let cookie = format!("session_id={session}");
    let with_session = [("cookie", cookie.as_str())];

    let search = get(addr, "/api/stock/search?query=Samsung", &with_session).await;
    assert_eq!(search.status, StatusCode::OK);
    assert_eq!(
        search.json(),
        json!({"query": "Samsung", "results": [{"stock_id": "005930", "name": "Samsung Electronics", "price": 71000}]})
    );
    let by_code = get(addr, "/api/stock/search?query=0006", &with_session).await;
    assert_eq!(by_code.json()["results"][0]["name"], "SK hynix");
    let none = get(addr, "/api/stock/search?query=zzz", &with_session).await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.json()["results"], json!([]));
    let no_query = get(addr, "/api/stock/search", &with_session).await;
    assert_eq!(no_query.status, StatusCode::BAD_REQUEST);
    assert!(no_query.error().contains("query"));

    let buy = post(
        addr,
        "/api/stock/buy",
        &with_session,
        json!({"stock_id": "005930", "quantity": 10}),
    )
    .await;
    assert_eq!(buy.status, StatusCode::OK);
    let order = buy.json();
    assert!(order["order_id"].is_string());
    assert_eq!(order["quantity"], 10);
    assert_eq!(order["price"], 71000);
    assert_eq!(order["total"], 710000);
    let unknown = post(
        addr,
        "/api/stock/buy",
        &with_session,
        json!({"stock_id": "999999", "quantity": 1}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let bad_quantity = post(
        addr,
        "/api/stock/buy",
        &with_session,
        json!({"stock_id": "005930", "quantity": 0}),
    )
    .await;
    assert_eq!(bad_quantity.status, StatusCode::BAD_REQUEST);
    assert!(bad_quantity.error().contains("quantity"));

    let no_session = get(addr, "/api/stock/search?query=Samsung", &[]).await;
    assert_eq!(no_session.status, StatusCode::UNAUTHORIZED);
    let buy_no_session = post(
        addr,
        "/api/stock/buy",
        &[],
        json!({"stock_id": "005930", "quantity": 1}),
    )
    .await;
    assert_eq!(buy_no_session.status, StatusCode::UNAUTHORIZED);

    let logout = call(addr, Method::POST, "/api/logout", &with_session, None).await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_eq!(logout.json(), json!({"ok": true}));
    assert_eq!(
        logout.header("set-cookie"),
        "session_id=; Path=/; Max-Age=0"
    );
    let after = get(addr, "/api/stock/search?query=Samsung", &with_session).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let again = call(addr, Method::POST, "/api/logout", &with_session, None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    stop(server).await;
}

#[tokio::test]
async fn reservation_and_payment_flow() {
    let server = start(DemoConfig {
        write_latency: Duration::ZERO,
        ..DemoConfig::default()
    })
    .await;
    let addr = server.addr();
    let auth = token(addr, "testuser").await;
    let again = token(addr, "testuser").await;
    assert_eq!(auth, again, "a user keeps its token");
    let headers = [("authorization", auth.as_str())];

    let dates = get(addr, "/reservations/available/dates", &headers).await;
    assert_eq!(dates.status, StatusCode::OK);
    let dates = dates.json()["dates"].clone();
    assert_eq!(dates.as_array().map(Vec::len), Some(7));
    assert_eq!(dates[0], json!({"date": "2025-06-01", "scheduleId": 12345}));
    assert_eq!(dates[6], json!({"date": "2025-06-07", "scheduleId": 12351}));

    let seats = get(
        addr,
        "/reservations/available/seat?scheduleId=12345&userId=testuser",
        &headers,
    )
    .await;
    assert_eq!(seats.status, StatusCode::OK);
    let seats = seats.json();
    assert_eq!(seats["scheduleId"], 12345);
    assert_eq!(seats["date"], "2025-06-01");
    assert_eq!(seats["seats"].as_array().map(Vec::len), Some(200));
    assert_eq!(seats["seats"][0], json!({"seatId": "A1", "price": 5000}));
    assert_eq!(seats["seats"][199]["seatId"], "J20");

    // Numbers may be decimal strings.
    let reserve = post(
        addr,
        "/reservations",
        &headers,
        json!({"scheduleId": "12345", "seatId": "B1", "userId": "testuser"}),
    )
    .await;
    assert_eq!(reserve.status, StatusCode::OK, "{reserve:?}");
    let reservation = reserve.json();
    assert_eq!(reservation["status"], "RESERVED");
    assert_eq!(reservation["scheduleId"], 12345);
    assert_eq!(reservation["seatId"], "B1");
    assert_eq!(reservation["userId"], "testuser");
    assert_eq!(reservation["price"], 5000);
    let id = reservation["reservationId"]
        .as_str()
        .expect("id")
        .to_string();

    let seats = get(
        addr,
        "/reservations/available/seat?scheduleId=12345",
        &headers,
    )
    .await
    .json();
    assert_eq!(seats["seats"].as_array().map(Vec::len), Some(199));
    assert!(!seats.to_string().contains("\"B1\""));

    let taken = post(
        addr,
        "/reservations",
        &headers,
        json!({"scheduleId": 12345, "seatId": "B1", "userId": "someone-else"}),
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(
        taken.json(),
        json!({"error": "seat already reserved", "seatId": "B1"})
    );

    let balance = get(addr, "/points/balance", &headers).await;
    assert_eq!(balance.json(), json!({"userId": "testuser", "balance": 0}));
    let pay_body = json!({"reservationId": id, "amount": 5000});
    let broke = post(addr, "/reservations/pay", &headers, pay_body.clone()).await;
    assert_eq!(broke.status, StatusCode::CONFLICT);
    assert_eq!(
        broke.json(),
        json!({"error": "insufficient balance", "balance": 0})
    );

    let charge = post(
        addr,
        "/points/charge",
        &headers,
        json!({"userId": "testuser", "amount": 10000}),
    )
    .await;
    assert_eq!(
        charge.json(),
        json!({"userId": "testuser", "balance": 10000})
    );
    let paid = post(addr, "/reservations/pay", &headers, pay_body.clone()).await;
    assert_eq!(paid.status, StatusCode::OK);
    assert_eq!(
        paid.json(),
        json!({"reservationId": id, "status": "PAID", "paid": 5000, "balance": 5000})
    );
    let twice = post(addr, "/reservations/pay", &headers, pay_body).await;
    assert_eq!(
        twice.json()["balance"],
        5000,
        "paying twice takes no points"
    );

    // The holder re-reserving gets its reservation back, now PAID.
    let mine = post(
        addr,
        "/reservations",
        &headers,
        json!({"scheduleId": 12345, "seatId": "B1"}),
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.json()["status"], "PAID");
    assert_eq!(mine.json()["reservationId"], id.as_str());

    // Errors.
    let wrong_amount = post(
        addr,
        "/reservations/pay",
        &headers,
        json!({"reservationId": id, "amount": 1}),
    )
    .await;
    assert_eq!(wrong_amount.status, StatusCode::BAD_REQUEST);
    assert!(wrong_amount.error().contains("amount"));
    let unknown = post(
        addr,
        "/reservations/pay",
        &headers,
        json!({"reservationId": "nope"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let no_token = get(addr, "/reservations/available/dates", &[]).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    let bad_token = get(
        addr,
        "/points/balance",
        &[("authorization", "Bearer not-a-token")],
    )
    .await;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
    let no_schedule = get(addr, "/reservations/available/seat", &headers).await;
    assert_eq!(no_schedule.status, StatusCode::BAD_REQUEST);
    assert!(no_schedule.error().contains("scheduleId"));
    let unknown_schedule = get(addr, "/reservations/available/seat?scheduleId=1", &headers).await;
    assert_eq!(unknown_schedule.status, StatusCode::NOT_FOUND);
    let unknown_seat = post(
        addr,
        "/reservations",
        &headers,
        json!({"scheduleId": 12345, "seatId": "Z99"}),
    )
    .await;
    assert_eq!(unknown_seat.status, StatusCode::BAD_REQUEST);
    assert!(unknown_seat.error().contains("seatId"));
    let missing_seat = post(
        addr,
        "/reservations",
        &headers,
        json!({"scheduleId": 12345}),
    )
    .await;
    assert_eq!(missing_seat.status, StatusCode::BAD_REQUEST);
    assert!(missing_seat.error().contains("seatId"));
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_of_one_seat_have_one_winner() {
    let server = start_default().await;
    let addr = server.addr();
    let auth = token(addr, "racer").await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move {
                post(
                    addr,
                    "/reservations",
                    &[("authorization", auth.as_str())],
                    json!({"scheduleId": "12345", "seatId": "A1", "userId": format!("testuser_{i}")}),
                )
                .await
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let reply = timeout(LIMIT, task).await.expect("in time").expect("task");
        match reply.status {
            StatusCode::OK => won.push(reply.json()),
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected status {other}: {reply:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one winner");
    assert_eq!(conflicts, 49);
    assert_eq!(won[0]["seatId"], "A1");
    assert!(won[0]["reservationId"].is_string());
    assert_eq!(server.stats().route("POST /reservations"), 50);
    stop(server).await;
}

/// Charges `users[i]` once each, all at the same time; returns how long they took together.
async fn concurrent_charges(addr: SocketAddr, users: &[u64]) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .map(|&user| {
            tokio::spawn(async move {
                post(
                    addr,
                    &format!("/v1/users/{user}/balance"),
                    &[],
                    json!({"amount": 1}),
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        let reply = timeout(LIMIT, task).await.expect("in time").expect("task");
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_to_one_user_queue_on_its_lock() {
    const N: u64 = 10;
    let latency = Duration::from_millis(25);
    let server = start(DemoConfig {
        write_latency: latency,
        ..DemoConfig::default()
    })
    .await;
    let addr = server.addr();

    let same_user = concurrent_charges(addr, &[7; N as usize]).await;
    let distinct: Vec<u64> = (100..100 + N).collect();
    let different_users = concurrent_charges(addr, &distinct).await;

    assert!(
        same_user >= latency * N as u32,
        "{N} charges of one user took {same_user:?}, want at least {:?}",
        latency * N as u32
    );
    assert!(
        different_users * 3 < same_user,
        "{N} charges of {N} users took {different_users:?}, one user's took {same_user:?}"
    );
    // No update was lost while they queued.
    let balance = get(addr, "/v1/users/7/balance", &[]).await.json();
    assert_eq!(
        balance,
        json!({"userId": 7, "balance": 1_000_000_000u64 + N})
    );
    stop(server).await;
}

#[tokio::test]
async fn ecommerce_api() {
    let server = start_default().await;
    let addr = server.addr();

    let balance = get(addr, "/v1/users/9338/balance", &[]).await;
    assert_eq!(
        balance.json(),
        json!({"userId": 9338, "balance": 1_000_000_000u64})
    );
    let charged = post(
        addr,
        "/v1/users/9338/balance",
        &[],
        json!({"amount": "5234"}),
    )
    .await;
    assert_eq!(charged.json()["balance"], 1_000_005_234u64);
    let bad_user = get(addr, "/v1/users/abc/balance", &[]).await;
    assert_eq!(bad_user.status, StatusCode::BAD_REQUEST);
    let zero_user = get(addr, "/v1/users/0/balance", &[]).await;
    assert_eq!(zero_user.status, StatusCode::BAD_REQUEST);
    let bad_amount = post(addr, "/v1/users/9338/balance", &[], json!({"amount": -5})).await;
    assert_eq!(bad_amount.status, StatusCode::BAD_REQUEST);
    assert!(bad_amount.error().contains("amount"));

    let order = post(
        addr,
        "/v1/orders",
        &[],
        json!({"userId": 9339, "totalAmount": 600, "products": [{"productId": 4, "quantity": 1}]}),
    )
    .await;
    assert_eq!(order.status, StatusCode::OK, "{order:?}");
    let order = order.json();
    assert!(order["orderId"].is_u64());
    assert_eq!(order["userId"], 9339);
    assert_eq!(order["totalAmount"], 600);
    assert_eq!(order["status"], "PAID");
    assert_eq!(order["balance"], 1_000_000_000u64 - 600);

    let wrong_total = post(
        addr,
        "/v1/orders",
        &[],
        json!({"userId": 9339, "totalAmount": 601, "products": [{"productId": 4, "quantity": 1}]}),
    )
    .await;
    assert_eq!(wrong_total.status, StatusCode::BAD_REQUEST);
    assert!(wrong_total.error().contains("totalAmount"));
    let unknown_product = post(
        addr,
        "/v1/orders",
        &[],
        json!({"userId": 9339, "totalAmount": 600, "products": [{"productId": 9, "quantity": 1}]}),
    )
    .await;
    assert_eq!(unknown_product.status, StatusCode::BAD_REQUEST);
    assert!(unknown_product.error().contains("products[0].productId"));
    let empty = post(
        addr,
        "/v1/orders",
        &[],
        json!({"userId": 9339, "totalAmount": 600, "products": []}),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.error().contains("products"));
    let broke = post(
        addr,
        "/v1/orders",
        &[],
        json!({"userId": 1, "totalAmount": 89000 * 20000, "products": [{"productId": 2, "quantity": 20000}]}),
    )
    .await;
    assert_eq!(broke.status, StatusCode::CONFLICT);
    assert_eq!(broke.json()["error"], "insufficient balance");

    let product = get(addr, "/v1/products/4", &[]).await;
    assert_eq!(
        product.json(),
        json!({"id": 4, "name": "Sticker pack", "price": 600})
    );
    assert_eq!(
        get(addr, "/v1/products/5", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(addr, "/v1/products/x", &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    stop(server).await;
}

#[tokio::test]
async fn concert_lookup_and_queue() {
    let server = start_default().await;
    let addr = server.addr();

    let concert = get(addr, "/concerts/1", &[]).await;
    assert_eq!(concert.status, StatusCode::OK);
    assert!(
        (4000..=5500).contains(&concert.body.len()),
        "body is {} bytes",
        concert.body.len()
    );
    let concert = concert.json();
    assert_eq!(concert["concertId"], 1);
    assert_eq!(concert["title"], "DevConcert 2025");
    assert_eq!(concert["venue"], "Seoul");
    let schedules = concert["schedules"].as_array().expect("schedules");
    assert_eq!(schedules.len(), 2);
    assert_eq!(schedules[0]["scheduleId"], 101);
    assert_eq!(schedules[1]["scheduleId"], 102);
    assert_eq!(schedules[0]["seats"].as_array().map(Vec::len), Some(50));
    assert_eq!(
        schedules[0]["seats"][0],
        json!({"seatNo": 1, "price": 50000, "status": "AVAILABLE"})
    );
    assert_eq!(
        get(addr, "/concerts/3", &[]).await.json()["schedules"][0]["scheduleId"],
        301
    );
    assert_eq!(
        get(addr, "/concerts/4", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(addr, "/concerts/one", &[]).await.status,
        StatusCode::BAD_REQUEST
    );

    let first = post(
        addr,
        "/queue/token",
        &[],
        json!({"userId": "alice", "concertId": 1}),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    assert_eq!(first["position"], 1);
    assert_eq!(first["status"], "ACTIVE");
    assert_eq!(first["userId"], "alice");
    assert_eq!(first["concertId"], 1);
    assert_eq!(first["token"].as_str().map(str::len), Some(36));
    let second = post(addr, "/queue/token", &[], json!({"userId": 42})).await;
    assert_eq!(second.json()["position"], 2);
    assert_eq!(second.json()["userId"], "42");
    let again = post(addr, "/queue/token", &[], json!({"userId": "alice"})).await;
    assert_eq!(again.json()["token"], first["token"]);
    assert_eq!(again.json()["position"], 1);
    let other_concert = post(
        addr,
        "/queue/token",
        &[],
        json!({"userId": "alice", "concertId": "2"}),
    )
    .await;
    assert_eq!(other_concert.json()["position"], 1);
    let missing = post(addr, "/queue/token", &[], json!({"concertId": 1})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.error().contains("userId"));
    let unknown = post(
        addr,
        "/queue/token",
        &[],
        json!({"userId": "bob", "concertId": 9}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    stop(server).await;
}

#[tokio::test]
async fn queue_positions_beyond_the_active_size_wait() {
    let server = start(DemoConfig {
        active_queue_size: 2,
        ..DemoConfig::default()
    })
    .await;
    let addr = server.addr();
    let mut statuses = Vec::new();
    for user in ["a", "b", "c"] {
        let reply = post(addr, "/queue/token", &[], json!({"userId": user})).await;
        statuses.push(reply.json()["status"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(statuses, ["ACTIVE", "ACTIVE", "WAITING"]);
    stop(server).await;
}

#[tokio::test]
async fn malformed_input_is_a_400_naming_the_field() {
    let server = start_default().await;
    let addr = server.addr();

    let broken = post_raw(addr, "/api/login", &[], r#"{"username": "a", "pass"#).await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert!(broken.error().contains("not valid JSON"), "{broken:?}");
    let not_object = post_raw(addr, "/auth/token", &[], "[1, 2]").await;
    assert_eq!(not_object.status, StatusCode::BAD_REQUEST);
    let empty = post_raw(addr, "/v1/orders", &[], "").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);

    let no_password = post(addr, "/api/login", &[], json!({"username": "a"})).await;
    assert_eq!(no_password.status, StatusCode::BAD_REQUEST);
    assert!(no_password.error().contains("password"));
    let empty_user = post(
        addr,
        "/auth/token",
        &[],
        json!({"username": "", "password": "x"}),
    )
    .await;
    assert_eq!(empty_user.status, StatusCode::BAD_REQUEST);
    assert!(empty_user.error().contains("username"));
    let bad_amount = post(addr, "/v1/users/1/balance", &[], json!({"amount": "lots"})).await;
    assert_eq!(bad_amount.status, StatusCode::BAD_REQUEST);
    assert!(bad_amount.error().contains("amount"));
    let auth = token(addr, "u").await;
    let bad_quantity = post(
        addr,
        "/v1/orders",
        &[],
        json!({"userId": 1, "totalAmount": 600, "products": [{"productId": 4, "quantity": 1.5}]}),
    )
    .await;
    assert!(bad_quantity.error().contains("products[0].quantity"));
    let charge = post_raw(
        addr,
        "/points/charge",
        &[("authorization", auth.as_str())],
        "{",
    )
    .await;
    assert_eq!(charge.status, StatusCode::BAD_REQUEST);
    // Bodies are parsed as JSON whatever the Content-Type says.
    let text_typed = post_raw(
        addr,
        "/points/charge",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "text/plain"),
        ],
        r#"{"amount": 7}"#,
    )
    .await;
    assert_eq!(text_typed.json()["balance"], 7);
    stop(server).await;
}

#[tokio::test]
async fn httpbin_helpers() {
    let server = start_default().await;
    let addr = server.addr();

    let teapot = get(addr, "/status/418", &[]).await;
    assert_eq!(teapot.status, StatusCode::IM_A_TEAPOT);
    let created = call(addr, Method::POST, "/status/201", &[], None).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let moved = get(addr, "/status/301", &[]).await;
    assert_eq!(moved.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(moved.header("location"), "/get");
    assert_eq!(
        get(addr, "/status/99", &[]).await.status,
        StatusCode::BAD_REQUEST
    );

    // Follow /redirect/3 by hand, on one connection.
    let mut conn = Conn::open(addr).await;
    let mut path = "/redirect/3".to_string();
    let mut hops = 0;
    let landed = loop {
        let reply = conn.send(Method::GET, &path, &[], None).await;
        if !reply.status.is_redirection() {
            break reply;
        }
        hops += 1;
        assert!(hops <= 10, "redirect loop");
        path = reply.header("location").to_string();
    };
    assert_eq!(hops, 3);
    assert_eq!(path, "/get");
    assert_eq!(landed.status, StatusCode::OK);
    assert_eq!(landed.json()["url"], "/get");

    // /redirect-to sends clients to a path or a loopback URL only.
    let to_path = get(addr, "/redirect-to?url=/get&status_code=307", &[]).await;
    assert_eq!(to_path.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(to_path.header("location"), "/get");
    let to_loopback = get(addr, "/redirect-to?url=http://127.0.0.2:9/headers", &[]).await;
    assert_eq!(to_loopback.status, StatusCode::FOUND);
    assert_eq!(to_loopback.header("location"), "http://127.0.0.2:9/headers");
    for refused in [
        "/redirect-to?url=http://169.254.169.254/",
        "/redirect-to?url=http://example.test/",
        "/redirect-to?url=/get&status_code=200",
        "/redirect-to",
    ] {
        assert_eq!(
            get(addr, refused, &[]).await.status,
            StatusCode::BAD_REQUEST,
            "{refused}"
        );
    }

    let echoed = get(addr, "/get?a=1&b=x%20y&a=2", &[("x-test", "yes")]).await;
    let echoed = echoed.json();
    assert_eq!(echoed["args"], json!({"a": ["1", "2"], "b": "x y"}));
    assert_eq!(echoed["headers"]["x-test"], "yes");

    let started = Instant::now();
    let delayed = get(addr, "/delay/50", &[]).await;
    assert_eq!(delayed.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(delayed.json()["delayMs"], 50);

    let document = get(addr, "/json", &[]).await;
    assert_eq!(document.json()["slideshow"]["title"], "Sample Slide Show");

    let bytes = get(addr, "/bytes/1000", &[]).await;
    assert_eq!(bytes.status, StatusCode::OK);
    assert_eq!(bytes.body.len(), 1000);
    assert_eq!(bytes.header("content-type"), "application/octet-stream");
    assert!(bytes.body.iter().any(|&b| b != 0));
    assert_eq!(get(addr, "/bytes/0", &[]).await.body.len(), 0);

    let anything = call(
        addr,
        Method::PUT,
        "/anything/x?q=1",
        &[("x-echo", "1")],
        Some(json!({"hello": "world"})),
    )
    .await;
    assert_eq!(anything.status, StatusCode::OK);
    let anything = anything.json();
    assert_eq!(anything["method"], "PUT");
    assert_eq!(anything["path"], "/anything/x");
    assert_eq!(anything["query"], "q=1");
    assert_eq!(anything["args"]["q"], "1");
    assert_eq!(anything["headers"]["x-echo"], "1");
    assert_eq!(anything["json"], json!({"hello": "world"}));
    assert_eq!(anything["data"], r#"{"hello":"world"}"#);

    let headers = get(addr, "/headers", &[("x-custom", "abc")]).await;
    assert_eq!(headers.json()["headers"]["x-custom"], "abc");

    let set = get(
        addr,
        "/cookies/set?flavor=choc&size=big",
        &[("cookie", "old=1")],
    )
    .await;
    assert_eq!(set.status, StatusCode::OK);
    let set_cookies: Vec<_> = set
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(set_cookies, ["flavor=choc; Path=/", "size=big; Path=/"]);
    assert_eq!(
        set.json()["cookies"],
        json!({"old": "1", "flavor": "choc", "size": "big"})
    );
    // Send back what was set, as a client's cookie jar would.
    let jar: Vec<_> = set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .collect();
    let cookies = get(addr, "/cookies", &[("cookie", &jar.join("; "))]).await;
    assert_eq!(
        cookies.json(),
        json!({"cookies": {"flavor": "choc", "size": "big"}})
    );
    stop(server).await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let server = start(DemoConfig {
        max_body_bytes: 1024,
        ..DemoConfig::default()
    })
    .await;
    let big = "x".repeat(4096);
    let reply = post_raw(server.addr(), "/anything", &[], &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    stop(server).await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_the_port() {
    let server = start_default().await;
    let addr = server.addr();
    let mut idle = Conn::open(addr).await;
    assert_eq!(
        idle.send(Method::GET, "/", &[], None).await.status,
        StatusCode::OK
    );

    let started = Instant::now();
    stop(server).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "an idle keep-alive connection must not hold shutdown up"
    );
    let refused = timeout(LIMIT, TcpStream::connect(addr))
        .await
        .expect("connect attempt in time");
    assert!(refused.is_err(), "the port still accepts connections");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let server = start_default().await;
    let addr = server.addr();
    let slow = tokio::spawn(async move { get(addr, "/delay/300", &[]).await });
    // Wait until the request is being served.
    let deadline = Instant::now() + LIMIT;
    while server.stats().route("GET /delay/{ms}") == 0 {
        assert!(Instant::now() < deadline, "request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop(server).await;
    let reply = timeout(LIMIT, slow).await.expect("in time").expect("task");
    assert_eq!(reply.status, StatusCode::OK);
}
