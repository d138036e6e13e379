"""losslab: a config-driven training CLI to see what a loss, an optimizer or a frozen backbone does."""
import time

STARTED = time.perf_counter()  # the first thing `train` imports: a run's start-up is counted from here
