"""What every stage may read and write about models: the shared layer above core and spec.

- `champion.py`: the MLflow registry's champion and challenger, moved under a lock;
- `model_store.py`: local copies of trained models, their manifests and evaluation rows;
- `tracking.py`: the MLflow resource (tracking server and registry) every stage talks to;
- `rollout.py`: the rollout setting's file format (champion, shadow or canary).

Training writes models, deployment promotes them, scoring and monitoring read the champion,
the service and automation read the rollout: none of them owns these, so they live here and
no stage imports another stage to reach them.
"""
