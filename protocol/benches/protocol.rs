//! Micro-benchmarks of the hot paths (targets in BENCHMARKS.md): decode + L2 per
//! artifact (≤ 60 ns), the binomial tail for n = 2000 (≤ 2 µs), vector generation per
//! nonce (≤ 1 µs).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use mlnode_protocol::mismatch::{judge, judge_b64_f32, l2_distance};
use mlnode_protocol::vectors::{honest_vector, VectorKey};
use mlnode_protocol::{binomial_upper_tail, Vector};

fn key(nonce: i64) -> VectorKey<'static> {
    VectorKey {
        model: "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
        seq_len: 1024,
        k_dim: 12,
        block_hash: "bce35dd795a5a622a9092ec1234eecbc157f4d03bdf117527b8a877bec6489b3",
        public_key: "4dfe8269e29777a44cd5ec412aabed42afd9a410cef2dbefe6b5cd6b983d9d5c",
        nonce,
        stronger_rng: false,
    }
}

fn benches(c: &mut Criterion) {
    let own = honest_vector(&key(1));
    let received = honest_vector(&key(2)).encode();
    c.bench_function("decode_and_l2_per_artifact", |b| {
        b.iter(|| {
            let v = Vector::decode(black_box(&received), 12).unwrap();
            black_box(judge(&own, Some(&v), 0.2))
        })
    });
    let own32 = own.to_f32();
    c.bench_function("decode_and_l2_per_artifact_fast", |b| {
        b.iter(|| black_box(judge_b64_f32(black_box(&own32), black_box(&received), 0.2)))
    });
    c.bench_function("l2_only", |b| {
        b.iter(|| black_box(l2_distance(black_box(&own), black_box(&own))))
    });
    c.bench_function("binomial_tail_n2000_k60", |b| {
        b.iter(|| {
            black_box(binomial_upper_tail(
                black_box(60),
                black_box(2000),
                black_box(0.02),
            ))
        })
    });
    c.bench_function("binomial_tail_n2000_k20", |b| {
        b.iter(|| {
            black_box(binomial_upper_tail(
                black_box(20),
                black_box(2000),
                black_box(0.02),
            ))
        })
    });
    let round = key(0).round();
    let mut m = 0i64;
    let mut out = [0.0f64; 12];
    c.bench_function("vector_generation_per_nonce_in_round", |b| {
        b.iter(|| {
            m += 1;
            round.unit_into(black_box(m), false, &mut out);
            black_box(out)
        })
    });
    let mut f = [0.0f32; 64];
    c.bench_function("honest_f16_values_per_nonce_in_round", |b| {
        b.iter(|| {
            m += 1;
            round.unit_into(black_box(m), false, &mut out);
            mlnode_protocol::vectors::round_to_f16_values(&out, &mut f[..12]);
            black_box(f)
        })
    });
    c.bench_function("round_seed_only", |b| {
        b.iter(|| black_box(round.seed(black_box(7), false)))
    });
    let mut n = 0i64;
    c.bench_function("vector_generation_per_nonce", |b| {
        b.iter(|| {
            n += 1;
            black_box(honest_vector(&key(black_box(n))))
        })
    });
}

criterion_group!(protocol, benches);
criterion_main!(protocol);
