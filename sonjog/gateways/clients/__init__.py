"""In-house clients of the payment gateways' HTTP APIs (httpx, timeouts on every call)."""
