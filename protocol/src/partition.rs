//! The network-wide nonce partition (mlnode-api §6.2), a frozen contract.
//!
//! Replica `(node_id = i, node_count = N, group_id = g, n_groups = G)` mines
//! `nonce_x = i + g·N + x·(G·N)` for `x = 0, 1, 2, …`.

/// A replica's slice of the nonce space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceGroup {
    pub node_id: u64,
    pub node_count: u64,
    pub group_id: u64,
    pub n_groups: u64,
}

/// Parameters that make the partition meaningless.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("node_count must be >= 1, got {0}")]
    NodeCount(i64),
    #[error("node_id must be in 0..node_count ({node_count}), got {node_id}")]
    NodeId { node_id: i64, node_count: i64 },
    #[error("group_id {group_id} must be < n_groups {n_groups} (n_groups >= 1)")]
    Group { group_id: u64, n_groups: u64 },
}

impl NonceGroup {
    pub fn new(
        node_id: i64,
        node_count: i64,
        group_id: u64,
        n_groups: u64,
    ) -> Result<Self, PartitionError> {
        if node_count < 1 {
            return Err(PartitionError::NodeCount(node_count));
        }
        if node_id < 0 || node_id >= node_count {
            return Err(PartitionError::NodeId {
                node_id,
                node_count,
            });
        }
        if n_groups < 1 || group_id >= n_groups {
            return Err(PartitionError::Group { group_id, n_groups });
        }
        Ok(NonceGroup {
            node_id: node_id as u64,
            node_count: node_count as u64,
            group_id,
            n_groups,
        })
    }

    /// The x-th nonce of this group.
    pub fn nonce(&self, x: u64) -> u64 {
        self.node_id + self.group_id * self.node_count + x * self.n_groups * self.node_count
    }

    /// Nonces `x ∈ [from, to)`.
    pub fn nonces(&self, from: u64, to: u64) -> impl Iterator<Item = u64> + '_ {
        (from..to).map(move |x| self.nonce(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn spec_example() {
        // i=2, N=4, G=3.
        let g = |gid| NonceGroup::new(2, 4, gid, 3).unwrap();
        assert_eq!(g(0).nonces(0, 3).collect::<Vec<_>>(), vec![2, 14, 26]);
        assert_eq!(g(1).nonces(0, 3).collect::<Vec<_>>(), vec![6, 18, 30]);
        assert_eq!(g(2).nonces(0, 3).collect::<Vec<_>>(), vec![10, 22, 34]);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(NonceGroup::new(0, 0, 0, 1).is_err());
        assert!(NonceGroup::new(1, 1, 0, 1).is_err());
        assert!(NonceGroup::new(-1, 2, 0, 1).is_err());
        assert!(NonceGroup::new(0, 1, 1, 1).is_err());
        assert!(NonceGroup::new(0, 1, 0, 0).is_err());
    }

    proptest! {
        /// Every group of every node, x < X: pairwise disjoint, and the union is exactly
        /// 0..(N·G·X) (dense).
        #[test]
        fn disjoint_and_dense(node_count in 1i64..6, n_groups in 1u64..6, xs in 1u64..40) {
            let mut seen = HashSet::new();
            for node_id in 0..node_count {
                for gid in 0..n_groups {
                    let g = NonceGroup::new(node_id, node_count, gid, n_groups).unwrap();
                    for n in g.nonces(0, xs) {
                        prop_assert!(seen.insert(n), "nonce {} mined twice", n);
                    }
                }
            }
            let total = node_count as u64 * n_groups * xs;
            prop_assert_eq!(seen.len() as u64, total);
            prop_assert!(seen.iter().all(|&n| n < total));
        }
    }
}
