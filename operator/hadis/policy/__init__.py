"""Pure decisions: the Pareto table, the HADIS MILP allocator and the paper's baselines."""
