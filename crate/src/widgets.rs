//! The registry: every widget's parameter table and its headless core.
//!
//! The CLI (`mlplay <widget>`) and the browser's `state` getter both call [`run`], so the
//! numbers a course author reads through the JS API are the numbers the CLI prints.

use crate::attention;
use crate::cartpole_ppo;
use crate::diffusion;
use crate::flash;
use crate::json::Json;
use crate::kvcache;
use crate::params::{Params, WidgetSpec};
use crate::ppo_clip;
use crate::rope;
use crate::scaling;
use crate::transformer;
use crate::{dpo, grpo};

/// Every widget, in gallery order.
pub const ALL: &[&WidgetSpec] = &[
    &ppo_clip::SPEC,
    &cartpole_ppo::SPEC,
    &rope::SPEC,
    &scaling::SPEC,
    &grpo::SPEC,
    &dpo::SPEC,
    &attention::SPEC,
    &flash::SPEC,
    &kvcache::SPEC,
    &diffusion::widget::DIFFUSION,
    &diffusion::widget::FLOW,
    &transformer::widget::SPEC,
];

pub fn find(name: &str) -> Option<&'static WidgetSpec> {
    ALL.iter().copied().find(|w| w.name == name)
}

/// Run a widget's core on its parameters: the plotted data as JSON.
pub fn run(params: &Params) -> Json {
    match params.spec.name {
        "ppo-clip" => ppo_clip::compute(&ppo_clip::Config::from_params(params)).to_json(),
        "cartpole-ppo" => cartpole_ppo::run(params),
        "rope" => rope::compute(&rope::Config::from_params(params)).to_json(),
        "scaling-laws" => scaling::compute(&scaling::Config::from_params(params)).to_json(),
        "dpo" => dpo::train_to_end(&dpo::Config::from_params(params)).to_json(),
        "grpo" => grpo::train_to_end(&grpo::Config::from_params(params)).to_json(),
        "attention" => attention::widget_json(&attention::Config::from_params(params)),
        "flash-attention" => flash::widget_json(&flash::Config::from_params(params)),
        "kv-cache" => kvcache::compute(&kvcache::Config::from_params(params)).to_json(),
        "diffusion" | "flow-matching" => diffusion::widget::run(params),
        "transformer" => transformer::widget::run(params),
        other => unreachable!("widget {other} is in the registry but has no core"),
    }
}

/// Defaults a widget's core supplies at run time instead of its table (so a core's
/// `Default` stays the one copy); `None`: the table's.
pub fn core_default(widget: &str, key: &str) -> Option<f64> {
    match widget {
        "transformer" => transformer::widget::default_of(key),
        _ => None,
    }
}

/// `mlplay list --json`: every widget with its parameter table.
pub fn list_json() -> Json {
    Json::Arr(ALL.iter().map(|w| w.to_json()).collect())
}
