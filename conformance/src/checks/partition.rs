//! `init/generate` on a node with N healthy replicas yields `n_groups = N` and groups
//! `0..N`, read back from `/pow/status` `config`; then stop. Disruptive.

use mlnode_protocol::paths;
use std::collections::BTreeSet;

use mlnode_protocol::wire::{
    AggregateStatus, InitGenerateRequest, InitGenerateResponse, PowStatusResponse,
};
use serde_json::json;

use crate::outcome::CheckResult;
use crate::target::{Target, ROUND_BLOCK_HASH, ROUND_PUBLIC_KEY};

pub async fn run(t: &Target, model: &str) -> CheckResult {
    const NAME: &str = "partition";
    if !t.allow_disruptive {
        return CheckResult::skip(
            NAME,
            "disruptive (init/generate + stop): pass --allow-disruptive",
        );
    }
    let before: PowStatusResponse = match t.client.get(paths::POW_STATUS, 30.0).await {
        Ok(s) => s,
        Err(e) => return CheckResult::fail(NAME, e.to_string()),
    };
    if before.status != AggregateStatus::Idle {
        return CheckResult::skip(
            NAME,
            format!("node is {:?}, not IDLE: not disturbing it", before.status),
        );
    }
    let n = before.backends.len() as u32;
    let req = InitGenerateRequest {
        block_hash: ROUND_BLOCK_HASH.into(),
        block_height: 100,
        public_key: ROUND_PUBLIC_KEY.into(),
        node_id: 0,
        node_count: 1,
        batch_size: Some(32),
        params: t.params(model),
        url: None,
        poc_stronger_rng: false,
    };
    let init: Result<InitGenerateResponse, _> =
        t.client.post(paths::POW_INIT_GENERATE, &req, 60.0).await;
    let status: Result<PowStatusResponse, _> = t.client.get(paths::POW_STATUS, 30.0).await;
    let _ = t.client.post_raw(paths::POW_STOP, &json!({}), 30.0).await;
    let (init, status) = match (init, status) {
        (Ok(i), Ok(s)) => (i, s),
        (Err(e), _) | (_, Err(e)) => return CheckResult::fail(NAME, e.to_string()),
    };
    let groups: BTreeSet<u32> = status
        .backends
        .iter()
        .filter_map(|b| b.config.as_ref().map(|c| c.group_id))
        .collect();
    let n_groups: BTreeSet<u32> = status
        .backends
        .iter()
        .filter_map(|b| b.config.as_ref().map(|c| c.n_groups))
        .collect();
    let ok = init.n_groups == n
        && n_groups == BTreeSet::from([n])
        && groups == (0..n).collect::<BTreeSet<_>>();
    CheckResult::expect(NAME, ok, format!(
        "{n} healthy replicas: init n_groups={} backends={}; status group_ids={groups:?} n_groups={n_groups:?}; stopped",
        init.n_groups, init.backends))
}
