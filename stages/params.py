"""DVC stage: every experiment's run params (run_params/<experiment>.yaml, pipeline/repro/run_params.py),
the one params dependency of its train stage. Prints where each change to params.yaml since the
commit lands, and stops, before any training, on a change no run would take."""
from pipeline.core.errors import stage_errors

with stage_errors("params"):
    from pipeline.config.load import load_params
    from pipeline.config.overrides import committed_params
    from pipeline.repro.dvc_targets import named_experiments
    from pipeline.repro.run_params import FOLDER, plan_and_write

    lines, written = plan_and_write(load_params("params.yaml"), committed_params("params.yaml"), named_experiments())
for line in lines:
    print(line)
print(f"wrote {len(written)} files under {FOLDER}/")
