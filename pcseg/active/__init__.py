"""Active learning (HPAL, cpcm_hpal.md Part II): rounds of train -> score -> select -> annotate.

- :mod:`pcseg.active.hmmu` — hierarchical min-margin uncertainty, vectorised;
- :mod:`pcseg.active.strategies` — the acquisition registry (hpal, hmmu, margin, entropy, random);
- :mod:`pcseg.active.selection` — global ranking, budget and feature-distance suppression;
- :mod:`pcseg.active.labels` — label sets (initial labels, persistence);
- :mod:`pcseg.active.annotators` — the ground-truth oracle and the export/import of queries for people;
- :mod:`pcseg.active.inference` — probabilities and features of the training points;
- :mod:`pcseg.active.loop` — the resumable round loop and its run directory.
"""
