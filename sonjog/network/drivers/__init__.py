"""Drivers that talk to network equipment (routers, NAS) on behalf of the billing system."""
