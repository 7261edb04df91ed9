//! moto server on 127.0.0.1, on a free port, for the life of one test, with the
//! doubles (`emulator/moto_with_doubles.py`) loaded into it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Emulator {
    child: Child,
    pub endpoint: String,
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
        let child = Command::new(&python)
            .arg(&double)
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
        Emulator { child, endpoint }
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
    }
}
