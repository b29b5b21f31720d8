"""DVC stage: every experiment's run params (run_params/<experiment>.yaml, pipeline/repro/run_params.py),
the one params dependency of its train stage."""
from pipeline.core.errors import stage_errors

with stage_errors("params"):
    from pipeline.config.load import load_params
    from pipeline.repro.run_params import FOLDER, write_all

    written = write_all(load_params("params.yaml"))
print(f"wrote {len(written)} files under {FOLDER}/")
