import os

# Training shares the CPU with other work: spinning OpenMP threads that wait for a descheduled
# sibling slow steps several-fold under contention; passive waiting costs little when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engine.training.cli import main  # noqa: E402  (torch must see the setting on import)

main()
