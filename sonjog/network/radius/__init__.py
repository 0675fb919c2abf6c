"""RADIUS for Sonjog: a FreeRADIUS harness backed by PostgreSQL, and RFC 5176 Disconnect/CoA towards NASes."""
