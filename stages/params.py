"""DVC stage: every experiment's run params (run_params/<experiment>.yaml, pipeline/run_params.py),
the one params dependency of its train stage."""
from pipeline.errors import stage_errors

with stage_errors("params"):
    from pipeline.config import load_params
    from pipeline.run_params import FOLDER, write_all

    written = write_all(load_params("params.yaml"))
print(f"wrote {len(written)} files under {FOLDER}/")
