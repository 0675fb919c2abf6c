"""`sonjog bench`: the benchmarks of generation, payments, the console, the network and messaging,
each beside the raw SQL baseline of the same run (docs/benchmarks.md). The top of the house: it
drives every app and nothing imports it."""
