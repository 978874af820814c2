//! The job service's dashboard (`examples/web_jobs/dashboard.html`) in a real
//! browser: Debian's Chromium, headless, driven through chromedriver with
//! WebDriver's JSON over HTTP. The service runs in this process, on
//! 127.0.0.1.
//!
//! Needs `chromium` and `chromium-driver` (`sudo apt-get install chromium
//! chromium-driver`). Without them the test says it is skipped, unless `CI`
//! is set: there it fails, so that CI never passes without having run it.
#![cfg(feature = "metrics")]

#[allow(dead_code)]
#[path = "../examples/web_jobs/main.rs"]
mod web_jobs;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_workerpool::Pool;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the page may take to show a change: it refreshes every second.
const PAGE_LIMIT: Duration = Duration::from_secs(20);

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromedriver and the Chromium it starts. Dropping it ends the session,
/// kills chromedriver's process group and any Chromium process left with
/// this browser's profile directory, and removes that directory: a test
/// that fails leaves nothing running.
struct Browser {
    driver: Child,
    port: u16,
    profile: PathBuf,
    session: Option<String>,
    client: awc::Client,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or says why it
    /// cannot: `None` when they are not installed and `CI` is not set.
    async fn start() -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|path| !Path::new(path).exists())
            .collect();
        if !missing.is_empty() {
            let install = "sudo apt-get install chromium chromium-driver";
            if std::env::var_os("CI").is_some() {
                panic!("the dashboard test needs {missing:?}, which CI must install: {install}");
            }
            println!(
                "skipped: install chromium chromium-driver ({install}) to run the dashboard test"
            );
            return None;
        }

        let port = free_port();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let profile =
            std::env::temp_dir().join(format!("web-jobs-dashboard-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&profile).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A group of its own, so that it and every Chromium process it
            // starts can be killed together.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut browser = Browser {
            driver,
            port,
            profile,
            session: None,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(60))
                .finish(),
        };
        browser.wait_until_ready().await;
        browser.new_session().await;
        Some(browser)
    }

    fn driver_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.driver.try_wait().unwrap() {
                panic!("chromedriver exited at once: {status}");
            }
            if let Ok(mut response) = self.client.get(self.driver_url("/status")).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver was not ready within 20 s"
            );
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn new_session(&mut self) {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", self.profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let value = self.send("POST", "/session", Some(capabilities)).await;
        let value = value.unwrap_or_else(|error| panic!("no browser session: {error}"));
        self.session = Some(value["sessionId"].as_str().unwrap().to_owned());
    }

    /// A WebDriver command: its `value`, or the error it answered.
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = self.driver_url(path);
        let request = match method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url),
            "DELETE" => self.client.delete(url),
            _ => unreachable!("{method}"),
        };
        let sent = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|error| format!("{method} {path}: {error}"))?;
        let status = response.status();
        let bytes = response
            .body()
            .limit(64 << 20)
            .await
            .map_err(|e| e.to_string())?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status}: {}", answer["value"]));
        }
        Ok(answer["value"].clone())
    }

    /// A command in this browser's session.
    async fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let session = self.session.as_deref().expect("a session");
        self.send(method, &format!("/session/{session}{path}"), body)
            .await
    }

    async fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .await
            .unwrap();
    }

    async fn element(&self, css: &str) -> Result<String, String> {
        let query = json!({"using": "css selector", "value": css});
        let element = self.command("POST", "/element", Some(query)).await?;
        Ok(element[ELEMENT].as_str().unwrap().to_owned())
    }

    /// The text of the element `css` picks, as the page shows it.
    async fn text(&self, css: &str) -> Result<String, String> {
        let element = self.element(css).await?;
        let path = format!("/element/{element}/text");
        let text = self.command("GET", &path, None).await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    async fn attribute(&self, css: &str, name: &str) -> Result<String, String> {
        let element = self.element(css).await?;
        let path = format!("/element/{element}/attribute/{name}");
        let value = self.command("GET", &path, None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    async fn count(&self, css: &str) -> usize {
        let query = json!({"using": "css selector", "value": css});
        let elements = self
            .command("POST", "/elements", Some(query))
            .await
            .unwrap();
        elements.as_array().unwrap().len()
    }

    /// Polls the text of `css` until `wanted` holds (the page redraws every
    /// second, by itself), at most [`PAGE_LIMIT`]; returns that text.
    async fn wait_for_text(&self, css: &str, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < PAGE_LIMIT {
            match self.text(css).await {
                Ok(text) if wanted(&text) => return text,
                Ok(text) => last = text,
                Err(error) => last = error,
            }
            actix_rt::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{css} never showed {what} within {PAGE_LIMIT:?}; it shows {last:?}");
    }

    /// Saves what the page looks like to `path` (a PNG).
    async fn screenshot(&self, path: &str) {
        let png = self.command("GET", "/screenshot", None).await.unwrap();
        std::fs::write(path, base64_decode(png.as_str().unwrap())).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            delete_session(self.port, &session);
        }
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A Chromium process that left the group still names the profile.
        let profile = self.profile.to_string_lossy().into_owned();
        for pid in processes_naming(&profile) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Ends a WebDriver session, which closes its Chromium, without the async
/// runtime: this runs in `drop`, perhaps while a failed test unwinds.
fn delete_session(port: u16, session: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // Chromedriver keeps the connection open after its answer: read the
    // answer (it comes once Chromium has quit), not up to the end.
    let mut answer = Vec::new();
    let mut buffer = [0; 1024];
    while !whole_response(&answer) {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
        }
    }
}

/// Whether `bytes` hold an HTTP response's head and all the body its
/// `Content-Length` announces.
fn whole_response(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|length| length.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}

/// The processes whose command line contains `needle`.
fn processes_naming(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .collect()
}

/// A port nothing listens on now. Chromedriver takes its port from the
/// command line; the moment between this and its bind is the only race.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Standard base64 (what WebDriver sends screenshots in).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |byte: u8| match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {byte}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&b| b != b'=').map(value).collect();
    let mut bytes = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let word = chunk.iter().enumerate().fold(0u32, |word, (i, &digit)| {
            word | u32::from(digit) << (18 - 6 * i)
        });
        bytes.extend(&word.to_be_bytes()[1..chunk.len()]);
    }
    bytes
}

/// Posts a job to the service; its id.
async fn post(client: &awc::Client, base: &str, job: Value) -> u64 {
    let mut response = client
        .post(format!("{base}/jobs"))
        .send_json(&job)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    response.json::<Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap()
}

/// Waits until the pool has finished `finished` tasks (at most 20 s).
async fn wait_finished(pool: &Pool<web_jobs::Job>, finished: u64) {
    let started = Instant::now();
    while pool.stats().await.unwrap().finished() < finished {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the jobs did not finish"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn the_dashboard_shows_the_pool_live_in_a_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let builder = Pool::builder().workers(2).queue_capacity(20);
    let (pool, metrics) = web_jobs::build_pool(builder).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = web_jobs::server(listener, pool.clone(), metrics)
        .await
        .unwrap();
    let handle = server.handle();
    let serving = actix_rt::spawn(web_jobs::serve_then_drain(
        server,
        pool.clone(),
        Duration::from_millis(200),
    ));

    // Three jobs that complete and one that fails, all finished before the
    // page opens.
    let client = awc::Client::default();
    for name in ["a.pdf", "b.pdf", "c.pdf"] {
        post(&client, &base, json!({"name": name, "millis": 20})).await;
    }
    let broken = json!({"name": "broken.pdf", "millis": 5, "fail": true});
    let broken = post(&client, &base, broken).await;
    wait_finished(&pool, 4).await;

    browser.open(&format!("{base}/")).await;
    let title = browser.command("GET", "/title", None).await.unwrap();
    assert_eq!(title, "jobs · actix-workerpool");
    browser
        .wait_for_text("#completed", "3", |text| text == "3")
        .await;
    assert_eq!(browser.text("#submitted").await.unwrap(), "4");
    assert_eq!(browser.text("#failed").await.unwrap(), "1");
    assert_eq!(browser.text("#queued").await.unwrap(), "0");
    assert_eq!(browser.text("#pool-name").await.unwrap(), "“jobs”");
    let failures = browser.text("#failures").await.unwrap();
    assert!(failures.contains(&format!("task#{broken}")), "{failures}");
    assert!(
        failures.contains("could not process broken.pdf"),
        "{failures}"
    );
    assert_eq!(browser.count("#failures li").await, 1);
    assert_eq!(browser.count("#workers tbody tr").await, 2);
    let workers = browser.text("#workers").await.unwrap();
    assert_eq!(workers.matches("idle").count(), 2, "{workers}");
    let run_p50 = browser.text("#run-p50").await.unwrap();
    assert!(run_p50.ends_with(" ms"), "{run_p50}");
    assert_eq!(browser.text("#run-count").await.unwrap(), "4");
    let status = browser.text("#status").await.unwrap();
    assert!(status.starts_with("updated "), "{status}");

    // It updates by itself: more jobs, no reload.
    for name in ["d.pdf", "e.pdf"] {
        post(&client, &base, json!({"name": name, "millis": 20})).await;
    }
    browser
        .wait_for_text("#completed", "5", |text| text == "5")
        .await;
    assert_eq!(browser.text("#submitted").await.unwrap(), "6");

    // A job that runs a while shows on its worker, and in flight.
    let long = post(
        &client,
        &base,
        json!({"name": "long.pdf", "millis": 30_000}),
    )
    .await;
    let busy = format!("busy with task#{long}");
    browser
        .wait_for_text("#workers", &busy, |text| text.contains(&busy))
        .await;
    browser
        .wait_for_text("#in_flight", "1", |text| text == "1")
        .await;

    // The chart has drawn the samples taken since the service started.
    let started = Instant::now();
    loop {
        let samples: usize = browser
            .attribute("#queue-chart", "data-samples")
            .await
            .unwrap()
            .parse()
            .unwrap();
        if samples >= 2 {
            break;
        }
        assert!(
            started.elapsed() < PAGE_LIMIT,
            "the chart has {samples} samples"
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    let line = browser
        .attribute("#in-flight-line", "points")
        .await
        .unwrap();
    assert!(line.split(' ').count() >= 2, "{line:?}");
    let area = browser.attribute("#queued-area", "d").await.unwrap();
    assert!(area.starts_with('M') && area.ends_with('Z'), "{area:?}");

    // A reload keeps the chart's past: the server holds it.
    browser
        .command("POST", "/refresh", Some(json!({})))
        .await
        .unwrap();
    browser
        .wait_for_text("#completed", "5 after a reload", |text| text == "5")
        .await;
    let samples = browser
        .attribute("#queue-chart", "data-samples")
        .await
        .unwrap();
    assert!(samples.parse::<usize>().unwrap() >= 2, "{samples}");

    if let Ok(path) = std::env::var("WEB_JOBS_SCREENSHOT") {
        browser.screenshot(&path).await;
    }

    handle.stop(true).await;
    let report = serving.await.unwrap().unwrap();
    assert_eq!(
        report
            .aborted
            .iter()
            .map(|id| id.as_u64())
            .collect::<Vec<_>>(),
        [long],
        "the long job was cut off by the drain's deadline"
    );
    drop(browser);
}
