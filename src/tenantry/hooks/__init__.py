"""The hooks tenantry puts on its own engines and sessions (never on anyone else's)."""
