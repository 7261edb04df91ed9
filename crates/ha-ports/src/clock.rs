//! What time it is, asked of a port so the simulator can run on virtual time.

use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;

    fn epoch(&self) -> i64 {
        self.now().unix_timestamp()
    }

    fn epoch_ms(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        ha_domain::timefmt::now()
    }
}
