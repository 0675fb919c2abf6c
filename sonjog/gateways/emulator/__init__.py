"""Local emulators of the payment gateways Sonjog cannot reach from a test machine (bKash, Nagad,
SSLCommerz): each serves the gateway's real HTTP API on 127.0.0.1 for the tests and `make demo`."""
