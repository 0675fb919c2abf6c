"""Demo data: `sonjog demo` (an ISP to try, with emulated routers and an SMS gateway) and `sonjog seed`
(a synthetic ISP of any size, for the demo and the benchmarks). Above every other app: it drives
them all and nothing imports it but `sonjog.bench` and tests."""
