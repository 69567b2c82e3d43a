"""HTTP routes of the sandbox, one module per Central resource."""
