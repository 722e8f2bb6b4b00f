"""The front door's room: argument checks, frozen specs, shape arithmetic, padding, windows.

Every public op validates and canonicalises its arguments here before any tensor work
(:mod:`.spec` for convolutions, :mod:`.pool_spec` and :mod:`.unpool_spec` for pooling), with the
shared argument parsers (:mod:`.args`), error shape (:mod:`.errors`), type aliases (:mod:`.types`),
integer shape formulas (:mod:`.shapes`), the padding and sliding-window helpers (:mod:`.padding`,
:mod:`.windows`), the scratch-memory limit (:mod:`.workspace`), the bounded cache type
(:mod:`.cache`, :mod:`.spec_cache`) and the trace guard (:mod:`.tracing`).

Nothing here imports the rest of anyconv (``tests/test_structure.py`` checks it): the algorithms,
operators, functions and modules above are built on this room, never the other way round.
"""
