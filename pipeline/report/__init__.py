"""Paper tables (CSV + markdown) and figures, built from MLflow's records of the runs."""
