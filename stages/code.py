"""DVC stage: the code digest of each stage kind (code_digests/<kind>.md5, pipeline/repro/code_digest.py),
the one code dependency of the other stages."""
from pipeline.core.errors import stage_errors

with stage_errors("code"):
    from pipeline.repro.code_digest import write_digests

    written = write_digests()
print(f"wrote {', '.join(p.as_posix() for p in written)}")
