"""The HTTP edge: routers per resource, their dependencies, middleware, error -> status."""
