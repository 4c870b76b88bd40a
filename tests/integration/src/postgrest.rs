//! A local double of Supabase's REST API (PostgREST), enough of it for a history source:
//! `GET /rest/v1/{table}` with `select=`, column filters (`eq`, `neq`, `gt`, `gte`, `lt`,
//! `lte`, `is`, `in`, `like`), `order=` and `limit=`/`offset=`, answering with PostgREST's
//! status codes and error bodies (`{"code","message","details","hint"}`).
//!
//! Tables hold `serde_json::Value` objects set from the test. Every request is recorded
//! (path, raw query, the auth headers) for assertions; faults are injected on demand
//! (fail the next N requests, or delay every answer). Runs on its own thread with its own
//! tokio runtime, like the fake YouTube, so any test can use it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The key the tests give the double and the client; asserted never to leak.
pub const TEST_SERVICE_KEY: &str = "sb-service-role-TEST-secret-0123456789abcdef";

/// One request as the double received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw (still percent-encoded) query string.
    pub query: String,
    pub apikey: Option<String>,
    pub authorization: Option<String>,
    pub accept: Option<String>,
}

impl RecordedRequest {
    /// The decoded query pairs, in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        decode_query(&self.query)
    }

    /// The decoded value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        self.pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Known columns, in creation order; a select or filter on any other is a 400.
    columns: Vec<String>,
    rows: Vec<Map<String, Value>>,
}

#[derive(Debug, Default)]
struct Inner {
    tables: BTreeMap<String, Table>,
    requests: Vec<RecordedRequest>,
    /// Statuses to answer the next requests with, before anything else.
    failures: VecDeque<u16>,
    delay: Option<Duration>,
}

type Shared = Arc<(String, Mutex<Inner>)>;

/// The running double. Dropping it stops the server.
pub struct PostgrestDouble {
    addr: SocketAddr,
    state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl PostgrestDouble {
    /// Starts on `127.0.0.1:0`, requiring `apikey: {service_key}`.
    pub fn spawn(service_key: &str) -> Self {
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("bind the PostgREST double");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("double's address");
        let state: Shared = Arc::new((service_key.to_owned(), Mutex::new(Inner::default())));
        let app = Router::new()
            .route("/rest/v1/{table}", axum::routing::get(select_rows))
            .fallback(not_found)
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("postgrest-double".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("double's runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
                // Requests still sleeping in an injected delay are abandoned.
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("spawn the PostgREST double's thread");
        Self {
            addr,
            state,
            stop: Some(stop),
        }
    }

    /// What `SUPABASE_URL` should be (`/rest/v1` is added by the client).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.1.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates (or empties) `table` with exactly these columns.
    pub fn create_table(&self, table: &str, columns: &[&str]) {
        self.inner().tables.insert(
            table.to_owned(),
            Table {
                columns: columns.iter().map(|c| c.to_string()).collect(),
                rows: Vec::new(),
            },
        );
    }

    /// Appends rows (JSON objects) to `table`, creating it and any new column on the way;
    /// rows lacking a column hold `null` there.
    pub fn insert(&self, table: &str, rows: impl IntoIterator<Item = Value>) {
        let mut inner = self.inner();
        let table = inner.tables.entry(table.to_owned()).or_default();
        for row in rows {
            let Value::Object(row) = row else {
                panic!("PostgREST double rows must be JSON objects, got {row}");
            };
            for column in row.keys() {
                if !table.columns.contains(column) {
                    table.columns.push(column.clone());
                }
            }
            table.rows.push(row);
        }
    }

    /// Drops every row and table.
    pub fn clear(&self) {
        self.inner().tables.clear();
    }

    /// Answers the next `n` requests with `status` and a PostgREST-shaped error body.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.inner().failures.extend(std::iter::repeat_n(status, n));
    }

    /// Sleeps this long before answering every request (`None`: answer at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.inner().delay = delay;
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.inner().requests.clear();
    }
}

impl Drop for PostgrestDouble {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({
            "code": code,
            "details": null,
            "hint": null,
            "message": message.into(),
        })),
    )
        .into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Records the request, then applies injected delay and failures and the key check.
/// `Err` is the response to give instead of serving.
async fn admit(
    state: &Shared,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Response> {
    let recorded = RecordedRequest {
        method: method.to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        apikey: header(headers, "apikey"),
        authorization: header(headers, "authorization"),
        accept: header(headers, "accept"),
    };
    let (delay, failure) = {
        let mut inner = state.1.lock().unwrap_or_else(|p| p.into_inner());
        inner.requests.push(recorded.clone());
        (inner.delay, inner.failures.pop_front())
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(error(
            status,
            "XX000",
            "injected failure: the database is unavailable",
        ));
    }
    let key = &state.0;
    if recorded.apikey.as_deref() != Some(key.as_str()) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "PGRST301",
            "Invalid API key: the apikey header is missing or wrong",
        ));
    }
    if let Some(auth) = &recorded.authorization
        && auth.strip_prefix("Bearer ") != Some(key.as_str())
    {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "PGRST301",
            "JWSError: the Authorization bearer token is not valid",
        ));
    }
    Ok(())
}

async fn not_found(State(state): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(response) = admit(&state, "GET", &uri, &headers).await {
        return response;
    }
    error(
        StatusCode::NOT_FOUND,
        "PGRST000",
        format!("no route for {}", uri.path()),
    )
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
pub fn decode_query(raw: &str) -> Vec<(String, String)> {
    fn decode(part: &str) -> String {
        let bytes = part.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

#[derive(Debug)]
enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Is,
    In,
    Like,
}

struct Filter {
    column: String,
    negated: bool,
    op: Op,
    value: String,
}

struct OrderTerm {
    column: String,
    descending: bool,
    nulls_first: bool,
}

fn parse_filter(column: &str, raw: &str) -> Option<Filter> {
    let (negated, rest) = match raw.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (op, value) = rest.split_once('.')?;
    let op = match op {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "is" => Op::Is,
        "in" => Op::In,
        "like" => Op::Like,
        _ => return None,
    };
    Some(Filter {
        column: column.to_owned(),
        negated,
        op,
        value: value.to_owned(),
    })
}

fn parse_order(raw: &str) -> Option<Vec<OrderTerm>> {
    raw.split(',')
        .map(|term| {
            let mut parts = term.split('.');
            let column = parts.next().filter(|c| !c.is_empty())?.to_owned();
            let mut descending = false;
            let mut nulls: Option<bool> = None;
            for modifier in parts {
                match modifier {
                    "asc" => descending = false,
                    "desc" => descending = true,
                    "nullsfirst" => nulls = Some(true),
                    "nullslast" => nulls = Some(false),
                    _ => return None,
                }
            }
            // Postgres' defaults: ASC NULLS LAST, DESC NULLS FIRST.
            Some(OrderTerm {
                column,
                descending,
                nulls_first: nulls.unwrap_or(descending),
            })
        })
        .collect()
}

/// A timestamp in RFC 3339 or Postgres' text form, for comparing `timestamptz` cells.
fn as_timestamp(text: &str) -> Option<jiff::Timestamp> {
    let mut t = text.trim().replacen(' ', "T", 1);
    if let Some(sign) = t.len().checked_sub(3).filter(|&i| i > 10)
        && matches!(t.as_bytes()[sign], b'+' | b'-')
        && t[sign + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        t.push_str(":00");
    }
    t.parse().ok()
}

/// Compares a cell with a filter's text, the way Postgres would compare the column's type.
fn compare_text(cell: &Value, text: &str) -> Option<Ordering> {
    match cell {
        Value::Null => None,
        Value::Number(n) => n.as_f64()?.partial_cmp(&text.parse::<f64>().ok()?),
        Value::Bool(b) => Some(b.cmp(&text.parse::<bool>().ok()?)),
        Value::String(s) => match (as_timestamp(s), as_timestamp(text)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(s.as_str().cmp(text)),
        },
        other => Some(other.to_string().as_str().cmp(text)),
    }
}

/// Orders two non-null cells of one column.
fn compare_cells(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => match (as_timestamp(x), as_timestamp(y)) {
            (Some(p), Some(q)) => p.cmp(&q),
            _ => x.cmp(y),
        },
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn like(pattern: &str, text: &str) -> bool {
    // PostgREST lets `*` stand for `%` in URLs.
    let pattern: Vec<char> = pattern.replace('*', "%").chars().collect();
    let text: Vec<char> = text.chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('_') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&pattern, &text)
}

fn matches(filter: &Filter, row: &Map<String, Value>) -> bool {
    let cell = row.get(&filter.column).unwrap_or(&Value::Null);
    let hit = match filter.op {
        Op::Is => match filter.value.as_str() {
            "null" => cell.is_null(),
            "true" => cell == &Value::Bool(true),
            "false" => cell == &Value::Bool(false),
            _ => false,
        },
        Op::In => {
            let list = filter
                .value
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .map(|v| v.trim().trim_matches('"'));
            list.into_iter()
                .any(|v| compare_text(cell, v) == Some(Ordering::Equal))
        }
        Op::Like => cell.as_str().is_some_and(|s| like(&filter.value, s)),
        _ => match compare_text(cell, &filter.value) {
            // SQL: any comparison with NULL is not true.
            None => false,
            Some(ord) => match filter.op {
                Op::Eq => ord == Ordering::Equal,
                Op::Neq => ord != Ordering::Equal,
                Op::Gt => ord == Ordering::Greater,
                Op::Gte => ord != Ordering::Less,
                Op::Lt => ord == Ordering::Less,
                Op::Lte => ord != Ordering::Greater,
                _ => unreachable!(),
            },
        },
    };
    hit != filter.negated
}

async fn select_rows(
    State(state): State<Shared>,
    Path(table_name): Path<String>,
    RawQuery(raw_query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&state, "GET", &uri, &headers).await {
        return response;
    }
    let pairs = decode_query(raw_query.as_deref().unwrap_or_default());
    let inner = state.1.lock().unwrap_or_else(|p| p.into_inner());
    let Some(table) = inner.tables.get(&table_name) else {
        return error(
            StatusCode::NOT_FOUND,
            "42P01",
            format!("relation \"public.{table_name}\" does not exist"),
        );
    };
    let unknown_column = |column: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "42703",
            format!("column {table_name}.{column} does not exist"),
        )
    };
    let bad_request = |what: String| error(StatusCode::BAD_REQUEST, "PGRST100", what);

    let mut select: Option<Vec<String>> = None;
    let mut filters = Vec::new();
    let mut order = Vec::new();
    let mut limit: Option<usize> = None;
    let mut offset = 0usize;
    for (key, value) in &pairs {
        match key.as_str() {
            "select" => {
                let columns: Vec<String> = value
                    .split(',')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty())
                    .collect();
                if columns.iter().any(|c| c == "*") {
                    select = None;
                } else {
                    select = Some(columns);
                }
            }
            "order" => match parse_order(value) {
                Some(terms) => order = terms,
                None => return bad_request(format!("\"failed to parse order ({value})\"")),
            },
            "limit" => match value.parse() {
                Ok(n) => limit = Some(n),
                Err(_) => return bad_request(format!("\"failed to parse limit ({value})\"")),
            },
            "offset" => match value.parse() {
                Ok(n) => offset = n,
                Err(_) => return bad_request(format!("\"failed to parse offset ({value})\"")),
            },
            column => match parse_filter(column, value) {
                Some(filter) => filters.push(filter),
                None => return bad_request(format!("\"failed to parse filter ({value})\"")),
            },
        }
    }
    let known = |c: &str| table.columns.iter().any(|k| k == c);
    for column in select
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(filters.iter().map(|f| f.column.as_str()))
        .chain(order.iter().map(|o| o.column.as_str()))
    {
        if !known(column) {
            return unknown_column(column);
        }
    }

    let mut rows: Vec<&Map<String, Value>> = table
        .rows
        .iter()
        .filter(|row| filters.iter().all(|f| matches(f, row)))
        .collect();
    rows.sort_by(|a, b| {
        for term in &order {
            let x = a.get(&term.column).unwrap_or(&Value::Null);
            let y = b.get(&term.column).unwrap_or(&Value::Null);
            let ord = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) if term.nulls_first => Ordering::Less,
                (true, false) => Ordering::Greater,
                (false, true) if term.nulls_first => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) if term.descending => compare_cells(y, x),
                (false, false) => compare_cells(x, y),
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    let columns: Vec<String> = select.unwrap_or_else(|| table.columns.clone());
    let out: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|row| {
            Value::Object(
                columns
                    .iter()
                    .map(|c| (c.clone(), row.get(c).cloned().unwrap_or(Value::Null)))
                    .collect(),
            )
        })
        .collect();
    (StatusCode::OK, axum::Json(Value::Array(out))).into_response()
}
