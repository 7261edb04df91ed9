//! moto server on 127.0.0.1, on a free port, for the life of one test, with the
//! doubles (`emulator/moto_with_doubles.py`) loaded into it.
//!
//! A call IAM refuses that the test did not expect fails the test when the emulator is
//! dropped, even where the product absorbs the error (an optional probe, say).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Emulator {
    child: Child,
    pub endpoint: String,
    /// Where the IAM double writes each refusal.
    denials: PathBuf,
    denials_expected: AtomicBool,
}

fn moto_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/outposts-ha/venv/bin/moto_server")
}

impl Emulator {
    pub async fn start() -> Emulator {
        let binary = moto_server_binary();
        assert!(
            binary.exists(),
            "moto_server not found at {}: run the tests with `make test` (it installs moto) or set MOTO_SERVER",
            binary.display()
        );
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().unwrap().port()
        };
        // moto plus the doubles, run by the venv's Python beside moto_server.
        let python = binary.with_file_name("python");
        let double = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
            .join("emulator/moto_with_doubles.py");
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let denials = std::env::temp_dir().join(format!(
            "iam-denials-{}-{}.log",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&denials);
        let child = Command::new(&python)
            .arg(&double)
            .env("IAM_DOUBLE_DENIALS", &denials)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} {}: {e}", python.display(), double.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "moto server did not start on port {port} within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut emulator = Emulator { child, endpoint, denials, denials_expected: AtomicBool::new(false) };
        // The port answers, and it is this server that answers (not one that took the port first).
        assert!(matches!(emulator.child.try_wait(), Ok(None)), "moto server on port {port} exited at start");
        emulator
    }

    /// Every call IAM refused so far (the caller, action and resource of each).
    pub fn denials(&self) -> Vec<String> {
        std::fs::read_to_string(&self.denials).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
    }

    /// This test provokes refusals: they do not fail it.
    pub fn expect_denials(&self) {
        self.denials_expected.store(true, Ordering::SeqCst);
    }

    /// SDK configuration pointing every client at this emulator with dummy credentials,
    /// retrying as the deployed functions do.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(ha_aws::runtime::retry_config())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let denials = self.denials();
        let _ = std::fs::remove_file(&self.denials);
        if !self.denials_expected.load(Ordering::SeqCst) && !std::thread::panicking() {
            assert!(denials.is_empty(), "IAM refused calls the test did not expect:\n{}", denials.join("\n"));
        }
    }
}
