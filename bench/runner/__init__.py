"""The study runner: study files -> sampled trial specs -> submitit jobs -> optuna records.

One module per step: ``studies`` (load and validate study files), ``sampling`` (paired
log-uniform points), ``specs`` (expand a study into trial specs), ``storage`` (optuna
records, docs/records.md), ``job`` (what runs on a worker), ``launch`` (executors and
queueing), ``plan`` (plan and cost estimate), ``orchestrate`` (reconcile, launch, record),
``progress`` (bar and status table), ``export`` (tidy table), ``cli`` (subcommands).
"""
