//! Debian's headless Chromium for the tests of pages people look at: the page's DOM after its
//! scripts ran, a screenshot, and the checks every HTML report must pass there.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The charts every report draws.
pub const CHARTS: [&str; 5] = ["load", "latency", "errors", "saturation", "distribution"];

/// A report is one file, and stays small enough to mail.
pub const MAX_REPORT_BYTES: usize = 1 << 20;

pub fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.exists(),
        "Debian's chromium is needed to open the report (bash .ci/deps installs it)"
    );
    path
}

/// Chromium's flags for a page at `url`, run as root in a container.
pub fn browser_at(url: &str) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1100,2600",
        // Scripts run to completion before the page is read.
        "--virtual-time-budget=5000",
    ]);
    command.arg(url);
    command
}

/// Chromium's flags for a page opened from a file.
pub fn browser(page: &Path) -> Command {
    browser_at(&format!("file://{}", page.display()))
}

/// The DOM of the page at `url` after its scripts ran.
pub fn rendered_dom_at(url: &str) -> String {
    let output = browser_at(url)
        .arg("--dump-dom")
        .output()
        .expect("run chromium");
    assert!(output.status.success(), "chromium: {output:?}");
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// The page's DOM after its scripts ran.
pub fn rendered_dom(page: &Path) -> String {
    rendered_dom_at(&format!("file://{}", page.display()))
}

/// Reads server-sent events from `reader` until one named `name`; returns its data as JSON.
pub fn next_event(reader: &mut impl std::io::BufRead, name: &str) -> Value {
    let mut event = String::new();
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).expect("read the event stream");
        assert!(read > 0, "the event stream ended before a {name:?} event");
        let line = line.trim_end();
        if let Some(kind) = line.strip_prefix("event: ") {
            event = kind.to_string();
        } else if let Some(data) = line.strip_prefix("data: ")
            && event == name
        {
            return serde_json::from_str(data).expect("an event's data is JSON");
        }
    }
}

/// Opens the event stream at `path` on `addr` (HTTP/1.1; each event is one chunk).
pub fn open_events(addr: &str, path: &str) -> std::io::BufReader<std::net::TcpStream> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the dashboard");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("a read timeout");
    // Closed after the response, so the end of the stream is the end of the connection.
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    std::io::BufReader::new(stream)
}

/// A screenshot next to the page (PNG), for a person to look at; copied as `report-NAME.png`
/// into `$STAMPEDE_REPORT_SCREENSHOTS` when set (`docs/` keeps the README's).
pub fn screenshot(page: &Path) -> PathBuf {
    let png = page.with_extension("png");
    let output = browser(page)
        .arg(format!("--screenshot={}", png.display()))
        .output()
        .expect("run chromium");
    assert!(output.status.success(), "chromium: {output:?}");
    assert!(png.metadata().map(|m| m.len()).unwrap_or(0) > 10_000);
    if let Some(dir) = std::env::var_os("STAMPEDE_REPORT_SCREENSHOTS") {
        let name = format!("report-{}", png.file_name().unwrap().to_string_lossy());
        std::fs::copy(&png, Path::new(&dir).join(name)).expect("copy the screenshot");
    }
    png
}

/// The opening tag of each chart's figure in the rendered DOM.
fn figure_tag<'a>(dom: &'a str, chart: &str) -> &'a str {
    let id = format!("id=\"chart-{chart}\"");
    let at = dom.find(&id).unwrap_or_else(|| panic!("no figure {chart}"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(tag[at..at + tag[at..].find('"')?].to_string())
}

/// Checks what every report must show once its scripts ran, and returns the embedded data.
pub fn assert_renders(page: &Path) -> Value {
    let html = std::fs::read_to_string(page).expect("read the report");
    assert!(html.len() < MAX_REPORT_BYTES, "{} bytes", html.len());
    // Self-contained: a policy that forbids every fetch, and nothing to fetch.
    assert!(html.contains("content=\"default-src 'none';"));
    for outside in [" src=", "<link", "@import", "url(http"] {
        assert!(
            !html.contains(outside),
            "the page refers outside: {outside}"
        );
    }
    let dom = rendered_dom(page);
    assert!(
        dom.contains("data-charts=\"done\""),
        "charts did not finish"
    );
    assert!(!dom.contains("data-errors="), "script errors: {dom}");
    for chart in CHARTS {
        let tag = figure_tag(&dom, chart);
        assert_eq!(
            attribute(tag, "data-rendered").as_deref(),
            Some("true"),
            "{tag}"
        );
        let points: usize = attribute(tag, "data-points")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        assert!(points > 0, "chart {chart} drew no points: {tag}");
        // uPlot drew a canvas into it.
        let after = &dom[dom.find(tag).unwrap()..];
        let end = after.find("</figure>").unwrap();
        assert!(after[..end].contains("<canvas"), "{chart} has no canvas");
    }
    let start = html.find("id=\"report-data\"").unwrap();
    let json = &html[start..];
    let json = &json[json.find('>').unwrap() + 1..json.find("</script>").unwrap()];
    serde_json::from_str(json).expect("the embedded data is JSON")
}

/// Checks a live dashboard page after its scripts ran: every chart drawn, no script error,
/// and at least one update taken from its event stream.
pub fn assert_live_page(dom: &str) {
    assert!(dom.contains("data-charts=\"done\""), "{dom}");
    assert!(!dom.contains("data-errors="), "{dom}");
    assert!(dom.contains("data-updates=\""), "the page took no update");
    for chart in CHARTS {
        assert!(dom.contains(&format!("id=\"chart-{chart}\"")), "{chart}");
    }
}

/// Reads the final event, checks its header says `verdict` and that the stream ends after it;
/// returns its data.
pub fn assert_final_event(events: &mut impl std::io::BufRead, verdict: &str) -> Value {
    let done = next_event(events, "final");
    assert_eq!(done["done"], true);
    let header = done["sections"]["header"].as_str().unwrap_or_default();
    assert!(header.contains(verdict), "{header}");
    let mut rest = String::new();
    let _ = events.read_to_string(&mut rest);
    assert!(
        !rest.contains("event:"),
        "events after the final one: {rest}"
    );
    done
}
