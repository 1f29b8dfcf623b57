"""Plans: EXPLAIN capture, plan rules, index advice and plan diffs (see docs/plans.md)."""
