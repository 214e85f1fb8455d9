"""The HTTP API: one router per resource; `deps` holds what the routes share."""
