"""HADIS worker: diffusion engines, dynamic batching, discriminator (see issue 3)."""
