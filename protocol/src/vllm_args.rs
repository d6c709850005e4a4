//! How an MLNode reads its vLLM argument list: tensor/pipeline parallel sizes (and so
//! the replica count) and `--max-model-len` (network-node §3.6).
//!
//! Two rules exist in the wild, and a node's replica count depends on which one it runs:
//!
//! * [`ArgRule::Newest`] (the newest MLNode, `arg_values.py`): a token is split at its
//!   first `=`; `--` keys fold `_` to `-`; aliases `-tp`, `-pp`, `--max-model`; the value
//!   is the inline one or the next token; a value that is not an integer leaves the
//!   previous one; the **last** parsed occurrence wins.
//! * [`ArgRule::Shipped`] (the runner of the images shipped so far): the exact token, its
//!   **first** occurrence, the next token as value; no `=`, no aliases, no folding.

use serde::{Deserialize, Serialize};

/// Which argument reader a node runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ArgRule {
    /// `arg_values.py` of the newest MLNode.
    #[default]
    Newest,
    /// `_get_arg_value` of the shipped images (3.0.x runner).
    Shipped,
}

/// An option the node reads from the vLLM args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VllmOption {
    TensorParallelSize,
    PipelineParallelSize,
    MaxModelLen,
}

impl VllmOption {
    /// The long spelling.
    pub fn flag(self) -> &'static str {
        match self {
            VllmOption::TensorParallelSize => "--tensor-parallel-size",
            VllmOption::PipelineParallelSize => "--pipeline-parallel-size",
            VllmOption::MaxModelLen => "--max-model-len",
        }
    }

    /// The alias the newest rule also accepts.
    fn alias(self) -> &'static str {
        match self {
            VllmOption::TensorParallelSize => "-tp",
            VllmOption::PipelineParallelSize => "-pp",
            VllmOption::MaxModelLen => "--max-model",
        }
    }
}

/// The most replicas a node starts (`INFERENCE_MAX_INSTANCES`).
pub const MAX_INSTANCES: u32 = 128;

/// The integer value of `opt` in `args` under `rule`, or `None` when not given (or never
/// parsable).
pub fn int_value<S: AsRef<str>>(args: &[S], opt: VllmOption, rule: ArgRule) -> Option<i64> {
    match rule {
        ArgRule::Shipped => args
            .iter()
            .position(|a| a.as_ref() == opt.flag())
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.as_ref().parse().ok()),
        ArgRule::Newest => {
            let mut found = None;
            for (i, tok) in args.iter().enumerate() {
                let tok = tok.as_ref();
                let (key, inline) = match tok.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (tok, None),
                };
                let key = if key.starts_with("--") {
                    std::borrow::Cow::Owned(key.replace('_', "-"))
                } else {
                    std::borrow::Cow::Borrowed(key)
                };
                if key != opt.flag() && key != opt.alias() {
                    continue;
                }
                let value = inline.or_else(|| args.get(i + 1).map(AsRef::as_ref));
                if let Some(v) = value.and_then(|v| v.parse::<i64>().ok()) {
                    found = Some(v);
                }
            }
            found
        }
    }
}

/// Tensor × pipeline parallel size (each 1 when absent or not positive).
pub fn parallel<S: AsRef<str>>(args: &[S], rule: ArgRule) -> (u32, u32) {
    let size = |opt| {
        int_value(args, opt, rule)
            .filter(|&v| v > 0)
            .map_or(1, |v| u32::try_from(v).unwrap_or(u32::MAX))
    };
    (
        size(VllmOption::TensorParallelSize),
        size(VllmOption::PipelineParallelSize),
    )
}

/// Replicas on `gpus` GPUs: `min(128, max(1, max(gpus, 1) / (tp·pp)))`.
pub fn replicas<S: AsRef<str>>(args: &[S], gpus: u32, rule: ArgRule) -> u32 {
    let (tp, pp) = parallel(args, rule);
    let per = tp.saturating_mul(pp).max(1);
    (gpus.max(1) / per).clamp(1, MAX_INSTANCES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    /// network-node §3.6, every row: args on 8 GPUs → (new TP×PP, replicas), (old ...).
    #[test]
    fn every_row_of_the_table() {
        /// args, newest (tp, pp), newest replicas, shipped (tp, pp), shipped replicas.
        type Row = (&'static str, (u32, u32), u32, (u32, u32), u32);
        let rows: [Row; 11] = [
            ("--tensor-parallel-size 4", (4, 1), 2, (4, 1), 2),
            ("--tensor-parallel-size=4", (4, 1), 2, (1, 1), 8),
            ("-tp 2", (2, 1), 4, (1, 1), 8),
            ("--tensor_parallel_size 4", (4, 1), 2, (1, 1), 8),
            (
                "--tensor-parallel-size 2 --tensor-parallel-size=4",
                (4, 1),
                2,
                (2, 1),
                4,
            ),
            ("--tensor_parallel_size=4 -tp 2", (2, 1), 4, (1, 1), 8),
            ("-tp 4 -pp=2", (4, 2), 1, (1, 1), 8),
            ("--tensor-parallel-size abc", (1, 1), 8, (1, 1), 8),
            (
                "--tensor-parallel-size 2 --tensor-parallel-size x",
                (2, 1),
                4,
                (2, 1),
                4,
            ),
            ("--tensor-parallel-size 3", (3, 1), 2, (3, 1), 2),
            ("--tensor-parallel-size 16", (16, 1), 1, (16, 1), 1),
        ];
        for (args, new_p, new_r, old_p, old_r) in rows {
            let a = split(args);
            assert_eq!(parallel(&a, ArgRule::Newest), new_p, "newest: {args}");
            assert_eq!(replicas(&a, 8, ArgRule::Newest), new_r, "newest: {args}");
            assert_eq!(parallel(&a, ArgRule::Shipped), old_p, "shipped: {args}");
            assert_eq!(replicas(&a, 8, ArgRule::Shipped), old_r, "shipped: {args}");
        }
    }

    #[test]
    fn max_model_len_rows() {
        let a = split("--max_model_len=8192 --max-model-len 240000");
        assert_eq!(
            int_value(&a, VllmOption::MaxModelLen, ArgRule::Newest),
            Some(240000)
        );
        assert_eq!(
            int_value(&a, VllmOption::MaxModelLen, ArgRule::Shipped),
            Some(240000)
        );
        let a = split("--max-model=8192");
        assert_eq!(
            int_value(&a, VllmOption::MaxModelLen, ArgRule::Newest),
            Some(8192)
        );
        assert_eq!(
            int_value(&a, VllmOption::MaxModelLen, ArgRule::Shipped),
            None
        );
    }

    #[test]
    fn edges() {
        // A trailing flag without a value, single-dash keys are not folded, no GPUs.
        let a = split("--tensor-parallel-size");
        assert_eq!(parallel(&a, ArgRule::Newest), (1, 1));
        let a = split("-t_p 4");
        assert_eq!(parallel(&a, ArgRule::Newest), (1, 1));
        assert_eq!(replicas::<&str>(&[], 0, ArgRule::Newest), 1);
        assert_eq!(replicas::<&str>(&[], 1000, ArgRule::Newest), MAX_INSTANCES);
        // Zero or negative sizes count as 1 (the node would refuse them; never divide by 0).
        let a = split("-tp 0 -pp -2");
        assert_eq!(parallel(&a, ArgRule::Newest), (1, 1));
    }
}
