"""The benchmarks behind ``anyconv bench``: layer suite, whole models, and the machine they run on.

- :mod:`.suite`: the named convolution cases of the speed suite, in groups;
- :mod:`.runner`: interleaved timing of a suite case, torch against anyconv, with peak memory;
- :mod:`.models`: the zoo's models, torch's layers against ``anyconv.nn.convert(model)``,
  inference and one training step;
- :mod:`.machine`: CPU model, ISA, threads, and the machine's own measured float32 peak.

This package sits above ``algorithms``, ``functional``, ``nn`` and ``models`` (beside
``tools``): it imports them, nothing below imports it.
"""
