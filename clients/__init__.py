"""Client-side code: API clients and the helpers job scripts import."""
