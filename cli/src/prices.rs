//! `crm-edge prices`: the Cloudflare prices this build prices its usage at (`domain::pricing`),
//! for a person to check against the pages, and, with `--json`, for the cost bench to price its
//! counts with the very table the product uses.

use domain::pricing::{Meter, Model, PLAN_MONTHLY, PRICES_AS_OF};
use serde_json::{Value, json};

/// The table as one JSON document: each meter's price in picodollars per unit, its allowance,
/// its page; the plan's fee; the models' neurons per million tokens.
pub fn table() -> Value {
    let meters: Vec<Value> = Meter::ALL
        .into_iter()
        .map(|meter| {
            let price = meter.price();
            let (included, per) = price.included.per();
            json!({
                "meter": meter.name(),
                "picodollars_each": price.each.picos(),
                "included": included,
                "included_per": per,
                "page": price.page,
            })
        })
        .collect();
    let models: Vec<Value> = [Model::LLAMA_3_3_70B_FAST, Model::BGE_SMALL]
        .into_iter()
        .map(|model| {
            json!({
                "model": model.name,
                "neurons_per_million_input_tokens": model.neurons_per_million_input,
                "neurons_per_million_output_tokens": model.neurons_per_million_output,
            })
        })
        .collect();
    json!({
        "as_of": PRICES_AS_OF,
        "plan_monthly_picodollars": PLAN_MONTHLY.picos(),
        "meters": meters,
        "models": models,
    })
}

/// Prints the table, as JSON or as lines a person reads.
pub fn run(json: bool) -> u8 {
    if json {
        println!("{}", table());
        return 0;
    }
    println!("Cloudflare's prices as of {PRICES_AS_OF} (Workers Paid, {PLAN_MONTHLY} a month):");
    for meter in Meter::ALL {
        let price = meter.price();
        let (quantum, per) = quantum(meter);
        // Thousandths of a neuron are counted; neurons are what a person reads.
        let shown = |count: u64| match meter {
            Meter::AiMilliNeurons => format!("{} neurons", grouped(count / 1_000)),
            _ => grouped(count),
        };
        let (count, period) = price.included.per();
        let included = format!("{} a {period}", shown(count));
        println!(
            "  {:<30} {:>9} {per:<22} past {included} ({})",
            meter.name(),
            price.each.times(quantum).to_string(),
            price.page
        );
    }
    0
}

/// How many units a price is read per, as the pages give it.
fn quantum(meter: Meter) -> (u64, &'static str) {
    match meter {
        Meter::D1StorageGbMonths | Meter::R2StorageGbMonths => (1, "per GB-month"),
        Meter::AiMilliNeurons => (1_000_000, "per 1,000 neurons"),
        _ => (1_000_000, "per million"),
    }
}

/// `n` with its thousands set apart: 10,000,000.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_table_holds_every_meter_with_its_price_and_allowance() {
        let table = table();
        let meters = table["meters"].as_array().cloned().unwrap_or_default();
        assert_eq!(meters.len(), Meter::ALL.len());
        let requests = &meters[0];
        assert_eq!(requests["meter"], "worker_requests");
        assert_eq!(requests["picodollars_each"], 300_000);
        assert_eq!(requests["included"], 10_000_000);
        assert_eq!(requests["included_per"], "month");
        let neurons = meters.iter().find(|meter| meter["meter"] == "ai_milli_neurons");
        assert_eq!(
            neurons.map(|meter| meter["included_per"].clone()),
            Some(json!("day"))
        );
        assert_eq!(table["plan_monthly_picodollars"], 5_000_000_000_000_u64);
        assert_eq!(table["models"][0]["neurons_per_million_input_tokens"], 26_668);
    }

    #[test]
    fn thousands_are_set_apart() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(25_000_000_000), "25,000,000,000");
    }
}
