"""The HIL rig: simulated chargers, EVs and meters, scenarios and their runner."""
