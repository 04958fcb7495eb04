"""The study runner: a resolved study (bench.core.studies) -> trial specs -> submitit jobs -> optuna records.

One module per step: ``specs`` (a resolved study's trial specs), ``storage`` (optuna records,
docs/storage.md), ``job`` (what runs on a worker), ``launch`` (executors and queueing),
``preflight`` (a run's checks, what it holds, its pairing and its cost estimate), ``orchestrate``
(reconcile, launch, record), ``grow`` (--until-decided), ``calibrate`` (bench calibrate),
``repair`` (bench repair), ``progress`` (bar and status table), ``export`` (tidy table), ``cli``
(the subcommands ``run``, ``calibrate``, ``status``, ``export`` and ``repair``).
"""
