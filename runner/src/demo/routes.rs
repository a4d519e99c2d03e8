//! The route table: which endpoint a method and path name, and per-route request counters.

use std::sync::atomic::{AtomicU64, Ordering};

use http::Method;

use super::DemoStats;

macro_rules! endpoints {
    ($($variant:ident => $name:literal,)*) => {
        /// One endpoint of the demo server (a method and a path pattern).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Endpoint { $($variant,)* }

        impl Endpoint {
            /// Every endpoint, in counter order.
            const ALL: &'static [Endpoint] = &[$(Endpoint::$variant,)*];

            /// The name the endpoint's counter has in [`DemoStats::by_route`].
            pub fn name(self) -> &'static str {
                match self { $(Endpoint::$variant => $name,)* }
            }
        }
    };
}

endpoints! {
    Root => "GET /",
    Boards => "GET /boards",
    Login => "POST /api/login",
    StockSearch => "GET /api/stock/search",
    StockBuy => "POST /api/stock/buy",
    Logout => "POST /api/logout",
    AuthToken => "POST /auth/token",
    Dates => "GET /reservations/available/dates",
    Seats => "GET /reservations/available/seat",
    Reserve => "POST /reservations",
    PointsBalance => "GET /points/balance",
    PointsCharge => "POST /points/charge",
    Pay => "POST /reservations/pay",
    UserBalance => "GET /v1/users/{id}/balance",
    ChargeUserBalance => "POST /v1/users/{id}/balance",
    Orders => "POST /v1/orders",
    Product => "GET /v1/products/{id}",
    Concert => "GET /concerts/{id}",
    QueueToken => "POST /queue/token",
    Status => "ANY /status/{code}",
    Redirect => "GET /redirect/{n}",
    RedirectTo => "ANY /redirect-to",
    Get => "GET /get",
    Delay => "GET /delay/{ms}",
    Json => "GET /json",
    Anything => "ANY /anything",
    Headers => "GET /headers",
    Cookies => "GET /cookies",
    CookiesSet => "GET /cookies/set",
    Bytes => "GET /bytes/{n}",
    NotFound => "404",
    MethodNotAllowed => "405",
}

/// What a request's method and path resolve to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Match<'a> {
    /// A known endpoint, with its path parameter (`""` when it has none).
    Found(Endpoint, &'a str),
    /// A known path called with the wrong method; the value of the `Allow` header.
    NotAllowed(&'static str),
    /// An unknown path.
    NotFound,
}

/// Resolves a request to an endpoint. Allocation-free.
pub(crate) fn resolve<'a>(method: &Method, path: &'a str) -> Match<'a> {
    use Endpoint::*;
    let Some(rest) = path.strip_prefix('/') else {
        return Match::NotFound;
    };
    if rest == "anything" || rest.starts_with("anything/") {
        return Match::Found(Anything, "");
    }
    let mut segments = [""; 4];
    let mut count = 0;
    for segment in rest.split('/') {
        if count == segments.len() {
            return Match::NotFound;
        }
        segments[count] = segment;
        count += 1;
    }
    let get = |endpoint, param| only(method, &Method::GET, "GET", endpoint, param);
    let post = |endpoint, param| only(method, &Method::POST, "POST", endpoint, param);
    match segments[..count] {
        [""] => get(Root, ""),
        ["boards"] => get(Boards, ""),
        ["api", "login"] => post(Login, ""),
        ["api", "stock", "search"] => get(StockSearch, ""),
        ["api", "stock", "buy"] => post(StockBuy, ""),
        ["api", "logout"] => post(Logout, ""),
        ["auth", "token"] => post(AuthToken, ""),
        ["reservations", "available", "dates"] => get(Dates, ""),
        ["reservations", "available", "seat"] => get(Seats, ""),
        ["reservations"] => post(Reserve, ""),
        ["reservations", "pay"] => post(Pay, ""),
        ["points", "balance"] => get(PointsBalance, ""),
        ["points", "charge"] => post(PointsCharge, ""),
        ["v1", "users", id, "balance"] => match *method {
            Method::GET => Match::Found(UserBalance, id),
            Method::POST => Match::Found(ChargeUserBalance, id),
            _ => Match::NotAllowed("GET, POST"),
        },
        ["v1", "orders"] => post(Orders, ""),
        ["v1", "products", id] => get(Product, id),
        ["concerts", id] => get(Concert, id),
        ["queue", "token"] => post(QueueToken, ""),
        ["status", code] => Match::Found(Status, code),
        ["redirect", n] => get(Redirect, n),
        ["redirect-to"] => Match::Found(RedirectTo, ""),
        ["get"] => get(Get, ""),
        ["delay", ms] => get(Delay, ms),
        ["json"] => get(Json, ""),
        ["headers"] => get(Headers, ""),
        ["cookies"] => get(Cookies, ""),
        ["cookies", "set"] => get(CookiesSet, ""),
        ["bytes", n] => get(Bytes, n),
        _ => Match::NotFound,
    }
}

fn only<'a>(
    method: &Method,
    wanted: &Method,
    allow: &'static str,
    endpoint: Endpoint,
    param: &'a str,
) -> Match<'a> {
    if method == wanted {
        Match::Found(endpoint, param)
    } else {
        Match::NotAllowed(allow)
    }
}

/// Request and connection counters; lock-free (one relaxed atomic add per request).
#[derive(Debug)]
pub(crate) struct Stats {
    connections: AtomicU64,
    by_endpoint: Box<[AtomicU64]>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            connections: AtomicU64::new(0),
            by_endpoint: Endpoint::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Stats {
    /// Counts one request to `endpoint`.
    pub fn hit(&self, endpoint: Endpoint) {
        self.by_endpoint[endpoint as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one accepted connection.
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> DemoStats {
        let mut stats = DemoStats {
            connections: self.connections.load(Ordering::Relaxed),
            ..DemoStats::default()
        };
        for (&endpoint, counter) in Endpoint::ALL.iter().zip(self.by_endpoint.iter()) {
            let count = counter.load(Ordering::Relaxed);
            stats.requests += count;
            if count > 0 {
                stats.by_route.insert(endpoint.name(), count);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_and_methods() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(resolve(&get, "/"), Match::Found(Endpoint::Root, ""));
        assert_eq!(resolve(&post, "/"), Match::NotAllowed("GET"));
        assert_eq!(
            resolve(&post, "/v1/users/9338/balance"),
            Match::Found(Endpoint::ChargeUserBalance, "9338")
        );
        assert_eq!(
            resolve(&Method::DELETE, "/v1/users/9338/balance"),
            Match::NotAllowed("GET, POST")
        );
        assert_eq!(
            resolve(&Method::PUT, "/anything/a/b/c/d/e"),
            Match::Found(Endpoint::Anything, "")
        );
        assert_eq!(resolve(&get, "/boards/"), Match::NotFound);
        assert_eq!(resolve(&get, "/a/b/c/d/e"), Match::NotFound);
        assert_eq!(resolve(&get, "/anythingelse"), Match::NotFound);
    }

    #[test]
    fn endpoint_names_are_unique() {
        let mut names: Vec<_> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Endpoint::ALL.len());
    }
}
