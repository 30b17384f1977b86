"""HTTP and WebSocket routes: thin, typed, no numerical work."""
