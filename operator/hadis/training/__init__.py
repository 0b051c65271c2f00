"""Pure numpy pieces of router training: AUROC, k-fold splits, the paper's weight random search.

No torch and no I/O beyond reading the training CSVs (:mod:`hadis.training.data`); the torch side
(CLIP discriminator head, MiniLM sentence encoder) is ``hadis_worker.training``, run by
``hadis train`` as a subprocess.
"""
