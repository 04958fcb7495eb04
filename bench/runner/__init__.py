"""The study runner: a study's plan (bench.core.studies) -> trial specs -> submitit jobs -> optuna records.

One module per step: ``sampling`` (paired log-uniform points), ``specs`` (a plan's trial specs),
``storage`` (optuna records, docs/storage.md), ``job`` (what runs on a worker), ``launch``
(executors and queueing), ``plan`` (what a run holds, its checks and its cost estimate),
``orchestrate`` (reconcile, launch, record), ``grow`` (--until-decided), ``calibrate`` (bench
calibrate), ``repair`` (bench repair), ``progress`` (bar and status table), ``export`` (tidy
table), ``cli`` (subcommands).
"""
