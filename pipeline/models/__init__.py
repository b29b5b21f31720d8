"""SimVP and its parts: the model (``simvp``), its settings, the translators and quantizers built by
name (``translators/``, ``quantizers/``: SVQ's variants and the comparators). Imports core and the
SVQ plug-in."""
