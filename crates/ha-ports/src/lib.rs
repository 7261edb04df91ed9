//! The ports the functions act through. Each is a narrow interface in the domain's terms;
//! `ha-aws` implements them on the SDK and the simulator's in-memory world implements them
//! with AWS's documented semantics. Nothing here talks to a network or decides.

pub mod alarms;
pub mod backups;
pub mod bus;
pub mod capacity;
pub mod clock;
pub mod fleet;
pub mod ledger;
pub mod promotion;
pub mod serving;
pub mod table;
pub mod witness;

pub use alarms::{AlarmLabels, AlarmStates};
pub use backups::{BackupCatalog, Backups, ImageFacts, InFlight, Runbook};
pub use bus::Bus;
pub use capacity::{metric_chooses, CapacityProbe, DestinationCapacity};
pub use clock::{Clock, SystemClock};
pub use fleet::{
    ExistingReplacement, ExistingRole, FencedSelector, Fleet, InterfaceSpec, LaunchFor, LaunchRequest, Launched,
};
pub use ledger::{HookRecord, HookVerdict, Ledger};
pub use promotion::PromotionHooks;
pub use serving::{register_in, LoadBalancing, TargetGroup};
pub use table::Table;
pub use witness::{Asked, ProbeStatus, Witness, WitnessInstance};
