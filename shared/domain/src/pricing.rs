//! What running crm-edge costs on Cloudflare: one table of the platform's published prices for
//! each unit it meters, the monthly allowance of the Workers Paid plan kept apart from the price
//! past it, and a count of units turned into money.
//!
//! The prices as Cloudflare's pages read on [`PRICES_AS_OF`], each entry naming its page:
//! - <https://developers.cloudflare.com/workers/platform/pricing/>: $5 a month; requests (inbound
//!   ones only: calls over a service binding and other subrequests are not billed) and CPU time;
//! - <https://developers.cloudflare.com/d1/platform/pricing/>: rows read and written, storage;
//! - <https://developers.cloudflare.com/kv/platform/pricing/>: reads; writes, deletes and lists;
//! - <https://developers.cloudflare.com/queues/platform/pricing/>: operations, each write, read and
//!   delete of up to 64 KB of a message;
//! - <https://developers.cloudflare.com/r2/pricing/>: class A (writes, deletes, lists) and class B
//!   (reads) operations, standard storage;
//! - <https://developers.cloudflare.com/durable-objects/platform/pricing/>: requests and duration;
//! - <https://developers.cloudflare.com/workers-ai/platform/pricing/>: neurons, $0.011 per
//!   thousand past 10,000 a day, and each model's neurons per million tokens ([`Model`]);
//! - <https://developers.cloudflare.com/vectorize/platform/pricing/>: queried and stored vector
//!   dimensions.
//!
//! Money is counted in picodollars (10⁻¹² $), so that a price "per million" is a whole number: a
//! unit priced at $0.30 per million costs 300,000 picodollars, and a count of units is priced
//! exactly, with no rounding until it is shown.

use std::fmt;

/// The day the prices below were read from Cloudflare's pages.
pub const PRICES_AS_OF: &str = "2026-11-28";

/// The Workers Paid plan's monthly fee: the least an account pays, whatever it uses.
pub const PLAN_MONTHLY: Money = Money::from_micros(5_000_000);

/// An amount of US dollars, in picodollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(u64);

const PICOS_PER_MICRO: u64 = 1_000_000;
const PICOS_PER_DOLLAR: u64 = 1_000_000_000_000;

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_picos(picos: u64) -> Self {
        Self(picos)
    }

    pub const fn from_micros(micros: u64) -> Self {
        Self(micros * PICOS_PER_MICRO)
    }

    pub const fn picos(self) -> u64 {
        self.0
    }

    pub const fn plus(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    pub const fn times(self, count: u64) -> Money {
        Money(self.0.saturating_mul(count))
    }
}

/// Dollars with as many decimals as show the amount's first three significant digits, at least
/// two, cut rather than rounded, and no zero after them: `$5.00`, `$0.30`, `$0.0123`, `$0.0000003`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / PICOS_PER_DOLLAR;
        let fraction = self.0 % PICOS_PER_DOLLAR;
        let mut decimals = 2;
        if whole == 0 && fraction != 0 {
            // The place of the first significant digit, and two after it.
            let mut scale = PICOS_PER_DOLLAR / 10;
            let mut place = 1;
            while fraction < scale && place < 12 {
                scale /= 10;
                place += 1;
            }
            decimals = (place + 2).clamp(2, 12);
        }
        let mut shown = fraction / 10u64.pow(12 - decimals as u32);
        while decimals > 2 && shown.is_multiple_of(10) {
            shown /= 10;
            decimals -= 1;
        }
        write!(f, "${whole}.{shown:0width$}", width = decimals)
    }
}

/// How much of a unit the Workers Paid plan includes before it is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Monthly(u64),
    /// Each day's, unused days not carried over (Workers AI's neurons).
    Daily(u64),
}

impl Allowance {
    /// How many are included, and per what ("month" or "day").
    pub const fn per(self) -> (u64, &'static str) {
        match self {
            Self::Monthly(count) => (count, "month"),
            Self::Daily(count) => (count, "day"),
        }
    }

    /// What is included in a month of `days` days.
    pub const fn in_month(self, days: u64) -> u64 {
        match self {
            Self::Monthly(count) => count,
            Self::Daily(count) => count * days,
        }
    }
}

/// A unit Cloudflare meters and bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Meter {
    WorkerRequests,
    CpuMilliseconds,
    D1RowsRead,
    D1RowsWritten,
    KvReads,
    /// Writes, deletes and lists, each priced as a write.
    KvWrites,
    QueueOperations,
    R2ClassA,
    R2ClassB,
    DurableObjectRequests,
    /// Durable Object duration, in GB-seconds.
    DurableObjectGbSeconds,
    /// Workers AI, in thousandths of a neuron, so that a model's neurons per token are counted
    /// exactly.
    AiMilliNeurons,
    VectorizeQueriedDimensions,
    /// Stored vector dimensions, a month of each.
    VectorizeStoredDimensions,
    /// D1 storage, in GB-months.
    D1StorageGbMonths,
    /// R2 standard storage, in GB-months.
    R2StorageGbMonths,
}

/// One line of the table: what a unit costs past its allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// Of one unit (in picodollars: the same number as microdollars per million units).
    pub each: Money,
    pub included: Allowance,
    /// The page the price was read from.
    pub page: &'static str,
}

const WORKERS: &str = "https://developers.cloudflare.com/workers/platform/pricing/";
const D1: &str = "https://developers.cloudflare.com/d1/platform/pricing/";
const KV: &str = "https://developers.cloudflare.com/kv/platform/pricing/";
const QUEUES: &str = "https://developers.cloudflare.com/queues/platform/pricing/";
const R2: &str = "https://developers.cloudflare.com/r2/pricing/";
const DURABLE_OBJECTS: &str = "https://developers.cloudflare.com/durable-objects/platform/pricing/";
const WORKERS_AI: &str = "https://developers.cloudflare.com/workers-ai/platform/pricing/";
const VECTORIZE: &str = "https://developers.cloudflare.com/vectorize/platform/pricing/";

/// `dollars_per_million` written in microdollars (0.30 → 300_000), for `Monthly(included)`.
const fn per_million(micros: u64, included: u64, page: &'static str) -> Price {
    Price {
        each: Money::from_picos(micros),
        included: Allowance::Monthly(included),
        page,
    }
}

impl Meter {
    pub const ALL: [Meter; 16] = [
        Meter::WorkerRequests,
        Meter::CpuMilliseconds,
        Meter::D1RowsRead,
        Meter::D1RowsWritten,
        Meter::KvReads,
        Meter::KvWrites,
        Meter::QueueOperations,
        Meter::R2ClassA,
        Meter::R2ClassB,
        Meter::DurableObjectRequests,
        Meter::DurableObjectGbSeconds,
        Meter::AiMilliNeurons,
        Meter::VectorizeQueriedDimensions,
        Meter::VectorizeStoredDimensions,
        Meter::D1StorageGbMonths,
        Meter::R2StorageGbMonths,
    ];

    /// Its name in the API's answers and the benches' tables.
    pub const fn name(self) -> &'static str {
        match self {
            Self::WorkerRequests => "worker_requests",
            Self::CpuMilliseconds => "cpu_ms",
            Self::D1RowsRead => "d1_rows_read",
            Self::D1RowsWritten => "d1_rows_written",
            Self::KvReads => "kv_reads",
            Self::KvWrites => "kv_writes",
            Self::QueueOperations => "queue_operations",
            Self::R2ClassA => "r2_class_a",
            Self::R2ClassB => "r2_class_b",
            Self::DurableObjectRequests => "do_requests",
            Self::DurableObjectGbSeconds => "do_gb_seconds",
            Self::AiMilliNeurons => "ai_milli_neurons",
            Self::VectorizeQueriedDimensions => "vectorize_queried_dimensions",
            Self::VectorizeStoredDimensions => "vectorize_stored_dimensions",
            Self::D1StorageGbMonths => "d1_storage_gb_months",
            Self::R2StorageGbMonths => "r2_storage_gb_months",
        }
    }

    pub fn parse(name: &str) -> Option<Meter> {
        Self::ALL.into_iter().find(|meter| meter.name() == name)
    }

    /// Its price on Workers Paid, as published on [`PRICES_AS_OF`].
    pub const fn price(self) -> Price {
        match self {
            Self::WorkerRequests => per_million(300_000, 10_000_000, WORKERS),
            Self::CpuMilliseconds => per_million(20_000, 30_000_000, WORKERS),
            Self::D1RowsRead => per_million(1_000, 25_000_000_000, D1),
            Self::D1RowsWritten => per_million(1_000_000, 50_000_000, D1),
            Self::KvReads => per_million(500_000, 10_000_000, KV),
            // 1 million each of writes, deletes and lists are included; counted together, the
            // least of them is what is certain to be free.
            Self::KvWrites => per_million(5_000_000, 1_000_000, KV),
            Self::QueueOperations => per_million(400_000, 1_000_000, QUEUES),
            Self::R2ClassA => per_million(4_500_000, 1_000_000, R2),
            Self::R2ClassB => per_million(360_000, 10_000_000, R2),
            Self::DurableObjectRequests => per_million(150_000, 1_000_000, DURABLE_OBJECTS),
            Self::DurableObjectGbSeconds => per_million(12_500_000, 400_000, DURABLE_OBJECTS),
            // $0.011 per 1,000 neurons is 11 microdollars a neuron, 11,000 picodollars a
            // thousandth; 10,000 neurons a day are free.
            Self::AiMilliNeurons => Price {
                each: Money::from_picos(11_000),
                included: Allowance::Daily(10_000_000),
                page: WORKERS_AI,
            },
            Self::VectorizeQueriedDimensions => per_million(10_000, 50_000_000, VECTORIZE),
            // $0.05 per 100 million dimensions a month.
            Self::VectorizeStoredDimensions => per_million(500, 10_000_000, VECTORIZE),
            Self::D1StorageGbMonths => Price {
                each: Money::from_micros(750_000),
                included: Allowance::Monthly(5),
                page: D1,
            },
            Self::R2StorageGbMonths => Price {
                each: Money::from_micros(15_000),
                included: Allowance::Monthly(10),
                page: R2,
            },
        }
    }
}

/// A Workers AI model this product runs, with its published neurons per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub name: &'static str,
    pub neurons_per_million_input: u64,
    pub neurons_per_million_output: u64,
}

impl Model {
    /// The bot's (`bot::answer::MODEL`).
    pub const LLAMA_3_3_70B_FAST: Model = Model {
        name: "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        neurons_per_million_input: 26_668,
        neurons_per_million_output: 204_805,
    };
    /// The CRM links' and the knowledge base's embedder (`links::search`).
    pub const BGE_SMALL: Model = Model {
        name: "@cf/baai/bge-small-en-v1.5",
        neurons_per_million_input: 1_841,
        neurons_per_million_output: 0,
    };

    /// The thousandths of a neuron a call of `input` and `output` tokens costs, rounded up.
    pub const fn milli_neurons(self, input: u64, output: u64) -> u64 {
        let thousandths = input * self.neurons_per_million_input + output * self.neurons_per_million_output;
        thousandths.div_ceil(1_000)
    }
}

/// A count of units of each meter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Units([u64; Meter::ALL.len()]);

impl Units {
    pub fn add(&mut self, meter: Meter, count: u64) {
        let slot = &mut self.0[meter as usize];
        *slot = slot.saturating_add(count);
    }

    pub fn with(mut self, meter: Meter, count: u64) -> Self {
        self.add(meter, count);
        self
    }

    pub fn get(&self, meter: Meter) -> u64 {
        self.0[meter as usize]
    }

    /// Each meter counted, with its count and what it costs past any allowance.
    pub fn lines(&self) -> impl Iterator<Item = (Meter, u64, Money)> + '_ {
        Meter::ALL
            .into_iter()
            .filter(|meter| self.get(*meter) > 0)
            .map(|meter| (meter, self.get(meter), meter.price().each.times(self.get(meter))))
    }

    /// What these units cost at the margin: every unit at its price, as if the plan's allowances
    /// were spent (what one more operation, or one business among many, adds to the bill).
    pub fn marginal(&self) -> Money {
        self.lines()
            .fold(Money::ZERO, |total, (_, _, cost)| total.plus(cost))
    }

    /// The account's bill for a month of `days` days in which these units were used: the plan's
    /// fee, and each meter's units past its allowance at its price.
    pub fn monthly_bill(&self, days: u64) -> Money {
        Meter::ALL.into_iter().fold(PLAN_MONTHLY, |total, meter| {
            let past = self
                .get(meter)
                .saturating_sub(meter.price().included.in_month(days));
            total.plus(meter.price().each.times(past))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_price_is_the_published_one_per_million_units() {
        let dollars_per_million = |meter: Meter| meter.price().each.times(1_000_000).to_string();
        assert_eq!(dollars_per_million(Meter::WorkerRequests), "$0.30");
        assert_eq!(dollars_per_million(Meter::CpuMilliseconds), "$0.02");
        assert_eq!(dollars_per_million(Meter::D1RowsRead), "$0.001");
        assert_eq!(dollars_per_million(Meter::D1RowsWritten), "$1.00");
        assert_eq!(dollars_per_million(Meter::KvReads), "$0.50");
        assert_eq!(dollars_per_million(Meter::KvWrites), "$5.00");
        assert_eq!(dollars_per_million(Meter::QueueOperations), "$0.40");
        assert_eq!(dollars_per_million(Meter::R2ClassA), "$4.50");
        assert_eq!(dollars_per_million(Meter::R2ClassB), "$0.36");
        assert_eq!(dollars_per_million(Meter::DurableObjectRequests), "$0.15");
        assert_eq!(dollars_per_million(Meter::DurableObjectGbSeconds), "$12.50");
        assert_eq!(dollars_per_million(Meter::VectorizeQueriedDimensions), "$0.01");
        // $0.011 per thousand neurons, in thousandths.
        assert_eq!(
            Meter::AiMilliNeurons.price().each.times(1_000_000).to_string(),
            "$0.011"
        );
        // $0.05 per hundred million stored dimensions.
        assert_eq!(
            Meter::VectorizeStoredDimensions
                .price()
                .each
                .times(100_000_000)
                .to_string(),
            "$0.05"
        );
        assert_eq!(Meter::D1StorageGbMonths.price().each.to_string(), "$0.75");
        assert_eq!(Meter::R2StorageGbMonths.price().each.to_string(), "$0.015");
    }

    #[test]
    fn every_meter_has_a_page_and_a_name_that_reads_back() {
        for meter in Meter::ALL {
            assert!(
                meter
                    .price()
                    .page
                    .starts_with("https://developers.cloudflare.com/"),
                "{meter:?}"
            );
            assert_eq!(Meter::parse(meter.name()), Some(meter));
            assert_eq!(Meter::ALL[meter as usize], meter, "ALL is in declaration order");
        }
        assert_eq!(Meter::parse("requests"), None);
    }

    #[test]
    fn money_shows_three_significant_digits_and_at_least_cents() {
        assert_eq!(Money::from_micros(5_000_000).to_string(), "$5.00");
        assert_eq!(Money::from_micros(12_345).to_string(), "$0.0123");
        assert_eq!(Money::from_picos(300_000).to_string(), "$0.0000003");
        assert_eq!(Money::from_picos(1).to_string(), "$0.000000000001");
        assert_eq!(Money::ZERO.to_string(), "$0.00");
        assert_eq!(Money::from_micros(1_234_567_890).to_string(), "$1234.56");
    }

    #[test]
    fn a_models_tokens_are_its_published_neurons() {
        // 1 million input tokens of the bot's model: 26,668 neurons, $0.293 as the page says.
        let neurons = Model::LLAMA_3_3_70B_FAST.milli_neurons(1_000_000, 0);
        assert_eq!(neurons, 26_668_000);
        let cost = Units::default().with(Meter::AiMilliNeurons, neurons).marginal();
        assert_eq!(cost.to_string(), "$0.293");
        let output = Model::LLAMA_3_3_70B_FAST.milli_neurons(0, 1_000_000);
        assert_eq!(
            Units::default()
                .with(Meter::AiMilliNeurons, output)
                .marginal()
                .to_string(),
            "$2.25"
        );
        // A fraction of a thousandth is rounded up.
        assert_eq!(Model::BGE_SMALL.milli_neurons(1, 0), 2);
    }

    #[test]
    fn the_marginal_cost_prices_every_unit_and_the_bill_only_those_past_the_allowance() {
        let month = Units::default()
            .with(Meter::WorkerRequests, 15_000_000)
            .with(Meter::CpuMilliseconds, 7 * 15_000_000)
            .with(Meter::D1RowsRead, 1_000);
        // Cloudflare's own first example: 15 million requests of 7 ms, $8.00 with the plan.
        assert_eq!(month.monthly_bill(30).to_string(), "$8.00");
        assert_eq!(
            month.marginal(),
            Money::from_micros(4_500_000 + 2_100_000).plus(Money::from_picos(1_000_000))
        );
        let lines: Vec<Meter> = month.lines().map(|(meter, _, _)| meter).collect();
        assert_eq!(
            lines,
            [Meter::WorkerRequests, Meter::CpuMilliseconds, Meter::D1RowsRead]
        );
        // A day's free neurons are a day's: 30 days hold 300,000.
        let neurons = Units::default().with(Meter::AiMilliNeurons, 300_000_000);
        assert_eq!(neurons.monthly_bill(30), PLAN_MONTHLY);
        assert_eq!(neurons.monthly_bill(29).to_string(), "$5.11");
    }
}
