//! The brewing itself, behind [`Brewer`] so that a real machine driver can replace the
//! simulation. [`SimulatedBrewer`] takes a time per size and fails at a chosen rate.

use std::future::Future;
use std::time::Duration;

use brewq_protocol::{Order, Size};
use rand::Rng;

/// A brew that did not give a coffee; the order may be retried on any machine.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BrewFailure(pub String);

/// A coffee machine's brewing unit.
pub trait Brewer: Send + Sync + 'static {
    /// Brews one order; resolves when the cup is ready or the brew failed. Dropping the future
    /// abandons the brew.
    fn brew(&self, order: &Order) -> impl Future<Output = Result<(), BrewFailure>> + Send;

    /// How long a cup of `size` should take, before any has been measured (for the ETA). Zero
    /// means instant: such a brew is recorded with its outcome, in one write.
    fn expected_brew_time(&self, size: Size) -> Duration;
}

/// Brew time of each size at scale 1.
pub fn nominal_brew_time(size: Size) -> Duration {
    match size {
        Size::Small => Duration::from_secs(20),
        Size::Medium => Duration::from_secs(30),
        Size::Large => Duration::from_secs(40),
    }
}

/// A simulated machine.
#[derive(Debug, Clone)]
pub struct SimulatedBrewer {
    /// Multiplies [`nominal_brew_time`]; 0 brews instantly.
    pub brew_scale: f64,
    /// Chance, from 0 to 1, that a brew fails.
    pub fail_rate: f64,
}

impl Brewer for SimulatedBrewer {
    fn expected_brew_time(&self, size: Size) -> Duration {
        nominal_brew_time(size).mul_f64(self.brew_scale.max(0.0))
    }

    async fn brew(&self, order: &Order) -> Result<(), BrewFailure> {
        let time = self.expected_brew_time(order.size);
        let fails = rand::rng().random_bool(self.fail_rate.clamp(0.0, 1.0));
        // A failure shows after part of the brew, as a jammed grinder would.
        tokio::time::sleep(if fails { time / 2 } else { time }).await;
        if fails { Err(BrewFailure("the machine jammed (simulated failure)".into())) } else { Ok(()) }
    }
}
