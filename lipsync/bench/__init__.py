"""The benchmark (`python -m lipsync.bench`): its inputs, cases and measurements, and the random-weight checkpoints
of the real architectures that it and the tests load through the real loaders.

May import: anything in lipsync; nothing in the product imports it."""
