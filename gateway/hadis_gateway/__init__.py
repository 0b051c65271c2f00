"""HADIS gateway: OpenAI-style images API, prompt router, cascade dispatch (see issue 3)."""
