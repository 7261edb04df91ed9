//! `make demo`: the failover story on a local emulator. Exits non-zero if a step fails;
//! the emulator stops with the process, also on Ctrl-C.

#[tokio::main]
async fn main() {
    let mut stdout = std::io::stdout();
    let result = tokio::select! {
        r = outposts_ha_tests::demo::run(&mut stdout) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
    };
    match result {
        Ok(summary) if summary.rows.len() == 3 => {}
        Ok(summary) => {
            eprintln!("demo failed: expected 3 replacements for server A, found {}", summary.rows.len());
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    }
}
