//! `rorec serve`: a small static file server for the built app, on 127.0.0.1 only.
//!
//! It serves regular files inside one folder and nothing else, and it cannot be exhausted by one
//! client: the path is resolved (symbolic links included) and refused when it leaves the folder
//! *before* any file is opened; only regular files are opened, and read up to their size; the
//! request line and the headers have length caps; an idle connection times out; connections
//! beyond a cap get 503 at once; an accept error (out of descriptors) backs off instead of
//! spinning. GET and HEAD only (HEAD without a body, 405 otherwise), and every response carries
//! a Content-Security-Policy that allows no network beyond the origin, plus `nosniff`.
//!
//! Hand-written rather than a crate: it is ~250 lines, needs no async runtime, and every limit
//! above is one line here with a test below.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What one client may cost the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest request line (method, target, version), in bytes.
    pub request_line: usize,
    /// Most bytes of headers after the request line.
    pub header_bytes: usize,
    /// Most header lines.
    pub header_count: usize,
    /// A client that sends nothing for this long is dropped.
    pub read_timeout: Duration,
    /// A client that reads nothing for this long is dropped.
    pub write_timeout: Duration,
    /// Connections served at once; more get 503.
    pub connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 8 * 1024,
            header_bytes: 32 * 1024,
            header_count: 100,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            connections: 64,
        }
    }
}

/// The app loads its own scripts, wasm and worker, draws on canvases and offers downloads as
/// blob:/data: links; it fetches nothing. Inline styles come from the components' `style`
/// attributes; no inline script is allowed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     worker-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Serve `root` on `listener` until the process ends.
pub fn serve(listener: TcpListener, root: &Path, limits: Limits) -> io::Result<()> {
    let root = Arc::new(root.canonicalize()?);
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors (EMFILE) or a connection reset before accept: wait for
                // connections to close instead of spinning on the error.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= limits.connections {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = respond_error(&stream, false, Status::Busy);
            linger(&stream, 64 * 1024, Duration::from_millis(100));
            continue;
        }
        let (root, slot) = (Arc::clone(&root), Arc::clone(&active));
        let spawned = std::thread::Builder::new().spawn(move || {
            let _ = handle(stream, &root, &limits);
            slot.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            // No thread could be made: the stream was dropped (closed) with the closure.
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Timeout,
    UriTooLong,
    HeadersTooLarge,
    Busy,
    VersionNotSupported,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::Timeout => "408 Request Timeout",
            Status::UriTooLong => "414 URI Too Long",
            Status::HeadersTooLarge => "431 Request Header Fields Too Large",
            Status::Busy => "503 Service Unavailable",
            Status::VersionNotSupported => "505 HTTP Version Not Supported",
        }
    }
}

/// Read one line of at most `limit` bytes (CRLF or LF); `None` at end of stream.
fn read_line_capped(reader: &mut impl BufRead, limit: usize, too_long: Status) -> Result<Option<String>, Status> {
    let mut line = Vec::new();
    let read = reader.take(limit as u64 + 1).read_until(b'\n', &mut line).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Status::Timeout,
        _ => Status::BadRequest,
    })?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        // Either longer than the cap, or the client closed mid-line.
        return Err(if read > limit { too_long } else { Status::BadRequest });
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|_| Status::BadRequest)
}

fn handle(stream: TcpStream, root: &Path, limits: &Limits) -> io::Result<()> {
    stream.set_read_timeout(Some(limits.read_timeout))?;
    stream.set_write_timeout(Some(limits.write_timeout))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = match read_request(&mut reader, limits) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(status) => {
            respond_error(&stream, false, status)?;
            linger(&stream, 1 << 20, Duration::from_secs(1));
            return Ok(());
        }
    };
    let head = request.method == "HEAD";
    if request.method != "GET" && !head {
        respond_error(&stream, false, Status::MethodNotAllowed)?;
        linger(&stream, 1 << 20, Duration::from_secs(1));
        return Ok(());
    }
    match resolve(root, &request.target) {
        Ok(file) => respond_file(&stream, head, &file),
        Err(status) => respond_error(&stream, head, status),
    }
}

struct Request {
    method: String,
    target: String,
}

fn read_request(reader: &mut impl BufRead, limits: &Limits) -> Result<Option<Request>, Status> {
    let Some(line) = read_line_capped(reader, limits.request_line, Status::UriTooLong)? else {
        return Ok(None);
    };
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (words.next(), words.next(), words.next(), words.next()) else {
        return Err(Status::BadRequest);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(if version.starts_with("HTTP/") { Status::VersionNotSupported } else { Status::BadRequest });
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Status::BadRequest);
    }
    let mut header_bytes = 0;
    for count in 0.. {
        let remaining = limits.header_bytes.saturating_sub(header_bytes);
        let header = read_line_capped(reader, remaining, Status::HeadersTooLarge)?.ok_or(Status::BadRequest)?;
        if header.is_empty() {
            break;
        }
        header_bytes += header.len() + 2;
        if count + 1 > limits.header_count {
            return Err(Status::HeadersTooLarge);
        }
    }
    Ok(Some(Request { method: method.to_string(), target: target.to_string() }))
}

/// The file a request target names inside `root` (already canonical), or why not. Nothing is
/// opened here: the path is decoded, refused if any part of it climbs (`..`), then resolved
/// with its links and refused unless it is a regular file inside `root`.
pub fn resolve(root: &Path, target: &str) -> Result<PathBuf, Status> {
    if !target.starts_with('/') {
        return Err(Status::BadRequest);
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path).ok_or(Status::BadRequest)?;
    if decoded.contains(['\0', '\\']) {
        return Err(Status::BadRequest);
    }
    let relative = Path::new(decoded.trim_start_matches('/'));
    if !relative.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(Status::NotFound);
    }
    let mut file = root.join(relative);
    if decoded.ends_with('/') || relative.as_os_str().is_empty() {
        file.push("index.html");
    }
    let real = file.canonicalize().map_err(|_| Status::NotFound)?;
    if !real.starts_with(root) {
        return Err(Status::NotFound);
    }
    let meta = std::fs::metadata(&real).map_err(|_| Status::NotFound)?;
    if !meta.is_file() {
        return Err(Status::NotFound);
    }
    Ok(real)
}

/// `%XX` decoding of a URL path; `None` for a malformed escape or text that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn mime(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("md") | Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn write_head(mut stream: &TcpStream, status: Status, content_type: &str, length: u64, extra: &str) -> io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nCache-Control: no-cache\r\n\
         Connection: close\r\nContent-Security-Policy: {CONTENT_SECURITY_POLICY}\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nCross-Origin-Opener-Policy: same-origin\r\n{extra}\r\n",
        status.line()
    )
}

fn respond_file(mut stream: &TcpStream, head: bool, file: &Path) -> io::Result<()> {
    let Ok(opened) = std::fs::File::open(file) else {
        return respond_error(stream, head, Status::NotFound);
    };
    // Checked again on the opened file: the path may have been swapped since `resolve`.
    let length = match opened.metadata() {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => return respond_error(stream, head, Status::NotFound),
    };
    write_head(stream, Status::Ok, mime(file), length, "")?;
    if !head {
        // At most the size it had: a file that grows while being sent is cut there.
        io::copy(&mut opened.take(length), &mut stream)?;
    }
    stream.flush()
}

/// Close after an early answer without resetting the connection: a socket closed with unread
/// input sends a reset, and the client may then lose the answer. So stop writing, and read and
/// drop what the client still sends, up to `bytes` or `time`.
fn linger(mut stream: &TcpStream, bytes: u64, time: Duration) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(time));
    let deadline = std::time::Instant::now() + time;
    let mut left = bytes;
    let mut buffer = [0u8; 8192];
    while left > 0 && std::time::Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

fn respond_error(mut stream: &TcpStream, head: bool, status: Status) -> io::Result<()> {
    let body = status.line();
    let extra = if status == Status::MethodNotAllowed { "Allow: GET, HEAD\r\n" } else { "" };
    write_head(stream, status, "text/plain; charset=utf-8", body.len() as u64, extra)?;
    if !head {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    struct Server {
        port: u16,
        root: PathBuf,
        outside: PathBuf,
    }

    fn start(limits: Limits) -> Server {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!("rorec-serve-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst)));
        let (root, outside) = (base.join("site"), base.join("secret.txt"));
        std::fs::create_dir_all(root.join("pkg")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("index.html"), "<!doctype html><p>hello</p>").unwrap();
        std::fs::write(root.join("pkg/app.wasm"), [0u8, 97, 115, 109]).unwrap();
        std::fs::write(&outside, "secret").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("link.txt")).unwrap();
            std::os::unix::fs::symlink("/dev/zero", root.join("zero")).unwrap();
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = root.clone();
        std::thread::spawn(move || serve(listener, &dir, limits));
        Server { port, root, outside }
    }

    fn connect(server: &Server) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }

    /// Send raw bytes, read the whole response.
    fn exchange(server: &Server, request: &[u8]) -> String {
        let mut stream = connect(server);
        let _ = stream.write_all(request);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }

    fn get(server: &Server, target: &str) -> String {
        exchange(server, format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
    }

    fn status(response: &str) -> &str {
        response.split("\r\n").next().unwrap_or("")
    }

    #[test]
    fn serves_files_with_security_headers_and_head_without_body() {
        let server = start(Limits::default());
        let page = get(&server, "/");
        assert_eq!(status(&page), "HTTP/1.1 200 OK");
        assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(page.contains(&format!("Content-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n")));
        assert!(page.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(page.ends_with("<p>hello</p>"));
        assert!(get(&server, "/pkg/app.wasm").contains("Content-Type: application/wasm\r\nContent-Length: 4\r\n"));
        assert!(get(&server, "/index.html?x=1#y").ends_with("<p>hello</p>"));
        let head = exchange(&server, b"HEAD / HTTP/1.1\r\n\r\n");
        assert_eq!(status(&head), "HTTP/1.1 200 OK");
        assert!(head.contains("Content-Length: 27\r\n"));
        assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head:?}");
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "TRACE"] {
            let r = exchange(&server, format!("{method} / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").as_bytes());
            assert_eq!(status(&r), "HTTP/1.1 405 Method Not Allowed", "{method}");
            assert!(r.contains("Allow: GET, HEAD\r\n"));
        }
    }

    #[test]
    fn nothing_outside_the_folder_and_nothing_but_regular_files() {
        let server = start(Limits::default());
        let started = Instant::now();
        for target in [
            "/../../../../dev/zero",
            "/..%2f..%2f..%2fdev%2fzero",
            "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/pkg/../../secret.txt",
            "/proc/self/fd/0",
            "/link.txt",
            "/zero",
            "/empty",
            "/empty/",
            "/pkg",
            "/nope.js",
        ] {
            let r = get(&server, target);
            assert_eq!(status(&r), "HTTP/1.1 404 Not Found", "{target}");
            assert!(!r.contains("secret"), "{target}");
        }
        for target in ["/a%00b", "/a\\..\\b", "/%zz", "/%ff", "http://evil/"] {
            assert_eq!(status(&get(&server, target)), "HTTP/1.1 400 Bad Request", "{target}");
        }
        assert!(started.elapsed() < Duration::from_secs(5), "refusals are immediate: {:?}", started.elapsed());
        assert!(server.outside.exists() && server.root.join("index.html").exists());
    }

    #[test]
    fn long_request_lines_and_headers_are_refused_and_the_server_goes_on() {
        let server = start(Limits::default());
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(200_000));
        assert_eq!(status(&exchange(&server, long.as_bytes())), "HTTP/1.1 414 URI Too Long");
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..200 {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(status(&exchange(&server, many.as_bytes())), "HTTP/1.1 431 Request Header Fields Too Large");
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(64 * 1024));
        assert_eq!(status(&exchange(&server, big.as_bytes())), "HTTP/1.1 431 Request Header Fields Too Large");
        for bad in ["GARBAGE\r\n\r\n", "GET /\r\n\r\n", "get / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 x\r\n\r\n"] {
            assert_eq!(status(&exchange(&server, bad.as_bytes())), "HTTP/1.1 400 Bad Request", "{bad:?}");
        }
        assert_eq!(status(&exchange(&server, b"GET / HTTP/2.0\r\n\r\n")), "HTTP/1.1 505 HTTP Version Not Supported");
        assert_eq!(status(&get(&server, "/")), "HTTP/1.1 200 OK");
    }

    #[test]
    fn idle_clients_time_out_and_extra_connections_get_503() {
        let limits = Limits { read_timeout: Duration::from_millis(300), connections: 3, ..Limits::default() };
        let server = start(limits);
        // An idle client is answered 408 and closed after the read timeout.
        let started = Instant::now();
        let mut idle = connect(&server);
        let mut response = String::new();
        idle.read_to_string(&mut response).unwrap();
        assert_eq!(status(&response), "HTTP/1.1 408 Request Timeout");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        // Three idle clients hold every slot: the fourth is told 503 at once.
        let holders: Vec<TcpStream> = (0..3).map(|_| connect(&server)).collect();
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        let busy = get(&server, "/");
        assert_eq!(status(&busy), "HTTP/1.1 503 Service Unavailable");
        assert!(started.elapsed() < Duration::from_millis(250), "{:?}", started.elapsed());
        drop(holders);
        // Once the holders time out, the server serves again.
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(status(&get(&server, "/")), "HTTP/1.1 200 OK");
    }
}
