"""Open-loop load generation against a HADIS (or any OpenAI-images-compatible) gateway."""
