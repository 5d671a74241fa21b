"""The decision engine: constraints, objectives, cost, Pareto frontier and ranking. See DESIGN.md section 6."""
