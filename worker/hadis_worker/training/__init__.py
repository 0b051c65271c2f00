"""Offline training with torch: the discriminator head and the learned (sentence-encoder) router.

Run as ``python -m hadis_worker.training.discriminator …`` / ``python -m hadis_worker.training.router
…``; ``hadis train`` runs them as subprocesses, so the control plane never imports torch.
"""
