"""Real NYC TLC trip files (public data) that the demo uploads and the tests read."""

from pathlib import Path

YELLOW_2020_07 = Path(__file__).with_name("yellow_tripdata_2020-07_sample_rides.csv")
"""266 real yellow trips of July 2020, CSV era (a few of them bad)."""
